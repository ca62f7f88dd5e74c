// Engine::RewindTo: a running node cuts its log back to an LSN and restarts
// its state from snapshot + WAL up to there (docs/replication.md §5: a
// replica whose log diverged from its new primary's after the fork point).
//
// The order makes a crash at any step safe: everything appended is made
// durable first; the cut records are copied aside durably before the log is
// cut (TruncateWalAfterToFile); the epoch history follows the WAL (a crash
// in between leaves entries past the end, which Open and a second rewind
// handle); the state is then rebuilt by Engine::Open itself, so the rewound
// state is exactly what a restart would recover.
#include "kvd/snapshot.h"
#include "storage/engine_impl.h"

namespace kvd {

Result<WalTruncateReport> EngineImpl::RewindTo(Lsn lsn, const std::string& set_aside_path, CompletionSink* sink) {
  if (closed_) return Status::ShuttingDown("the engine is closed");
  KVD_RETURN_IF_ERROR(refusal_);
  if (lsn >= last_lsn_) {
    WalTruncateReport none;
    none.last_lsn_before = last_lsn_;
    return none;
  }
  // A snapshot holding the tail cannot be rewound: its state includes it.
  KVD_ASSIGN_OR_RETURN(std::vector<SnapshotInfo> snaps, ListSnapshots(env_, opts_.snapshot_dir));
  for (const SnapshotInfo& s : snaps) {
    if (s.lsn > lsn) {
      return Status::InvalidArgument("snapshot " + s.path + " covers LSN " + std::to_string(s.lsn) + ", after LSN " +
                                     std::to_string(lsn) + ": the tail cannot be cut (a full resync is needed)");
    }
  }

  // 1. Everything appended becomes durable and every commit and segment
  // drop is collected: nothing is in flight on the committer thread.
  KVD_RETURN_IF_ERROR(DriveUntilIdle(sink));
  // Writes still waiting now wait only for the acknowledgement gate: their
  // records are about to be cut, so they fail.
  const Status cut = Status::Fenced("the log was cut after LSN " + std::to_string(lsn) + " (a divergent tail)");
  for (const Waiter& w : waiters_) {
    if (sink) sink->OnWriteDone(w.lsn, cut, false);
  }
  waiters_.clear();
  for (const Flush& f : flushes_) {
    if (sink) sink->OnFlushDone(f.token, cut, ack_lsn());
  }
  flushes_.clear();

  // 2. Stop the writer. From here on a failure leaves no writer: the engine
  // refuses writes until a restart, which recovers whatever step was reached.
  committer_->Stop();
  while (committer_->TakeResult()) {
  }
  committer_.reset();
  Status st = wal_->Close();
  wal_.reset();
  auto fail = [&](const Status& why) {
    refusal_ = Status::WritesRefused("rewinding the log to LSN " + std::to_string(lsn) + " failed: " + why.ToString() +
                                     "; restart kvd");
    return refusal_;
  };
  if (!st.ok()) return fail(st);

  // 3. The cut, the copy first.
  WalTruncateReport report;
  st = TruncateWalAfterToFile(env_, opts_.wal_dir, lsn, set_aside_path, &report);
  if (!st.ok()) return fail(st);
  EpochHistory h = epochs_;
  if (h.TruncateAfter(lsn)) {
    st = SaveEpochHistory(env_, opts_.wal_dir, h);
    if (!st.ok()) return fail(st);
  }

  // 4. The state as recovery builds it, and a new writer and committer.
  RecoveryReport rr;
  Result<std::unique_ptr<Engine>> fresh = Engine::Open(opts_, &rr);
  if (!fresh) return fail(fresh.error());
  auto* f = static_cast<EngineImpl*>(fresh->get());
  state_ = std::move(f->state_);
  wal_ = std::move(f->wal_);
  committer_ = std::move(f->committer_);  // it writes through the WalWriter moved above
  f->closed_ = true;                      // nothing left for its destructor to close
  set_epoch_history(std::move(f->epochs_));
  last_lsn_ = written_lsn_ = durable_lsn_ = applied_lsn_ = sync_cover_started_ = f->last_lsn_;
  want_sync_upto_ = 0;
  want_fresh_sync_ = false;
  last_room_waiter_ = 0;
  acked_ = std::move(f->acked_);
  ack_watermark_ = std::min(ack_watermark_, last_lsn_);
  gate_fail_upto_ = 0;
  no_space_.clear();
  no_space_hold_ = false;
  wal_stats_ = f->wal_stats_;
  return report;
}

}  // namespace kvd
