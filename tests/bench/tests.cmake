# Smoke run of the side-by-side benchmark script: checks that it works, times nothing.
add_test(NAME bench_compare_smoke
  COMMAND python3 ${PROJECT_SOURCE_DIR}/bench/compare.py --quick --recovery
          --build ${PROJECT_BINARY_DIR} --out ${PROJECT_BINARY_DIR}/bench-smoke)
set_tests_properties(bench_compare_smoke PROPERTIES LABELS "bench;no-asan" TIMEOUT 600 RUN_SERIAL TRUE)

# Smoke run of the replicated rows (bench/compare_repl.py): a kvd primary with
# 1 and 2 replicas and Redis with a replica, tiny counts, and the lag run. Fails
# when a replica does not stream, a write fails, a replica misses an
# acknowledged write or ends with a different key count.
add_test(NAME bench_compare_repl_smoke
  COMMAND python3 ${PROJECT_SOURCE_DIR}/bench/compare.py --quick --repl-only
          --build ${PROJECT_BINARY_DIR} --out ${PROJECT_BINARY_DIR}/bench-repl-smoke)
set_tests_properties(bench_compare_repl_smoke PROPERTIES LABELS "bench;no-asan" TIMEOUT 300 RUN_SERIAL TRUE)
# Run sizes and the redis-benchmark wrapper of the benchmark scripts (seconds).
add_test(NAME bench_helpers_test COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_bench_helpers.py)
set_tests_properties(bench_helpers_test PROPERTIES LABELS "bench" TIMEOUT 120 SKIP_RETURN_CODE 77)
