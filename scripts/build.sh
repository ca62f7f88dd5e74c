#!/usr/bin/env bash
# Release build of kvd and kvctl into build/rel (no test-only options).
# Extra arguments go to cmake (scripts/test.sh adds -DKVD_WERROR=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build/rel -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DKVD_BUILD_TESTS=OFF "$@" >/dev/null
cmake --build build/rel -j"$(nproc)"
