#!/usr/bin/env bash
# Builds every libFuzzer target in fuzz/ (clang 14, ASan+UBSan, separate build
# in build/fuzz) and runs each for a bounded time, starting from its checked-in
# seed corpus. Prints executions and coverage per target; exits non-zero if
# any target crashed (the crashing input is kept in build/fuzz/artifacts/<name>/:
# fix the bug, then copy the input to fuzz/regressions/<name>/).
#
#   KVD_FUZZ_SECONDS   seconds per target (default 20)
#   KVD_FUZZ_TARGETS   space-separated subset, e.g. "frame_decoder" (default: all)
#   KVD_FUZZ_JOBS      build parallelism (default: nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${KVD_FUZZ_SECONDS:-20}
JOBS=${KVD_FUZZ_JOBS:-$(nproc)}
CXX=clang++-14; CC=clang-14
command -v "$CXX" >/dev/null || { CXX=clang++; CC=clang; }
BUILD=build/fuzz
# A cache made with another compiler cannot be switched in place.
if [ -f "$BUILD/CMakeCache.txt" ] && \
   ! grep -q "^CMAKE_CXX_COMPILER:[A-Z]*=.*$CXX\$" "$BUILD/CMakeCache.txt"; then
  rm -f "$BUILD/CMakeCache.txt"
fi

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_C_COMPILER="$CC" \
  -DKVD_FUZZ=ON -DKVD_BUILD_TESTS=OFF -DKVD_WERROR=OFF >/dev/null
cmake --build "$BUILD" --target fuzz_all -j"$JOBS"

mapfile -t all_targets < "$BUILD/fuzz/targets.txt"
targets=()
if [ -n "${KVD_FUZZ_TARGETS:-}" ]; then
  for t in $KVD_FUZZ_TARGETS; do targets+=("${t%_fuzz}_fuzz"); done
else
  for t in "${all_targets[@]}"; do [ -n "$t" ] && targets+=("$t"); done
fi

summary=()
failed=0
for target in "${targets[@]}"; do
  name=${target%_fuzz}
  work="$BUILD/corpus/$name"          # grows over runs; the checked-in seeds stay untouched
  artifacts="$BUILD/artifacts/$name/"
  log="$BUILD/logs/$name.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  seeds=()
  [ -d "fuzz/corpus/$name" ] && seeds+=("fuzz/corpus/$name")
  [ -d "fuzz/regressions/$name" ] && seeds+=("fuzz/regressions/$name")
  echo "== $name: ${SECONDS_EACH}s"
  set +e
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$BUILD/fuzz/$target" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts" "$work" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  last=$(grep -E '^#[0-9]+\s' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  if [ $rc -ne 0 ]; then
    failed=1
    echo "!! $name crashed (exit $rc); log: $log"
    grep -E 'ERROR|SUMMARY|fuzz invariant|Test unit written' "$log" | head -20 || true
  fi
  summary+=("$(printf '%-20s %-6s execs=%-10s cov=%-6s ft=%-7s corpus=%s' "$name" \
    "$([ $rc -eq 0 ] && echo ok || echo CRASH)" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")")
done

echo "== fuzz summary (${SECONDS_EACH}s per target)"
printf '%s\n' "${summary[@]}"
exit $failed
