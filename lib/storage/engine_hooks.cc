// The engine's hooks for replication: the acknowledgement gate, the write
// fence and the WAL retention floor (the commit observer lives on the
// committer thread, committer.cc). Contracts in kvd/engine.h; the
// bookkeeping they add to the write path is described in engine_impl.h.
#include <algorithm>

#include "storage/engine_impl.h"

namespace kvd {

// ---- acknowledgement gate ------------------------------------------------------------

Status EngineImpl::SetAckWatermarkRequired(bool required) {
  if (required == ack_gate_) return Status::Ok();
  ack_gate_ = required;
  if (!required) {
    // What the gate held completes OK at the next Poll.
    gate_fail_upto_ = 0;
    for (Flush& f : flushes_) f.gate_failure = Status::Ok();
    return Status::Ok();
  }
  // Writes already waiting now need an fdatasync too (none mode may have
  // written them without one): ask for it.
  if (!waiters_.empty()) {
    want_sync_upto_ = std::max(want_sync_upto_, waiters_.back().lsn);
    MaybeStartCommit(env_->Now());
  }
  return Status::Ok();
}

void EngineImpl::AdvanceAckWatermark(Lsn lsn) {
  // Only records that exist can have been confirmed: a larger value would
  // cover LSNs not handed out yet.
  ack_watermark_ = std::max(ack_watermark_, std::min(lsn, last_lsn_));
}

void EngineImpl::FailGatedWritesUpTo(const Status& why, Lsn upto) {
  if (!ack_gate_) return;  // nothing is held by it
  const Status failure = why.ok() ? Status::Internal("FailGatedWrites called with OK") : why;
  // The gated waiters are those applied and durable: a prefix of waiters_.
  gate_fail_upto_ = std::max(gate_fail_upto_, std::min({applied_lsn_, durable_lsn_, upto}));
  gate_fail_status_ = failure;
  for (Flush& f : flushes_) {
    if (FlushSynced(f) && f.target > ack_watermark_ && f.target <= upto) f.gate_failure = failure;
  }
}

void EngineImpl::DropAckGate(const Status& why) {
  if (!ack_gate_) return;
  const Status failure = why.ok() ? Status::Internal("DropAckGate called with OK") : why;
  ack_gate_ = false;
  // Every waiter now, durable or not yet: Report keeps gating those up to
  // here (they fail once durable unless the watermark covers them).
  gate_fail_upto_ = std::max(gate_fail_upto_, last_lsn_);
  gate_fail_status_ = failure;
  for (Flush& f : flushes_) {
    if (f.target > ack_watermark_) f.gate_failure = failure;
  }
}

// ---- write fence ------------------------------------------------------------------------

Status EngineImpl::SetWriteFence(Status why) {
  if (why.code() != Code::kNotPrimary && why.code() != Code::kFenced) {
    return Status::InvalidArgument("a write fence needs code NotPrimary or Fenced, not " +
                                   std::string(CodeName(why.code())));
  }
  fence_ = std::move(why);
  return Status::Ok();
}

// ---- retention floor ---------------------------------------------------------------------

Lsn EngineImpl::DropBound() const {
  if (retention_floor_ == 0) return snapshot_lsn_;
  return std::min(snapshot_lsn_, retention_floor_ - 1);
}

void EngineImpl::SubmitDrop() {
  if (!committer_ || closed_) return;
  CommitJob job;
  job.kind = CommitJob::Kind::kDropSegments;
  job.drop_upto = DropBound();
  job.covered_upto = snapshot_lsn_;
  drops_running_++;
  committer_->Submit(std::move(job));
}

void EngineImpl::SetRetentionFloor(Lsn floor) {
  retention_floor_ = floor;
  // A drop only when the new bound frees the oldest kept segment: consumers
  // may move the floor on every acknowledgement.
  if (drops_running_ == 0 && retained_.segments > 0 && DropBound() >= retained_.release_lsn) SubmitDrop();
}

void EngineImpl::OnDropDone(const CommitResult& r) {
  drops_running_--;
  wal_stats_ = r.wal;
  retained_ = r.retained;
  if (!r.write_status.ok()) Warn("deleting WAL segments after a snapshot: " + r.write_status.ToString());
  // The floor may have risen while the drop ran.
  if (drops_running_ == 0 && retained_.segments > 0 && DropBound() >= retained_.release_lsn) SubmitDrop();
}

}  // namespace kvd
