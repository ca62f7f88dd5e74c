// The commit half of EngineImpl: starting group commits, collecting the
// committer's results, applying and acknowledging them in LSN order, and
// the refusals (ENOSPC, a failed fdatasync). engine.cc holds the write
// entry points that fill the groups these functions commit.
#include <algorithm>

#include "kvd/mutation.h"
#include "storage/engine_impl.h"

namespace kvd {

void EngineImpl::RequestFlush(uint64_t token) {
  Status s = closed_ ? Status::ShuttingDown("the engine is closed") : refusal_;
  if (!s.ok()) {
    failed_flushes_.emplace_back(token, s);
    if (committer_) {
      CommitJob noop;
      noop.kind = CommitJob::Kind::kNoop;
      committer_->Submit(std::move(noop));  // only to wake the owner through notify
    }
    return;
  }
  flushes_.push_back({token, last_lsn_, syncs_started_, Status::Ok()});
  want_sync_upto_ = std::max(want_sync_upto_, last_lsn_);
  want_fresh_sync_ = true;
  MaybeStartCommit(env_->Now());
}

// ---- commits --------------------------------------------------------------------------

bool EngineImpl::SyncWanted() const {
  if (want_fresh_sync_ || want_sync_upto_ > sync_cover_started_) return true;
  for (const Group& g : pending_) {
    if (g.has_waiter) return true;
  }
  return false;
}

void EngineImpl::MaybeStartCommit(Clock::time_point now) {
  if (commit_running_ || !refusal_.ok() || no_space_hold_ || closed_) return;
  GroupInputs in;
  in.now = now;
  in.pending_records = pending_records_;
  in.pending_bytes = pending_bytes_;
  if (!pending_.empty()) {
    in.front_group_full = pending_.front().closed;
    in.oldest_pending = pending_.front().oldest;
  }
  in.sync_wanted = SyncWanted();
  CommitPlan plan = Decide(dur_, in);
  if (plan.start) StartCommit(plan.sync);
}

void EngineImpl::StartCommit(bool sync) {
  CommitJob job;
  job.kind = CommitJob::Kind::kCommit;
  if (!pending_.empty()) {
    Group g = std::move(pending_.front());
    pending_.pop_front();
    pending_records_ -= g.count;
    pending_bytes_ -= g.buf.size();
    job.records = std::move(g.buf);
    job.first = g.first;
    job.last = g.last;
    job.count = g.count;
  }
  job.sync = sync && !(KVD_MUTANT(skip_fdatasync_sync_mode) && dur_.mode == DurabilityMode::kSync);
  inflight_sync_seq_ = 0;
  if (sync) {
    inflight_sync_seq_ = ++syncs_started_;
    sync_cover_started_ = std::max(written_lsn_, job.last);
    want_fresh_sync_ = false;
  }
  commit_running_ = true;
  committer_->Submit(std::move(job));
}

void EngineImpl::CollectResults(CompletionSink* sink) {
  if (!committer_) return;
  while (auto r = committer_->TakeResult()) {
    switch (r->job.kind) {
      case CommitJob::Kind::kCommit:
        HandleCommit(std::move(*r), sink);
        break;
      case CommitJob::Kind::kDropSegments:
        OnDropDone(*r);
        break;
      case CommitJob::Kind::kNoop:
        break;
    }
  }
  Report(sink);
}

void EngineImpl::HandleCommit(CommitResult r, CompletionSink* sink) {
  commit_running_ = false;
  wal_stats_ = r.wal;
  CommitJob& job = r.job;
  if (!r.write_status.ok()) {
    if (r.write_status.IsNoSpace()) {
      HandleNoSpace(std::move(job), r.write_status, sink);
    } else {
      Refuse(r.write_status, "a WAL write failed", sink);
    }
    return;
  }
  if (job.count > 0) {
    written_lsn_ = job.last;
    no_space_.clear();
  }
  if (job.sync || (KVD_MUTANT(skip_fdatasync_sync_mode) && inflight_sync_seq_ != 0)) {
    if (!r.sync_status.ok()) {
      Refuse(r.sync_status, "fdatasync failed", sink);
      return;
    }
    if (written_lsn_ > durable_lsn_) {
      groups_++;
      grouped_records_ += written_lsn_ - durable_lsn_;
      group_sizes_.Add(written_lsn_ - durable_lsn_);
    }
    durable_lsn_ = written_lsn_;
    syncs_done_ = inflight_sync_seq_;
    if (!acked_.empty()) {
      // The oldest acknowledged record leaves the window now (if covered):
      // how long it was at risk.
      const Clock::time_point now = env_->Now();
      if (now > acked_.oldest()) ack_age_peak_ = std::max(ack_age_peak_, now - acked_.oldest());
      acked_.OnDurable(durable_lsn_);
    }
  }
  if (job.last > applied_lsn_) ApplyGroup(job.records);
  if (job.records.capacity() <= 2 * kGroupBytes && job.records.capacity() > spare_buf_.capacity()) {
    job.records.clear();
    spare_buf_ = std::move(job.records);
  }
}

void EngineImpl::ApplyGroup(std::string_view records) {
  auto w = waiters_.begin();
  while (w != waiters_.end() && w->lsn <= applied_lsn_) ++w;
  ForEachRecord(records, [&](const WalRecord& rec) {
    if (rec.lsn <= applied_lsn_) return true;
    bool existed = false;
    uint64_t removed = 0;
    Status s = ApplyRecord(&state_, rec, &existed, &removed);
    if (!s.ok()) Warn("applying our own record failed (a bug): " + s.ToString());
    applied_lsn_ = rec.lsn;
    while (w != waiters_.end() && w->lsn < rec.lsn) ++w;
    if (w != waiters_.end() && w->lsn == rec.lsn) {
      w->existed = existed;
      w->removed = removed;
    }
    return true;
  });
}

void EngineImpl::HandleNoSpace(CommitJob job, const Status& status, CompletionSink* sink) {
  no_space_ = "disk full: " + status.message();
  // No sync runs now; if the failed commit was to sync for a FLUSH, another must.
  sync_cover_started_ = durable_lsn_;
  if (!flushes_.empty()) want_fresh_sync_ = true;
  if (applied_lsn_ >= job.first) {
    // Acknowledged or visible records are in it (or after it): they must
    // reach the log, and nothing after them may take their LSNs.
    // Keep the group first in line; Tick retries it; new writes get kNoSpace.
    Group g;
    g.first = job.first;
    g.last = job.last;
    g.count = job.count;
    g.buf = std::move(job.records);
    g.closed = true;
    pending_records_ += g.count;
    pending_bytes_ += g.buf.size();
    pending_.push_front(std::move(g));
    no_space_hold_ = true;
    return;
  }
  // Nothing in or after this group was acknowledged or applied (so none was
  // acknowledged: acknowledged implies applied): drop it all,
  // fail its writers, and hand the same LSNs to the next writes.
  pending_.clear();
  pending_records_ = pending_bytes_ = 0;
  last_lsn_ = job.first - 1;
  ack_watermark_ = std::min(ack_watermark_, last_lsn_);  // never covers a reused LSN
  gate_fail_upto_ = std::min(gate_fail_upto_, last_lsn_);  // never fails one either
  Report(sink);
  const Status failed = Status::NoSpace(no_space_);
  auto first_failed = std::find_if(waiters_.begin(), waiters_.end(), [&](const Waiter& w) { return w.lsn > last_lsn_; });
  for (auto it = first_failed; it != waiters_.end(); ++it) {
    if (sink) sink->OnWriteDone(it->lsn, failed, false);
  }
  waiters_.erase(first_failed, waiters_.end());
  for (Flush& f : flushes_) f.target = std::min(f.target, last_lsn_);
  want_sync_upto_ = std::min(want_sync_upto_, last_lsn_);
}

void EngineImpl::Refuse(const Status& cause, std::string_view what, CompletionSink* sink) {
  refusal_ = Status::WritesRefused(std::string(what) + " (" + cause.ToString() +
                                   "); writes are refused until kvd restarts and recovers");
  Report(sink);
  for (const Waiter& w : waiters_) {
    if (sink) sink->OnWriteDone(w.lsn, refusal_, false);
  }
  waiters_.clear();
  for (const Flush& f : flushes_) {
    if (sink) sink->OnFlushDone(f.token, refusal_, ack_lsn());
  }
  flushes_.clear();
  pending_.clear();
  pending_records_ = pending_bytes_ = 0;
  no_space_hold_ = false;
}

void EngineImpl::Report(CompletionSink* sink) {
  Clock::time_point now{};  // read once, only for a room waiter
  while (!waiters_.empty()) {
    const Waiter& w = waiters_.front();
    if (w.lsn > applied_lsn_ || ((w.needs_durable || ack_gate_) && w.lsn > durable_lsn_)) break;
    if (w.needs_room && w.lsn > durable_lsn_) {
      // Acknowledged before durable, as at append: only in batch mode, and
      // only while the bound holds with it.
      if (dur_.mode != DurabilityMode::kBatch) break;
      if (now == Clock::time_point{}) now = env_->Now();
      if (!HasRoom(dur_, acked_, now)) break;
      PushAcked(w.lsn, now);
    }
    // Gated: the gate is on, or it was dropped (DropAckGate) while this write waited.
    const bool gated = ack_gate_ || w.lsn <= gate_fail_upto_;
    if (!gated || w.lsn <= ack_watermark_) {
      if (sink && w.range) {
        sink->OnDeleteRangeDone(w.lsn, Status::Ok(), w.removed);
      } else if (sink) {
        sink->OnWriteDone(w.lsn, Status::Ok(), w.existed);
      }
    } else if (w.lsn <= gate_fail_upto_) {
      if (sink) sink->OnWriteDone(w.lsn, gate_fail_status_, w.existed);
    } else {
      break;  // held by the gate
    }
    waiters_.pop_front();
  }
  const Lsn promised = ack_lsn();
  while (!flushes_.empty()) {
    const Flush& f = flushes_.front();
    if (!FlushSynced(f)) break;
    const bool held = f.target > ack_watermark_ && (ack_gate_ || !f.gate_failure.ok());
    if (!held) {
      if (sink) sink->OnFlushDone(f.token, Status::Ok(), promised);
    } else if (!f.gate_failure.ok()) {
      if (sink) sink->OnFlushDone(f.token, f.gate_failure, promised);
    } else {
      break;  // held by the gate
    }
    flushes_.pop_front();
  }
  while (!failed_flushes_.empty()) {
    if (sink) sink->OnFlushDone(failed_flushes_.front().first, failed_flushes_.front().second, promised);
    failed_flushes_.pop_front();
  }
}

// ---- driving ---------------------------------------------------------------------------

void EngineImpl::Poll(CompletionSink* sink) {
  CollectResults(sink);
  if (!defer_start_) MaybeStartCommit(env_->Now());
}

void EngineImpl::StartCommits() {
  if (!commit_running_) MaybeStartCommit(env_->Now());
}

void EngineImpl::Tick(Clock::time_point now, CompletionSink* sink) {
  CollectResults(sink);
  if (no_space_hold_ && !commit_running_ && refusal_.ok() && !closed_) {
    no_space_hold_ = false;  // retry the kept group; HandleNoSpace holds again if it fails
    StartCommit(/*sync=*/dur_.mode != DurabilityMode::kNone || SyncWanted());
    return;
  }
  MaybeStartCommit(now);
}

}  // namespace kvd
