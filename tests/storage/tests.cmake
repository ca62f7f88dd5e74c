# Storage tests where the engine's committer thread meets the owner thread
# (the commit observer runs on it): the TSan build runs everything labelled
# "threads".
foreach(t engine_test batch_bound_test power_loss_test committer_test commit_observer_test ack_gate_test
         retention_floor_test write_fence_test engine_clock_test)
  if(TEST ${t})
    set_tests_properties(${t} PROPERTIES LABELS "unit;storage;threads")
  endif()
endforeach()

# The TSan build compiles only these (scripts/test.sh): the engine's committer
# thread is where threads meet.
add_custom_target(threads_tests DEPENDS engine_test batch_bound_test power_loss_test committer_test commit_observer_test
                  ack_gate_test retention_floor_test write_fence_test engine_clock_test)
