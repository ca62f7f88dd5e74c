#!/usr/bin/env bash
# Mutation testing: proves that the default test suite notices deliberately
# broken variants of kvd (docs/testing.md, "Mutation testing").
#
#   scripts/mutate.sh [MUTANT...]     default: every mutant in the table below
#
# Builds build/mutation (Debug, fault injection, KVD_MUTATION=ON, -Werror;
# only the targets the chosen tests need; an existing KVD_MUTATE_BUILD keeps
# its build type), runs those tests without a mutant
# (each must pass), then, for each mutant, runs its tests one at a time with
# KVD_MUTANT set until one fails. Prints the table mutant -> failing test and
# exits non-zero if a mutant survived: no test failed, or a test that should
# catch it is missing or could not run (skipped).
#
# KVD_SOAK=1: each mutant also runs its daemon-level tests (crash loops,
# integration tests), and every listed test runs, not only up to the first
# failure, so the table names every test that catches it.
# KVD_MUTATE_BUILD=DIR: the build directory (default build/mutation).
set -euo pipefail
cd "$(dirname "$0")/.."

# mutant                        tests run in order until one fails | KVD_SOAK=1: more tests
# Every name is a ctest test of the default suite; fastest first.
TABLE='
ack_before_fdatasync            committer_test engine_test power_loss_test | integration_test_disk_faults
skip_fdatasync_sync_mode        engine_test recovery_sync_test power_loss_test | crash_loop_power_loss integration_test_disk_faults
skip_dir_fsync_new_segment      engine_test recovery_sync_test power_loss_test wal_writer_test | crash_loop_power_loss crash_loop_batch_power_loss crash_loop_lazyfs
retry_failed_fdatasync          engine_test wal_writer_test | integration_test_disk_faults
ignore_crc_on_replay            power_loss_test wal_recovery_test | wal_writer_test integration_test_corruption
get_ahead_of_pending_write      session_dispatch_test | integration_test_protocol
batch_exceeds_bound             group_commit_test engine_test | crash_loop_batch_power_loss
skip_recovered_data_sync        recovery_sync_test |
skip_fdatasync_syscall          crash_loop_lazyfs | lazyfs_kvd_test
batch_bound_off_by_one          group_commit_test engine_test | crash_loop_batch_power_loss
truncate_instead_of_set_aside   wal_recovery_test |
skip_sync_before_rollover       engine_test power_loss_test wal_writer_test | crash_loop_power_loss crash_loop_batch_power_loss
skip_crc_on_replicated_append   engine_replica_test |
apply_before_durable_sync_mode  engine_test |
keep_failed_write_bytes         wal_writer_test |
'
# Test -> build targets it needs besides kvd and kvctl (a doctest's target is
# its own name and needs no entry).
extra_targets() {
  case $1 in
    crash_loop_lazyfs | lazyfs_kvd_test) echo kvd_lazyfs ;;
  esac
}

BUILD=${KVD_MUTATE_BUILD:-build/mutation}
SOAK=${KVD_SOAK:-}
LOGS="$BUILD/mutate-logs"

declare -A FAST SLOW
ORDER=()
while read -r name rest; do
  [[ -z "$name" ]] && continue
  FAST[$name]=${rest%%|*}
  SLOW[$name]=${rest#*|}
  ORDER+=("$name")
done <<<"$TABLE"

# Every mutant compiled in (kvd/mutation.h) has a row, so none is forgotten.
for m in $(sed -n 's/^ *X(\([a-z0-9_]*\)).*/\1/p' lib/include/kvd/mutation.h); do
  [[ -n "${FAST[$m]+x}" ]] || { echo "mutate.sh: mutant $m (kvd/mutation.h) has no row in the table" >&2; exit 2; }
done

CHOSEN=("$@")
[[ ${#CHOSEN[@]} -eq 0 ]] && CHOSEN=("${ORDER[@]}")
for m in "${CHOSEN[@]}"; do
  [[ -n "${FAST[$m]+x}" ]] || { echo "mutate.sh: no mutant named $m" >&2; exit 2; }
done

tests_of() {  # the tests a mutant runs, in order
  if [[ -n "$SOAK" ]]; then echo ${FAST[$1]} ${SLOW[$1]}; else echo ${FAST[$1]}; fi
}

SECONDS=0
# One build serves every mutant. KVD_SOAK is left out of the configure step:
# it would lengthen the crash loops to 1,000 cycles each. A build directory
# that exists keeps its build type (scripts/test.sh passes its optimised
# build/test); a new one is Debug.
build_type=(-DCMAKE_BUILD_TYPE=Debug)
[[ -f "$BUILD/CMakeCache.txt" ]] && build_type=()
env -u KVD_SOAK cmake -S . -B "$BUILD" -G Ninja "${build_type[@]}" -DKVD_WERROR=ON \
  -DKVD_FAULT_INJECTION=ON -DKVD_MUTATION=ON >/dev/null

ALL_TESTS=()
declare -A SEEN_TEST
for m in "${CHOSEN[@]}"; do
  for t in $(tests_of "$m"); do
    [[ -n "${SEEN_TEST[$t]+x}" ]] && continue
    SEEN_TEST[$t]=1
    ALL_TESTS+=("$t")
  done
done

# Which tests exist in this tree (a missing one catches nothing).
declare -A EXISTS
registered=$(cd "$BUILD" && ctest -N | sed -n 's/^ *Test *#[0-9]*: //p')
for t in "${ALL_TESTS[@]}"; do
  grep -qx -- "$t" <<<"$registered" && EXISTS[$t]=1
done

targets=(kvd kvctl)
known_targets=$(ninja -C "$BUILD" -t targets all | sed -n 's/^\([A-Za-z0-9_]*\): .*/\1/p')
for t in "${ALL_TESTS[@]}"; do
  [[ -n "${EXISTS[$t]+x}" ]] || continue
  for target in "$t" $(extra_targets "$t"); do
    grep -qx -- "$target" <<<"$known_targets" && targets+=("$target")
  done
done
cmake --build "$BUILD" -j"$(nproc)" --target "${targets[@]}"
build_secs=$SECONDS
echo "mutate.sh: built ${#targets[@]} targets in ${build_secs} s"

# A misspelt mutant must not pass for a caught one: the build's own list says
# which names exist (an unknown KVD_MUTANT aborts the process).
for m in "${CHOSEN[@]}"; do
  if ! KVD_MUTANT=$m "$BUILD/daemon/kvd" --version >/dev/null 2>&1; then
    echo "mutate.sh: the mutation build does not know mutant $m" >&2
    exit 2
  fi
done

rm -rf "$LOGS"
mkdir -p "$LOGS"
# run_one LOG TEST [VAR=VALUE]: runs one ctest test; echoes passed, failed or
# skipped, and the seconds it took.
run_one() {
  local log=$1 t=$2 start rc=0
  shift 2
  start=$(date +%s.%N)
  (cd "$BUILD" && env "$@" ctest -R "^${t}\$" --output-on-failure) >"$log" 2>&1 || rc=$?
  local took
  took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [[ $rc -ne 0 ]]; then
    echo "failed $took"
  elif grep -qE '\*\*\*Skipped|\(Skipped\)|Not Run' "$log"; then
    echo "skipped $took"
  else
    echo "passed $took"
  fi
}

# Without a mutant every test must pass: a failure here would be no proof.
echo "mutate.sh: ${#ALL_TESTS[@]} tests without a mutant"
declare -A USABLE
baseline_bad=0
for t in "${ALL_TESTS[@]}"; do
  if [[ -z "${EXISTS[$t]+x}" ]]; then
    printf '  %-32s missing\n' "$t"
    continue
  fi
  read -r result took < <(run_one "$LOGS/none.$t.log" "$t" -u KVD_MUTANT)
  printf '  %-32s %s (%s s)\n' "$t" "$result" "$took"
  case $result in
    passed) USABLE[$t]=1 ;;
    failed) baseline_bad=1 ;;
    skipped) ;;  # it cannot run here: it catches nothing (reported per mutant)
  esac
done
if [[ $baseline_bad -ne 0 ]]; then
  echo "mutate.sh: tests fail without any mutant (logs in $LOGS); fix them first" >&2
  exit 1
fi
baseline_secs=$((SECONDS - build_secs))

survived=0
ROWS=()
for m in "${CHOSEN[@]}"; do
  caught=() problems=() m_start=$(date +%s.%N)
  for t in $(tests_of "$m"); do
    if [[ -z "${EXISTS[$t]+x}" ]]; then
      problems+=("test missing: $t")
      continue
    fi
    if [[ -z "${USABLE[$t]+x}" ]]; then
      problems+=("test skipped: $t")
      continue
    fi
    read -r result took < <(run_one "$LOGS/$m.$t.log" "$t" "KVD_MUTANT=$m")
    case $result in
      failed) caught+=("$t (${took} s)") ;;
      skipped) problems+=("test skipped: $t") ;;
    esac
    [[ ${#caught[@]} -gt 0 && -z "$SOAK" ]] && break
  done
  secs=$(awk -v a="$m_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [[ ${#caught[@]} -gt 0 ]]; then
    verdict="caught by $(IFS=,; echo "${caught[*]}" | sed 's/,/, /g')"
  else
    survived=1
    verdict="NOT CAUGHT"
    [[ ${#problems[@]} -gt 0 ]] && verdict+=" ($(IFS=,; echo "${problems[*]}" | sed 's/,/, /g'))"
  fi
  ROWS+=("$(printf '%-32s %6s s  %s' "$m" "$secs" "$verdict")")
  echo "${ROWS[-1]}"
done

echo
echo "=== mutation table (${#CHOSEN[@]} mutants${SOAK:+, KVD_SOAK=1}; build ${build_secs} s," \
  "tests without a mutant ${baseline_secs} s, total ${SECONDS} s; logs in $LOGS)"
printf '%-32s %8s  %s\n' "mutant" "time" "result"
printf '%s\n' "${ROWS[@]}"
if [[ $survived -ne 0 ]]; then
  echo "mutate.sh: some mutants survived: the suite would not notice these bugs" >&2
  exit 1
fi
echo "mutate.sh: every mutant was caught"
