// Mutation switches: deliberately broken variants of kvd, to prove that the
// test suite notices them (scripts/mutate.sh, docs/testing.md).
//
//   if (KVD_MUTANT(skip_recovered_data_sync)) return Status::Ok();
//
// Only a build configured with -DKVD_MUTATION=ON (never a release or a
// packaged one: CMakeLists.txt refuses) has them. There KVD_MUTANT(name) is
// true when the environment variable KVD_MUTANT names that mutant; it is read
// once per process, and a value that names no mutant aborts the process at
// start-up, so a typo cannot pass for a mutant the tests caught. Everywhere
// else KVD_MUTANT(name) is the constant false and no trace of the switch is
// compiled in. The name is checked against the list below in every build, so
// a switch cannot name a mutant that does not exist.
#pragma once

// Every mutant, as X(name). What each one breaks: docs/testing.md.
#define KVD_MUTANTS(X)                \
  X(ack_before_fdatasync)             \
  X(skip_fdatasync_sync_mode)         \
  X(skip_dir_fsync_new_segment)       \
  X(retry_failed_fdatasync)           \
  X(ignore_crc_on_replay)             \
  X(get_ahead_of_pending_write)       \
  X(batch_exceeds_bound)              \
  X(skip_recovered_data_sync)         \
  X(skip_fdatasync_syscall)           \
  X(batch_bound_off_by_one)           \
  X(truncate_instead_of_set_aside)    \
  X(skip_sync_before_rollover)        \
  X(skip_crc_on_replicated_append)    \
  X(apply_before_durable_sync_mode)   \
  X(keep_failed_write_bytes)

namespace kvd::mutation {

enum class Mutant : int {
  kNone = 0,
#define KVD_MUTANT_ENUM_(name) name,
  KVD_MUTANTS(KVD_MUTANT_ENUM_)
#undef KVD_MUTANT_ENUM_
};

#ifdef KVD_MUTATION
// Whether KVD_MUTANT selects m (lib/mutation/mutation.cc).
bool Active(Mutant m);
#endif

}  // namespace kvd::mutation

#ifdef KVD_MUTATION
#define KVD_MUTANT(name) (::kvd::mutation::Active(::kvd::mutation::Mutant::name))
#else
#define KVD_MUTANT(name) (static_cast<void>(::kvd::mutation::Mutant::name), false)
#endif
