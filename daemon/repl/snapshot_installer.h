// SnapshotInstaller: a replica's side of one snapshot transfer
// (docs/replication.md §4.6), without sockets so tests can feed it any
// bytes. Begin creates snapshots/incoming.tmp (a leftover one, from a
// transfer cut short or a crash, is removed first); Append writes each
// chunk at its offset and folds it into a CRC32C; Finish installs the file
// only if its size and CRC match SNAPSHOT_END's, it verifies as a snapshot
// of the announced LSN, and fsync of the file, rename to snap-<lsn>.kvs and
// fsync of the directory all returned. Until Finish returns OK nothing in
// the snapshot directory counts; on any failure (and on Abort, or when the
// installer is destroyed mid-transfer) incoming.tmp is removed.
//
// Writes are plain write(2)s on the caller's thread (the loop): 1 MiB at a
// time, into the page cache; the one fsync is at Finish.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "kvd/env.h"
#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd::daemon::repl {

class SnapshotInstaller {
 public:
  static constexpr std::string_view kIncomingName = "incoming.tmp";

  SnapshotInstaller(Env* env, std::string snapshot_dir) : env_(env), dir_(std::move(snapshot_dir)) {}
  ~SnapshotInstaller() { Abort(); }
  SnapshotInstaller(const SnapshotInstaller&) = delete;
  SnapshotInstaller& operator=(const SnapshotInstaller&) = delete;

  Status Begin(Lsn snapshot_lsn);
  Status Append(std::string_view bytes);
  // On success: the path of the installed snapshot.
  Result<std::string> Finish(uint64_t total_bytes, uint32_t file_crc);
  // Finish's checks and fsync without the rename: on success incoming.tmp is
  // a complete, durable, verified snapshot, left for
  // Engine::ResyncFromSnapshot to move into place (its path is returned).
  Result<std::string> Verify(uint64_t total_bytes, uint32_t file_crc);
  // Drops a transfer in progress (removes incoming.tmp). Idempotent.
  void Abort();

  bool active() const { return file_ != nullptr; }
  Lsn snapshot_lsn() const { return lsn_; }
  uint64_t bytes() const { return bytes_; }
  std::string incoming_path() const;

 private:
  Env* env_;
  std::string dir_;
  std::unique_ptr<WritableFile> file_;
  Lsn lsn_ = 0;
  uint64_t bytes_ = 0;
  uint32_t crc_ = 0;
};

}  // namespace kvd::daemon::repl
