# Smoke run of the side-by-side benchmark script: checks that it works, times nothing.
add_test(NAME bench_compare_smoke
  COMMAND python3 ${PROJECT_SOURCE_DIR}/bench/compare.py --quick --recovery
          --build ${PROJECT_BINARY_DIR} --out ${PROJECT_BINARY_DIR}/bench-smoke)
set_tests_properties(bench_compare_smoke PROPERTIES LABELS "bench;no-asan" TIMEOUT 600 RUN_SERIAL TRUE)
# Run sizes and the redis-benchmark wrapper of the benchmark scripts (seconds).
add_test(NAME bench_helpers_test COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_bench_helpers.py)
set_tests_properties(bench_helpers_test PROPERTIES LABELS "bench" TIMEOUT 120 SKIP_RETURN_CODE 77)
