# A Python test of the cluster that starts real kvd and kvctl (and etcd):
# exit 77 means skipped, which scripts/test.sh counts as a failure.
function(kvd_cluster_test name script timeout)
  add_test(NAME ${name} COMMAND python3 ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${script})
  set_tests_properties(${name} PROPERTIES
    LABELS "integration;cluster" TIMEOUT ${timeout} SKIP_RETURN_CODE 77
    ENVIRONMENT "KVD_BIN=$<TARGET_FILE:kvd>;KVCTL_BIN=$<TARGET_FILE:kvctl>;PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/util:${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
endfunction()

# The etcd client and the leader lease against a real 3-member etcd cluster
# (tests/cluster/etcd_cluster.py starts it). etcd_cases is driven by the
# Python test, one case per process; without /usr/bin/etcd the test exits 77
# (skipped), which scripts/test.sh counts as a failure: install-deps has it.
add_executable(etcd_cases ${CMAKE_CURRENT_LIST_DIR}/etcd_client_cases.cc ${CMAKE_CURRENT_LIST_DIR}/etcd_lease_cases.cc)
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
kvd_cluster_test(cluster_failover test_cluster_failover.py 300)

# The strict sync set: kill -9 of the primary under writers with
# sync_replicas = 1 loses no acknowledged write; only the member is promoted.
kvd_cluster_test(cluster_sync test_cluster_sync.py 300)

# Fast takeover: kill -9 of the primary, rounds; p50 <= 3 s, max <= 5 s.
kvd_cluster_test(cluster_takeover test_cluster_takeover.py 300)

# Candidate choice by durable LSN with sync_replicas = 2: the member that
# wins ties is made to lag; after kill -9 of the primary the other wins.
kvd_cluster_test(cluster_candidate test_cluster_candidate.py 300)

# sync_replicas changed by SIGHUP: the published sync set grows and shrinks
# with it (strict size, in the safe order), and decides the next failover.
kvd_cluster_test(cluster_sync_resize test_cluster_sync_resize.py 300)

# Planned switchover handled by the daemons (the key kvctl switchover puts).
kvd_cluster_test(cluster_switchover test_cluster_switchover.py 300)

# kvctl's cluster commands (cluster status, switchover, --cluster routing)
# against a real etcd whose keys the test writes itself, and real kvd nodes.
kvd_cluster_test(cluster_kvctl test_kvctl_cluster.py 600)

# TLS to etcd: one etcd member serving https with --client-cert-auth and
# certificates made for the run with the openssl CLI; kvd nodes and kvctl
# with the right CA and client certificate work, a wrong CA or no client
# certificate is refused and said so. Exits 77 without etcd or openssl.
kvd_cluster_test(cluster_etcd_tls test_cluster_etcd_tls.py 300)

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

# The Jepsen-style fault test (tests/cluster/jepsen_run.py --help): etcd and
# three kvd with [cluster] in network namespaces of their own, concurrent
# clients, every fault kind of issue 16 at least once, jepsen_check over the
# whole history. Default suite: one round of every kind, no new fault after
# 300 s; KVD_SOAK=1 (at configure time): 200 faults. Exits 77 (skipped, never
# passed) without CAP_NET_ADMIN, without etcd, or with a kvd that does not act
# on [cluster]. cluster_jepsen_selftest deletes an acknowledged write behind
# the history's back after one fault and passes only if the checker reports
# it lost.
# No --allow-unacknowledged-reads: primary reads wait for the sync watermark
# (the read barrier, docs/replication.md §6), so every read is checked,
# including those a failover could have made unacknowledged.
if(DEFINED ENV{KVD_SOAK})
  set(_kvd_jepsen_args --faults 200 --max-seconds 0)
  set(_kvd_jepsen_timeout 21600)
else()
  set(_kvd_jepsen_args --max-seconds 300)
  set(_kvd_jepsen_timeout 900)
endif()
add_test(NAME cluster_jepsen_short COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/jepsen_run.py ${_kvd_jepsen_args})
add_test(NAME cluster_jepsen_selftest
  COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/jepsen_run.py --inject-lost-write --faults 1 --kinds kill-primary)
set_tests_properties(cluster_jepsen_short PROPERTIES TIMEOUT ${_kvd_jepsen_timeout})
set_tests_properties(cluster_jepsen_selftest PROPERTIES TIMEOUT 300)
set_tests_properties(cluster_jepsen_short cluster_jepsen_selftest PROPERTIES
  LABELS "integration;cluster" SKIP_RETURN_CODE 77 RUN_SERIAL TRUE
  ENVIRONMENT "KVD_BIN=$<TARGET_FILE:kvd>;KVCTL_BIN=$<TARGET_FILE:kvctl>;PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/util:${CMAKE_CURRENT_LIST_DIR}")

# scripts/cluster.sh as README "Run a three-node cluster" uses it: start,
# write through --cluster, kill -9 the primary, revive it, switch over, stop.
kvd_cluster_test(cluster_script test_cluster_script.py 300)
