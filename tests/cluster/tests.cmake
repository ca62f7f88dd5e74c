# The etcd client and the leader lease against a real 3-member etcd cluster
# (tests/cluster/etcd_cluster.py starts it). etcd_cases is driven by the
# Python test, one case per process; without /usr/bin/etcd the test exits 77
# (skipped), which scripts/test.sh counts as a failure: install-deps has it.
add_executable(etcd_cases ${CMAKE_CURRENT_LIST_DIR}/etcd_cases.cc)
target_link_libraries(etcd_cases PRIVATE kvd_test_main kvd_daemon_core)
target_compile_options(etcd_cases PRIVATE
  $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>)
add_test(NAME cluster_etcd_client COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_etcd_client.py)
set_tests_properties(cluster_etcd_client PROPERTIES
  LABELS "integration;cluster" TIMEOUT 600 SKIP_RETURN_CODE 77
  ENVIRONMENT "ETCD_CASES_BIN=$<TARGET_FILE:etcd_cases>;PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/util:${CMAKE_CURRENT_LIST_DIR}")

# kvctl's cluster commands (cluster status, switchover, --cluster routing)
# against a real etcd whose keys the test writes itself, and real kvd nodes.
add_test(NAME cluster_kvctl COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_kvctl_cluster.py)
set_tests_properties(cluster_kvctl PROPERTIES
  LABELS "integration;cluster" TIMEOUT 600 SKIP_RETURN_CODE 77
  ENVIRONMENT "KVD_BIN=$<TARGET_FILE:kvd>;KVCTL_BIN=$<TARGET_FILE:kvctl>;PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/util:${CMAKE_CURRENT_LIST_DIR}")
