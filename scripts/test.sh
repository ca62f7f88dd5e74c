#!/usr/bin/env bash
# Builds kvd three ways and runs the whole suite on each:
#   build/asan   ASan+UBSan, fault-injection enabled: every test
#   build/tsan   TSan: the tests where threads meet (label "threads")
#   build/rel    release-like build: every test; its ctest summary closes the output
# Long soaks stay off unless KVD_SOAK=1.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
configure_build() {
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS"
}

configure_build build/asan -DCMAKE_BUILD_TYPE=Debug -DKVD_SANITIZE=address -DKVD_FAULT_INJECTION=ON
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$JOBS" -LE "no-asan")

configure_build build/tsan -DCMAKE_BUILD_TYPE=Debug -DKVD_SANITIZE=thread
(cd build/tsan && ctest --output-on-failure -j"$JOBS" -L threads)

if [ -x scripts/fuzz.sh ]; then scripts/fuzz.sh; fi

configure_build build/rel -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVD_FAULT_INJECTION=ON
cd build/rel && ctest --output-on-failure -j"$JOBS"
