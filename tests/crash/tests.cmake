# Crash loops against the real kvd (tests/crash/crash_loop.py --help).
# Default suite: 50 SIGKILL cycles in sync mode, 20 in batch mode, 50
# simulated power losses in sync mode and 20 in batch mode (the loss bound
# under power loss). The power-loss loops need the fault-injecting Env: in
# builds without it they exit 77 and ctest reports them skipped.
# Long soaks: KVD_SOAK=1 ctest -R crash (1,000 cycles each).
if(DEFINED ENV{KVD_SOAK})
  set(KVD_CRASH_CYCLES 1000)
  set(KVD_CRASH_BATCH_CYCLES 1000)
else()
  set(KVD_CRASH_CYCLES 50)
  set(KVD_CRASH_BATCH_CYCLES 20)
endif()
set(_kvd_crash_env "KVD_BIN=$<TARGET_FILE:kvd>;KVCTL_BIN=$<TARGET_FILE:kvctl>")
set(_kvd_crash_py ${CMAKE_CURRENT_LIST_DIR}/crash_loop.py)

add_test(NAME crash_loop_sync COMMAND python3 ${_kvd_crash_py} --cycles ${KVD_CRASH_CYCLES} --mode sync)
add_test(NAME crash_loop_batch
  COMMAND python3 ${_kvd_crash_py} --cycles ${KVD_CRASH_BATCH_CYCLES} --mode batch --batch-size 64)
add_test(NAME crash_loop_power_loss
  COMMAND python3 ${_kvd_crash_py} --cycles ${KVD_CRASH_CYCLES} --mode sync --power-loss)
add_test(NAME crash_loop_batch_power_loss
  COMMAND python3 ${_kvd_crash_py} --cycles ${KVD_CRASH_BATCH_CYCLES} --mode batch --batch-size 64 --power-loss)
set_tests_properties(crash_loop_sync crash_loop_batch crash_loop_power_loss crash_loop_batch_power_loss
  PROPERTIES LABELS "crash;integration" TIMEOUT 1800 SKIP_RETURN_CODE 77 ENVIRONMENT "${_kvd_crash_env}")

# The crash loop's checks against made-up histories: each kind of wrong
# recovery is reported (no kvd started).
add_test(NAME crash_check_test COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/crash_check_test.py)
set_tests_properties(crash_check_test PROPERTIES LABELS "crash;unit" TIMEOUT 60)

# The replication crash loop (tests/crash/repl_crash_loop.py --help): three
# nodes with sync_replicas = 1, kill -9 of the primary (failover by promote
# and replicate --from, checked against the ledger) or of a replica, full
# scans compared every few cycles; the _slow_links variant puts a fault proxy
# in front of each replica that makes it lag while the writers run. Default
# suite: 10 cycles each, starting no new cycle after 75 s; KVD_SOAK=1: 1,000
# cycles each.
if(DEFINED ENV{KVD_SOAK})
  set(_kvd_repl_crash_args --cycles 1000)
  set(_kvd_repl_crash_timeout 21600)
else()
  set(_kvd_repl_crash_args --cycles 10 --max-seconds 75)
  set(_kvd_repl_crash_timeout 600)
endif()
add_test(NAME crash_loop_replication
  COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/repl_crash_loop.py ${_kvd_repl_crash_args})
add_test(NAME crash_loop_replication_slow_links
  COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/repl_crash_loop.py ${_kvd_repl_crash_args} --slow-links)
set_tests_properties(crash_loop_replication crash_loop_replication_slow_links
  PROPERTIES LABELS "crash;integration;replication" TIMEOUT ${_kvd_repl_crash_timeout} ENVIRONMENT "${_kvd_crash_env}")
