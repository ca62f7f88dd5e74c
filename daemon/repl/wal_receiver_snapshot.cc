// WalReceiver, snapshot transfer (docs/replication.md §4.6): the primary no
// longer has the WAL this replica needs and sends a snapshot instead. The
// bytes go to snapshots/incoming.tmp (SnapshotInstaller); only a complete,
// verified and durable snapshot is installed, then the engine resets to it
// (the old WAL set aside, never deleted) and streaming resumes after it.
#include <spdlog/fmt/fmt.h>

#include "repl/snapshot_messages.h"
#include "repl/wal_receiver.h"
#include "sys/log.h"

namespace kvd::daemon::repl {

void WalReceiver::SetStorage(Env* env, std::string wal_dir, std::string snapshot_dir) {
  env_ = env;
  wal_dir_ = std::move(wal_dir);
  snapshot_dir_ = std::move(snapshot_dir);
  installer_ = std::make_unique<SnapshotInstaller>(env_, snapshot_dir_);
}

void WalReceiver::OnSnapshotFrame(const Frame& f) {
  const Epoch mine = engine_->current_epoch();
  if (state_ != ReceiverState::kSnapshotTransfer || installer_ == nullptr || !pending_install_.empty()) {
    return link_->Fail(Code::kInvalidArgument, fmt::format("unexpected {}", MsgTypeName(f.type)), mine);
  }
  switch (f.type) {
    case MsgType::kSnapshotBegin: {
      auto b = DecodeSnapshotBegin(f.body);
      if (!b) return link_->Fail(Code::kInvalidArgument, b.error().message(), mine);
      if (installer_->active()) return link_->Fail(Code::kInvalidArgument, "a second SNAPSHOT_BEGIN", mine);
      if (Status s = installer_->Begin(b->snapshot_lsn); !s.ok()) {
        LogEvent(spdlog::level::err, Event::kReplication, engine_->last_lsn(),
                 fmt::format("replica {}: cannot receive a snapshot: {}", node_name_, s.ToString()));
        return link_->Fail(s.code(), "replica cannot receive a snapshot: " + s.message(), mine);
      }
      return;
    }
    case MsgType::kSnapshotChunk: {
      if (!installer_->active()) return link_->Fail(Code::kInvalidArgument, "SNAPSHOT_CHUNK before BEGIN", mine);
      if (Status s = CheckSnapshotChunk(f.body); !s.ok()) return link_->Fail(s.code(), s.message(), mine);
      if (Status s = installer_->Append(f.body); !s.ok()) {
        LogEvent(spdlog::level::err, Event::kReplication, engine_->last_lsn(),
                 fmt::format("replica {}: snapshot transfer: {}", node_name_, s.ToString()));
        return link_->Fail(s.code(), "replica cannot write the snapshot: " + s.message(), mine);
      }
      return;
    }
    case MsgType::kSnapshotEnd: {
      auto e = DecodeSnapshotEnd(f.body);
      if (!e) return link_->Fail(Code::kInvalidArgument, e.error().message(), mine);
      // A resync leaves the file as incoming.tmp: the engine moves the old
      // state aside before it renames it into place.
      Result<std::string> path = resync_ ? installer_->Verify(e->total_bytes, e->file_crc)
                                         : installer_->Finish(e->total_bytes, e->file_crc);
      if (!path) {
        LogEvent(spdlog::level::err, Event::kReplication, engine_->last_lsn(),
                 fmt::format("replica {}: transferred snapshot refused, not installed: {}", node_name_,
                             path.error().ToString()));
        return link_->Fail(path.error().code(), "bad_snapshot: " + path.error().message(), mine);
      }
      pending_install_ = *path;
      (void)InstallSnapshot();
      return;
    }
    default: return;
  }
}

bool WalReceiver::InstallSnapshot() {
  const Epoch mine = engine_->current_epoch();
  const Lsn lsn = installer_->snapshot_lsn();
  std::string aside = JoinPath(wal_dir_, fmt::format("replaced-by-snapshot-{:020}", lsn));
  for (int i = 1; env_->FileExists(aside); ++i) {
    aside = JoinPath(wal_dir_, fmt::format("replaced-by-snapshot-{:020}.{}", lsn, i));
  }
  SnapshotResetReport rep;
  Status s = resync_ ? engine_->ResyncFromSnapshot(pending_install_, primary_history_, aside, &rep)
                     : engine_->ResetToSnapshot(pending_install_, primary_history_, aside, &rep);
  if (s.code() == Code::kBusy) return false;  // the timer or the next WAL message tries again
  pending_install_.clear();
  if (!s.ok()) {
    LogEvent(spdlog::level::err, Event::kReplication, engine_->last_lsn(),
             fmt::format("replica {}: cannot switch to the transferred snapshot at LSN {}: {}", node_name_, lsn,
                         s.ToString()));
    link_->Fail(s.code(), "replica cannot install the snapshot: " + s.message(), mine);
    return false;
  }
  ++snapshots_installed_;
  // The old log's durable LSN (local_durable_) and the feed's cache may lie
  // beyond the snapshot: neither may speak for the records that follow it.
  local_durable_ = engine_->durable_lsn();
  if (hooks_.after_reset) hooks_.after_reset();
  if (resync_) {
    LogEvent(spdlog::level::warn, Event::kReplication, lsn,
             fmt::format("replica {}: resynced from the primary's snapshot: this node's divergent state (log up to "
                         "LSN {}, diverged after LSN {}) is set aside: {} WAL segment(s) in {}, {} snapshot(s) in {}",
                         node_name_, rep.old_last_lsn, resync_fork_, rep.set_aside_files.size(), aside,
                         rep.set_aside_snapshots.size(),
                         JoinPath(snapshot_dir_, aside.substr(aside.find_last_of('/') + 1))));
    resync_ = false;
  }
  LogEvent(spdlog::level::warn, Event::kReplication, lsn,
           fmt::format("replica {}: installed the snapshot at LSN {} from primary {} ({} keys, {} bytes); the "
                       "previous log (up to LSN {}) is set aside in {} ({} segment(s)); streaming from LSN {}",
                       node_name_, lsn, primary_name_, rep.entries, installer_->bytes(), rep.old_last_lsn, aside,
                       rep.set_aside_files.size(), lsn + 1));
  state_ = ReceiverState::kStreaming;
  backoff_ = std::chrono::milliseconds(100);
  last_error_.clear();
  SendAck();
  return true;
}

}  // namespace kvd::daemon::repl
