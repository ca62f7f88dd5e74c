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

# The coordination loop (daemon/cluster/coordinator.h): 3 etcd + 3 kvd with
# [cluster]: a primary forms, kill -9 fails over, the old primary rejoins,
# SIGTERM resigns, a paused primary does not acknowledge.
add_test(NAME cluster_failover COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_cluster_failover.py)
set_tests_properties(cluster_failover PROPERTIES
  LABELS "integration;cluster" TIMEOUT 300 SKIP_RETURN_CODE 77
  ENVIRONMENT "KVD_BIN=$<TARGET_FILE:kvd>;KVCTL_BIN=$<TARGET_FILE:kvctl>;PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/util:${CMAKE_CURRENT_LIST_DIR}")

# The strict sync set: kill -9 of the primary under writers with
# sync_replicas = 1 loses no acknowledged write; only the member is promoted.
add_test(NAME cluster_sync COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_cluster_sync.py)
set_tests_properties(cluster_sync PROPERTIES
  LABELS "integration;cluster" TIMEOUT 300 SKIP_RETURN_CODE 77
  ENVIRONMENT "KVD_BIN=$<TARGET_FILE:kvd>;KVCTL_BIN=$<TARGET_FILE:kvctl>;PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/util:${CMAKE_CURRENT_LIST_DIR}")

# Fast takeover: kill -9 of the primary, rounds; p50 <= 3 s, max <= 5 s.
add_test(NAME cluster_takeover COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_cluster_takeover.py)
set_tests_properties(cluster_takeover PROPERTIES
  LABELS "integration;cluster" TIMEOUT 300 SKIP_RETURN_CODE 77
  ENVIRONMENT "KVD_BIN=$<TARGET_FILE:kvd>;KVCTL_BIN=$<TARGET_FILE:kvctl>;PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/util:${CMAKE_CURRENT_LIST_DIR}")

# Planned switchover handled by the daemons (the key kvctl switchover puts).
add_test(NAME cluster_switchover COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_cluster_switchover.py)
set_tests_properties(cluster_switchover PROPERTIES
  LABELS "integration;cluster" TIMEOUT 300 SKIP_RETURN_CODE 77
  ENVIRONMENT "KVD_BIN=$<TARGET_FILE:kvd>;KVCTL_BIN=$<TARGET_FILE:kvctl>;PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/util:${CMAKE_CURRENT_LIST_DIR}")

# kvctl's cluster commands (cluster status, switchover, --cluster routing)
# against a real etcd whose keys the test writes itself, and real kvd nodes.
add_test(NAME cluster_kvctl COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_kvctl_cluster.py)
set_tests_properties(cluster_kvctl PROPERTIES
  LABELS "integration;cluster" TIMEOUT 600 SKIP_RETURN_CODE 77
  ENVIRONMENT "KVD_BIN=$<TARGET_FILE:kvd>;KVCTL_BIN=$<TARGET_FILE:kvctl>;PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/util:${CMAKE_CURRENT_LIST_DIR}")
