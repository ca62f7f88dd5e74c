# Smoke run of the side-by-side benchmark script: checks that it works, times nothing.
add_test(NAME bench_compare_smoke
  COMMAND python3 ${PROJECT_SOURCE_DIR}/bench/compare.py --quick --recovery
          --build ${PROJECT_BINARY_DIR} --out ${PROJECT_BINARY_DIR}/bench-smoke)
set_tests_properties(bench_compare_smoke PROPERTIES LABELS "bench;no-asan" TIMEOUT 600 RUN_SERIAL TRUE)
