# The power-cut file system (kvd_lazyfs, a FUSE passthrough that keeps
# unsynced data in memory and drops it on command) and the tests that use
# it: lazyfs_test (the file system against its model).
# docs/testing.md, "The power-cut file system".
# It needs root and /dev/fuse: elsewhere, or without libfuse3, it exits 77
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
add_test(NAME lazyfs_test COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/lazyfs_test.py)
set_tests_properties(lazyfs_test PROPERTIES
  LABELS "lazyfs;integration" SKIP_RETURN_CODE 77 ENVIRONMENT "${_kvd_lazyfs_env}")
set_tests_properties(lazyfs_test PROPERTIES TIMEOUT 300)
