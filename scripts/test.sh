#!/usr/bin/env bash
# The whole suite, as CI runs it:
#   build/asan  Debug + ASan/UBSan + fault injection: every test but the
#               service test and the benchmark smoke run
#   build/tsan  TSan: the tests where threads meet (label "threads")
#   build/fuzz  clang + libFuzzer: every fuzz target for a bounded time
#   build/rel   the release build (scripts/build.sh: kvd and kvctl only);
#               the service test installs and packages it; it must not hold
#               the mutation switches
#   build/test  optimised build with test options and the mutation switches
#               (never active unless KVD_MUTANT names one): scripts/mutate.sh
#               first (every mutant must make a test of the default suite
#               fail), then every test, unit tests and the systemd service
#               test included; its ctest summary closes the output
# KVD_SOAK=1 lengthens the crash loops to 1,000 cycles; KVD_FUZZ_SECONDS
# sets the time per fuzz target (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
# Every build here treats warnings as errors (KVD_WERROR is off by default
# for users and packagers); scripts/fuzz.sh keeps it off for clang.
configure() {
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DKVD_WERROR=ON "$@" >/dev/null
}
SECONDS=0
phase() { echo "=== [$((SECONDS / 60))m$((SECONDS % 60))s] $*"; }
# ctest "$@", and in CI (CI=true) a skipped test fails the run: a test that
# could not run (exit 77: no privilege, no fault injection, a tool missing)
# proves nothing. ctest's summary stays the last lines of the output.
run_ctest() {
  local log rc=0
  log=$(mktemp)
  ctest "$@" 2>&1 | tee "$log" || rc=$?
  if [[ "${CI:-}" == "true" ]] && grep -qE '\*\*\*Skipped|\(Skipped\)|Not Run' "$log"; then
    echo "CI: tests were skipped; failing (run them where they can run):"
    sed -n '/tests passed/,$p' "$log"
    rc=1
  fi
  rm -f "$log"
  return "$rc"
}

phase "ASan+UBSan build and tests"
configure build/asan -DCMAKE_BUILD_TYPE=Debug -DKVD_SANITIZE=address -DKVD_FAULT_INJECTION=ON
cmake --build build/asan -j"$JOBS"
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 run_ctest --output-on-failure -j"$JOBS" -LE "no-asan")

phase "TSan build and threaded tests"
configure build/tsan -DCMAKE_BUILD_TYPE=Debug -DKVD_SANITIZE=thread
cmake --build build/tsan -j"$JOBS" --target threads_tests
(cd build/tsan && run_ctest --output-on-failure -j"$JOBS" -L threads)

phase "fuzz targets"
scripts/fuzz.sh

phase "release build"
# Its tests would be build/test's again (-O2 there, -O3 here): every test
# runs in build/test, so they are not built twice.
./scripts/build.sh -DKVD_WERROR=ON
export KVD_PKG_BUILD="$PWD/build/rel"
if grep -qa KVD_MUTANT build/rel/daemon/kvd; then
  echo "build/rel/daemon/kvd holds the mutation switches (KVD_MUTATION): never in a release build" >&2
  exit 1
fi

phase "optimised build with test options and the mutation switches"
# Line tables only (-g1): backtraces and gdb keep file:line, the build is
# about a fifth quicker than with full debug info.
configure build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DKVD_FAULT_INJECTION=ON -DKVD_MUTATION=ON
cmake --build build/test -j"$JOBS"

phase "mutation testing"
KVD_MUTATE_BUILD=build/test scripts/mutate.sh

phase "every test"
cd build/test && run_ctest --output-on-failure -j"$JOBS"
