#!/usr/bin/env bash
# Builds kvd three ways and runs the whole suite on each:
#   build/asan   ASan+UBSan, fault-injection enabled: every test
#   build/tsan   TSan: the tests where threads meet (label "threads")
#   build/rel    the release build (scripts/build.sh) that the systemd test installs
#   build/test   optimised build with test options: every test; its ctest summary closes the output
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

# The release tree the service test installs and packages (prefix /usr, no test options).
./scripts/build.sh
export KVD_PKG_BUILD="$PWD/build/rel"

configure_build build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVD_FAULT_INJECTION=ON
cd build/test && ctest --output-on-failure -j"$JOBS"
