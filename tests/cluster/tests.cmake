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

# The fault tests' private network (netns.py) on its own: namespaces joined
# by veth pairs to a bridge, iptables partitions and healing, a Unix socket
# across namespaces, clean-up of our own and of a crashed run's namespaces.
# Without CAP_NET_ADMIN it exits 77 (skipped, never passed).
add_test(NAME cluster_netns COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_netns.py)
set_tests_properties(cluster_netns PROPERTIES
  LABELS "integration;cluster" TIMEOUT 300 SKIP_RETURN_CODE 77
  ENVIRONMENT "PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/util:${CMAKE_CURRENT_LIST_DIR}")

# The fault tests' checker against made-up histories (no kvd, no etcd): each
# correct history passes, each kind of violation (lost acknowledged write,
# two primaries in an epoch, overlapping epochs, stale read, divergence...)
# is reported.
add_test(NAME cluster_jepsen_check_test COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/jepsen_check_test.py)
set_tests_properties(cluster_jepsen_check_test PROPERTIES LABELS "cluster;unit" TIMEOUT 120)
