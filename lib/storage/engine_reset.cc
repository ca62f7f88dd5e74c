// Engine::ResetToSnapshot: a replica replaces its whole state with a
// snapshot transferred from its primary (docs/replication.md §4.6).
//
// Order, so that a crash at any point recovers to a consistent state:
//   the snapshot file is already durable under its final name (the caller),
//   so from here recovery prefers it and skips the records it covers;
//   1. load and verify it into a fresh State (nothing changed on failure);
//   2. stop the committer, close the WAL writer;
//   3. rename every segment into set_aside_dir, fsync both directories
//      (never deleted: an operator can still read them);
//   4. save the epoch history for the new log;
//   5. open a new WAL at snapshot LSN + 1, swap the state, restart the
//      committer.
// ResyncFromSnapshot (a divergent tail inside this node's own snapshots):
// the snapshot is not yet under its final name. Step 3 moves the segments
// newest first (what is left is a prefix of the log), then every snapshot,
// newest first (what is left is an older state), and only then is the new
// snapshot renamed into place: recovery never combines it with the
// divergent records, and no snapshot is overwritten.
#include <algorithm>

#include "kvd/snapshot.h"
#include "storage/engine_impl.h"

namespace kvd {

Status EngineImpl::ResetToSnapshot(const std::string& snapshot_path, const EpochHistory& history,
                                   const std::string& set_aside_dir, SnapshotResetReport* report) {
  return ResetTo(snapshot_path, history, set_aside_dir, false, report);
}

Status EngineImpl::ResyncFromSnapshot(const std::string& incoming_path, const EpochHistory& history,
                                      const std::string& set_aside_dir, SnapshotResetReport* report) {
  return ResetTo(incoming_path, history, set_aside_dir, true, report);
}

Status EngineImpl::ResetTo(const std::string& snapshot_path, const EpochHistory& history,
                           const std::string& set_aside_dir, bool resync, SnapshotResetReport* report) {
  SnapshotResetReport local;
  if (report == nullptr) report = &local;
  *report = SnapshotResetReport{};
  report->old_last_lsn = last_lsn_;
  if (closed_) return Status::ShuttingDown("the engine is closed");
  KVD_RETURN_IF_ERROR(refusal_);
  // Nothing in flight: every record durable and applied, every completion
  // reported, no job on the committer (a segment drop included).
  if (commit_running_ || !pending_.empty() || !waiters_.empty() || !flushes_.empty() || drops_running_ > 0 ||
      durable_lsn_ < last_lsn_ || applied_lsn_ < last_lsn_ || committer_->outstanding() > 0) {
    return Status::Busy("records or completions are still in flight");
  }

  State fresh;
  KVD_ASSIGN_OR_RETURN(SnapshotInfo info, LoadSnapshot(env_, snapshot_path, &fresh));
  report->snapshot_lsn = info.lsn;
  report->entries = info.entries;

  // From here on the old log is closed: a failure leaves no usable writer.
  auto fail = [this](Status s, std::string_view what) {
    refusal_ = Status::WritesRefused("resetting to a transferred snapshot failed (" + std::string(what) +
                                     "): " + s.ToString() + "; restart to recover from the installed snapshot");
    return refusal_;
  };
  committer_->Stop();
  while (committer_->TakeResult()) {
  }
  committer_.reset();
  if (Status c = wal_->Close(); !c.ok()) {
    wal_.reset();
    return fail(c, "closing the WAL");
  }
  wal_.reset();

  auto names = env_->ListDir(opts_.wal_dir);
  if (!names) return fail(names.error(), "listing the WAL");
  std::vector<std::string> segments;
  for (const std::string& n : *names) {
    if (ParseSegmentFileName(n)) segments.push_back(n);
  }
  std::sort(segments.begin(), segments.end());
  if (resync) std::reverse(segments.begin(), segments.end());  // newest first: a prefix stays
  if (Status s = env_->CreateDirs(set_aside_dir); !s.ok()) return fail(s, "creating " + set_aside_dir);
  for (const std::string& n : segments) {
    const std::string to = JoinPath(set_aside_dir, n);
    if (Status s = env_->RenameFile(JoinPath(opts_.wal_dir, n), to); !s.ok()) return fail(s, "setting aside " + n);
    report->set_aside_files.push_back(to);
    // A resync's old log leaves the WAL directory before the new snapshot
    // counts: each move durable before the next.
    if (resync) {
      if (Status s = env_->SyncDir(set_aside_dir); !s.ok()) return fail(s, "fsync of " + set_aside_dir);
      if (Status s = env_->SyncDir(opts_.wal_dir); !s.ok()) return fail(s, "fsync of the WAL directory");
    }
  }
  if (Status s = env_->SyncDir(set_aside_dir); !s.ok()) return fail(s, "fsync of " + set_aside_dir);
  if (Status s = env_->SyncDir(opts_.wal_dir); !s.ok()) return fail(s, "fsync of the WAL directory");
  if (resync) {
    // Then the old snapshots, newest first, into a directory of the same
    // name inside the snapshot directory (a rename never crosses file
    // systems), and last the new snapshot into place.
    const std::string name = set_aside_dir.substr(set_aside_dir.find_last_of('/') + 1);
    const std::string snap_aside = JoinPath(opts_.snapshot_dir, name);
    auto snaps = ListSnapshots(env_, opts_.snapshot_dir);
    if (!snaps) return fail(snaps.error(), "listing the snapshots");
    if (Status s = env_->CreateDirs(snap_aside); !s.ok()) return fail(s, "creating " + snap_aside);
    for (const SnapshotInfo& old : *snaps) {
      const std::string to = JoinPath(snap_aside, old.path.substr(old.path.find_last_of('/') + 1));
      if (Status s = env_->RenameFile(old.path, to); !s.ok()) return fail(s, "setting aside " + old.path);
      if (Status s = env_->SyncDir(snap_aside); !s.ok()) return fail(s, "fsync of " + snap_aside);
      if (Status s = env_->SyncDir(opts_.snapshot_dir); !s.ok()) return fail(s, "fsync of the snapshot directory");
      report->set_aside_snapshots.push_back(to);
    }
    const std::string final_path = JoinPath(opts_.snapshot_dir, SnapshotFileName(info.lsn));
    if (Status s = env_->RenameFile(snapshot_path, final_path); !s.ok()) return fail(s, "installing " + final_path);
    if (Status s = env_->SyncDir(opts_.snapshot_dir); !s.ok()) return fail(s, "fsync of the snapshot directory");
  }

  EpochHistory next = history;
  (void)next.TruncateAfter(info.lsn);  // later epochs begin again with their records
  if (next.empty()) next = EpochHistory::Initial();
  if (Status s = SaveEpochHistory(env_, opts_.wal_dir, next); !s.ok()) return fail(s, "saving the epoch history");

  WalWriterOptions wwo;
  wwo.dir = opts_.wal_dir;
  wwo.segment_size = opts_.segment_size;
  wwo.preallocate = opts_.preallocate;
  wwo.on_warning = opts_.on_warning;
  auto wal = WalWriter::Open(env_, wwo, WalRecoveryReport{}, info.lsn + 1);
  if (!wal) return fail(wal.error(), "opening a new WAL");
  wal_ = std::move(*wal);

  set_epoch_history(std::move(next));
  state_ = std::move(fresh);
  snapshot_lsn_ = info.lsn;
  retained_ = RetainedWal{};
  acked_ = AckWindow{};
  last_room_waiter_ = 0;
  want_sync_upto_ = 0;
  want_fresh_sync_ = false;
  no_space_.clear();
  no_space_hold_ = false;
  gate_fail_upto_ = 0;
  ack_watermark_ = std::max(ack_watermark_, info.lsn);
  Start(info.lsn);
  if (Status s = PruneSnapshots(env_, opts_.snapshot_dir, info.lsn); !s.ok()) {
    Warn("pruning snapshots after installing a transferred one: " + s.ToString());
  }
  return Status::Ok();
}

}  // namespace kvd
