# End-to-end under a real systemd (needs root; SKIPPED with the reason otherwise).
# KVD_PKG_BUILD names a release build tree with prefix /usr (scripts/build.sh).
add_test(NAME systemd_e2e COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_systemd_e2e.py)
set_tests_properties(systemd_e2e PROPERTIES
  LABELS "e2e;no-asan" TIMEOUT 1200 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
