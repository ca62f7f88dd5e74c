#!/usr/bin/env bash
# kvd vs Redis side by side; see bench/compare.py --help.
# Builds the release tree first. Table and chart land in bench/results/ (the
# replicated rows in repl-<date>.md; --repl-only runs only those).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
exec python3 bench/compare.py --build build/rel "$@"
