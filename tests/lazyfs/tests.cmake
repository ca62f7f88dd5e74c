# The power-cut file system (kvd_lazyfs, a FUSE passthrough that keeps
# unsynced data in memory and drops it on command) and the tests that use
# it: lazyfs_test (the file system against its model), lazyfs_kvd_test (kvd
# on it, case by case) and crash_loop_lazyfs
# (the daemon crash loop with kvd's data on it and the real Env: a power cut
# that trusts only the kernel). docs/testing.md, "The power-cut file system".
# All need root and /dev/fuse: elsewhere, or without libfuse3, they exit 77
# (skipped; CI fails on a skip).
pkg_check_modules(FUSE3 IMPORTED_TARGET fuse3)
set(_kvd_lazyfs_env "KVD_BIN=$<TARGET_FILE:kvd>;KVCTL_BIN=$<TARGET_FILE:kvctl>")
if(FUSE3_FOUND)
  add_executable(kvd_lazyfs
    ${CMAKE_CURRENT_LIST_DIR}/fuse_main.cc
    ${CMAKE_CURRENT_LIST_DIR}/lazyfs.cc
    ${CMAKE_CURRENT_LIST_DIR}/dir_log.cc
    ${CMAKE_CURRENT_LIST_DIR}/page_cache.cc)
  target_link_libraries(kvd_lazyfs PRIVATE PkgConfig::FUSE3)
  list(APPEND _kvd_lazyfs_env "KVD_LAZYFS_BIN=$<TARGET_FILE:kvd_lazyfs>")
else()
  message(STATUS "libfuse3 not found: lazyfs_test and crash_loop_lazyfs will skip")
endif()
if(DEFINED ENV{KVD_SOAK})
  set(KVD_LAZYFS_CYCLES 500)
else()
  set(KVD_LAZYFS_CYCLES 25)
endif()
add_test(NAME lazyfs_test COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/lazyfs_test.py)
add_test(NAME lazyfs_kvd_test COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/kvd_lazyfs_test.py)
add_test(NAME crash_loop_lazyfs
  COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/crash_loop_lazyfs.py --cycles ${KVD_LAZYFS_CYCLES} --mode sync
  --min-acked-per-cycle 100)
set_tests_properties(lazyfs_test lazyfs_kvd_test crash_loop_lazyfs PROPERTIES SKIP_RETURN_CODE 77 ENVIRONMENT "${_kvd_lazyfs_env}")
set_tests_properties(lazyfs_test lazyfs_kvd_test PROPERTIES LABELS "lazyfs;integration" TIMEOUT 300)
set_tests_properties(crash_loop_lazyfs PROPERTIES LABELS "lazyfs;crash;integration" TIMEOUT 900)
