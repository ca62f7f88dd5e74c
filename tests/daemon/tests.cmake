# Daemon tests that read files from the source tree (conf/kvd.toml, fuzz corpora).
foreach(t config_test config_fuzz_regression_test)
  if(TARGET ${t})
    target_compile_definitions(${t} PRIVATE KVD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  endif()
endforeach()
