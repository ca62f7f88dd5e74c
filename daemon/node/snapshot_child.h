// The forked snapshot child and the result it reports to the parent.
//
// The child writes the snapshot from its copy-on-write image of the State,
// then writes one fixed-size result record to a pipe and _exits. It must not
// touch libuv, spdlog or any lock another thread may have held at fork time:
// only WriteSnapshot (documented fork-safe), write(2) and _exit.
//
// Result record (little-endian, kChildResultBytes):
//   u32 magic 'KVSR'  u32 ok  u64 lsn  u64 entries  u64 bytes  u64 duration_us
//   char error[200] (NUL-padded)
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "kvd/env.h"
#include "kvd/state.h"
#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd::daemon {

inline constexpr uint32_t kChildResultMagic = 0x5253564B;  // "KVSR"
inline constexpr size_t kChildErrorBytes = 200;
inline constexpr size_t kChildResultBytes = 4 + 4 + 8 * 4 + kChildErrorBytes;

struct ChildResult {
  bool ok = false;
  Lsn lsn = 0;
  uint64_t entries = 0;
  uint64_t bytes = 0;
  std::chrono::microseconds duration{0};
  std::string error;
};

// Fixed-size encoding: no allocation, so the child may call it.
void EncodeChildResult(bool ok, Lsn lsn, uint64_t entries, uint64_t bytes, uint64_t duration_us,
                       std::string_view error, std::array<std::byte, kChildResultBytes>* out);
// kCorruption when the record is short, long or has the wrong magic (a child
// that died mid-way).
Result<ChildResult> ParseChildResult(std::span<const std::byte> data);

// The data-directory lock descriptors (FileLock::fd) every snapshot child
// keeps open, so the flock outlives the parent until the child is gone too: a
// kvd restarted after a SIGKILL cannot recover while a child of the dead one
// may still rename a snapshot into the directory (PR_SET_PDEATHSIG cannot
// stop a rename or fsync already in the kernel). Set once at start-up, before
// the first fork; at most kMaxChildLockFds, -1 entries are ignored.
inline constexpr size_t kMaxChildLockFds = 2;
void SetSnapshotChildLockFds(std::array<int, kMaxChildLockFds> fds);

// In the child: writes the snapshot, reports on result_fd, exits. Never returns.
[[noreturn]] void RunSnapshotChild(Env* env, const std::string& dir, const State& state, Lsn lsn,
                                   int result_fd);

// In the child of a replica's snapshot transfer (docs/replication.md §4.6):
// streams the snapshot format of `state` at `lsn` into out_fd (a pipe), then
// _exits 0, or 1 when a write failed (the parent sends nothing it has not
// seen the child finish). It writes nothing into the data directory, so it
// keeps no lock descriptors; a closed pipe (the transfer was cut short)
// kills it with SIGPIPE. Never returns.
[[noreturn]] void RunSnapshotStreamChild(const State& state, Lsn lsn, int out_fd);

}  // namespace kvd::daemon
