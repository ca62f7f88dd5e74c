# RESP front end (docs/resp.md) driven by clients nobody here wrote: redis-cli,
# redis-benchmark and the Debian python3-redis module. They run under
# /usr/bin/python3 (the Debian interpreter that has `redis`); a missing tool
# makes the test exit 77 (skipped), which scripts/test.sh counts as a failure.
file(GLOB KVD_RESP_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/test_*.py)
foreach(py ${KVD_RESP_TESTS})
  get_filename_component(name ${py} NAME_WE)
  add_test(NAME resp_${name} COMMAND /usr/bin/python3 ${py})
  set_tests_properties(resp_${name} PROPERTIES
    LABELS "integration;resp" TIMEOUT 900 SKIP_RETURN_CODE 77
    ENVIRONMENT "KVD_BIN=$<TARGET_FILE:kvd>;KVCTL_BIN=$<TARGET_FILE:kvctl>;PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/util:${CMAKE_CURRENT_LIST_DIR}")
endforeach()
