# Crash loops against the real kvd (tests/crash/crash_loop.py --help).
# Default suite: 50 SIGKILL cycles in sync mode, 20 in batch mode, and, in
# builds with the fault-injecting Env, 50 simulated power losses.
# Long soaks: KVD_SOAK=1 ctest -R crash (1,000 cycles each).
if(DEFINED ENV{KVD_SOAK})
  set(KVD_CRASH_CYCLES 1000)
else()
  set(KVD_CRASH_CYCLES 50)
endif()
set(_kvd_crash_env "KVD_BIN=$<TARGET_FILE:kvd>;KVCTL_BIN=$<TARGET_FILE:kvctl>")

add_test(NAME crash_loop_sync
  COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/crash_loop.py --cycles ${KVD_CRASH_CYCLES} --mode sync)
add_test(NAME crash_loop_batch
  COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/crash_loop.py --cycles 20 --mode batch --batch-size 64)
set(_kvd_crash_tests crash_loop_sync crash_loop_batch)
if(KVD_FAULT_INJECTION)
  add_test(NAME crash_loop_power_loss
    COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/crash_loop.py --cycles ${KVD_CRASH_CYCLES} --mode sync --power-loss)
  list(APPEND _kvd_crash_tests crash_loop_power_loss)
endif()
set_tests_properties(${_kvd_crash_tests} PROPERTIES
  LABELS "crash;integration" TIMEOUT 1800 ENVIRONMENT "${_kvd_crash_env}")
