// The engine's write path: append -> group -> committer -> apply -> report.
// Engine::Open (recovery) is in engine_open.cc.
#include <algorithm>

#include "kvd/mutation.h"
#include "storage/engine_impl.h"

namespace kvd {

EngineImpl::EngineImpl(EngineOptions options, Env* env)
    : opts_(std::move(options)), env_(env), dur_(opts_.durability) {}

EngineImpl::~EngineImpl() { (void)Close(nullptr); }

void EngineImpl::Start(Lsn last_lsn) {
  last_lsn_ = written_lsn_ = durable_lsn_ = applied_lsn_ = sync_cover_started_ = last_lsn;
  wal_stats_ = wal_->stats();
  CommitterOptions co;
  co.notify = opts_.notify;
  co.observer = opts_.commit_observer;
  co.written_lsn = last_lsn;
  co.env = env_;
  co.wal_dir = opts_.wal_dir;
  committer_ = std::make_unique<Committer>(wal_.get(), std::move(co));
}

void EngineImpl::Warn(std::string_view msg) const {
  if (opts_.on_warning) opts_.on_warning(msg);
}

// ---- writes ------------------------------------------------------------------------

Status EngineImpl::CheckWritable(bool replicated) const {
  if (closed_) return Status::ShuttingDown("the engine is closed");
  if (!refusal_.ok()) return refusal_;  // sticky: wins over a fence
  // kNotPrimary fences clients' writes on a replica, not the primary's
  // records it applies; kFenced (an old primary) stops both.
  if (!fence_.ok() && !(replicated && fence_.code() == Code::kNotPrimary)) return fence_;
  if (no_space_hold_) return Status::NoSpace(no_space_);
  return Status::Ok();
}

EngineImpl::Group& EngineImpl::GroupForAppend() {
  if (pending_.empty() || pending_.back().closed) {
    pending_.emplace_back();
    pending_.back().buf = std::move(spare_buf_);  // reuse a finished group's capacity
    spare_buf_ = std::string();
  }
  return pending_.back();
}

template <typename Encode, typename ApplyNow>
Result<WriteTicket> EngineImpl::Append(bool durable, Encode encode, ApplyNow apply_now, bool range, bool replicated) {
  KVD_RETURN_IF_ERROR(CheckWritable(replicated));
  const Lsn lsn = last_lsn_ + 1;
  Group& g = GroupForAppend();
  const size_t before = g.buf.size();
  encode(&g.buf, lsn);
  const bool first_in_group = g.count == 0;
  if (first_in_group) g.first = lsn;
  g.last = lsn;
  g.count++;
  pending_records_++;
  pending_bytes_ += g.buf.size() - before;
  if (g.count >= GroupRecordCap(dur_) || g.buf.size() >= kGroupBytes) g.closed = true;
  last_lsn_ = lsn;

  // Clock reads cost; none mode only needs the time a group was started.
  const bool need_time = dur_.mode == DurabilityMode::kBatch || first_in_group;
  const Clock::time_point now = need_time ? env_->Now() : Clock::time_point{};
  if (first_in_group) g.oldest = now;

  // The apply rule (engine_impl.h): visible at once unless sync mode or an
  // older write still waits to be applied.
  const bool can_apply =
      (dur_.mode != DurabilityMode::kSync || KVD_MUTANT(apply_before_durable_sync_mode)) && applied_lsn_ + 1 == lsn;
  uint64_t affected = 0;
  if (can_apply) {
    affected = apply_now();
    applied_lsn_ = lsn;
  }
  const bool existed = affected > 0;
  WriteTicket t{lsn, false, existed, range ? affected : 0};
  // The acknowledgement gate makes every write wait for its fdatasync (and
  // the watermark, in Report), as a `durable` one does.
  const bool must_sync = durable || ack_gate_;
  if (!RoomWaiterQueued() && AckAtOnce(dur_, must_sync, can_apply, acked_, now)) {
    t.done = true;
    PushAcked(lsn, now);
  } else {
    // Batch mode without a reason to sync: it waits only for the bound.
    const bool needs_room = dur_.mode == DurabilityMode::kBatch && !must_sync && can_apply;
    const bool needs_durable = !needs_room && (must_sync || dur_.mode != DurabilityMode::kNone);
    waiters_.push_back({lsn, needs_durable, needs_room, existed, range, range ? affected : 0});
    if (needs_room) last_room_waiter_ = lsn;
    // A room waiter wants a sync too (its room comes from one; after a
    // switch to none mode nothing else would start it).
    if (needs_durable || needs_room) g.has_waiter = true;
  }
  // Deferred: the owner's StartCommits() starts it, with the writes read
  // after this one in the same turn. A full group still starts at once.
  if (!defer_start_ || g.closed) MaybeStartCommit(now);
  return t;
}

Result<WriteTicket> EngineImpl::Put(std::string_view key, std::string_view value, bool durable) {
  if (key.size() > opts_.max_key_bytes) return Status::TooLarge("key of " + std::to_string(key.size()) + " bytes is over the limit");
  if (value.size() > opts_.max_value_bytes) return Status::TooLarge("value of " + std::to_string(value.size()) + " bytes is over the limit");
  KVD_RETURN_IF_ERROR(ClampEpochHistory());
  return Append(
      durable, [&](std::string* buf, Lsn lsn) { AppendPutRecord(buf, lsn, epoch_, key, value); },
      [&] { return state_.Put(key, value); });
}

Result<WriteTicket> EngineImpl::Del(std::string_view key, bool durable) {
  if (key.size() > opts_.max_key_bytes) return Status::TooLarge("key of " + std::to_string(key.size()) + " bytes is over the limit");
  KVD_RETURN_IF_ERROR(ClampEpochHistory());
  return Append(
      durable, [&](std::string* buf, Lsn lsn) { AppendDelRecord(buf, lsn, epoch_, key); },
      [&] { return state_.Del(key); });
}

Result<WriteTicket> EngineImpl::Batch(std::span<const BatchOp> ops, bool durable) {
  if (ops.empty()) return Status::InvalidArgument("empty batch");
  uint64_t payload = 0;
  for (const BatchOp& op : ops) {
    if (op.key.size() > opts_.max_key_bytes) return Status::TooLarge("a batch key is over the limit");
    if (op.value.size() > opts_.max_value_bytes) return Status::TooLarge("a batch value is over the limit");
    payload += op.key.size() + op.value.size() + 16;
  }
  if (payload > kMaxRecordPayload) return Status::TooLarge("batch over the record size limit");
  KVD_RETURN_IF_ERROR(ClampEpochHistory());
  return Append(
      durable, [&](std::string* buf, Lsn lsn) { AppendBatchRecord(buf, lsn, epoch_, ops); },
      [&] {
        // As ApplyRecord: existed is about the first op's key.
        bool existed = false;
        for (size_t i = 0; i < ops.size(); ++i) {
          bool e = ops[i].type == OpType::kPut ? state_.Put(ops[i].key, ops[i].value) : state_.Del(ops[i].key);
          if (i == 0) existed = e;
        }
        return existed;
      });
}

Result<WriteTicket> EngineImpl::DeleteRange(const KeyRange& range, bool durable) {
  if (range.a.size() > opts_.max_key_bytes || range.b.size() > opts_.max_key_bytes) {
    return Status::InvalidArgument("a range bound is longer than the key limit");
  }
  if (range.prefix && !range.b.empty()) return Status::InvalidArgument("a prefix delete takes no range end");
  KVD_RETURN_IF_ERROR(ClampEpochHistory());
  return Append(
      durable, [&](std::string* buf, Lsn lsn) { AppendDelRangeRecord(buf, lsn, epoch_, range); },
      [&]() -> uint64_t { return kvd::DeleteRange(&state_, range); }, /*range=*/true);
}

Result<WriteTicket> EngineImpl::AppendReplicated(std::span<const std::byte> records) {
  KVD_RETURN_IF_ERROR(CheckWritable(/*replicated=*/true));
  const std::string_view buf(reinterpret_cast<const char*>(records.data()), records.size());
  if (buf.empty()) return Status::InvalidArgument("no records to append");
  // Verify everything before appending anything. A record's epoch must be
  // the one our history gives its LSN, or a newer one that begins there.
  Lsn expect = last_lsn_ + 1;
  EpochHistory sim = epochs_;
  Status verified = ForEachVerifiedRecord(buf, [&](const WalRecord& rec) -> Status {
    if (rec.lsn != expect) {
      return Status::InvalidArgument("replicated record has LSN " + std::to_string(rec.lsn) + ", expected " +
                                     std::to_string(expect));
    }
    const Epoch have = sim.EpochOf(rec.lsn);
    if (rec.epoch < have) {
      return Status::InvalidArgument("replicated record " + std::to_string(rec.lsn) + " has epoch " +
                                     std::to_string(rec.epoch) + ", older than epoch " + std::to_string(have));
    }
    if (rec.epoch > have) {
      // Our history already places a later epoch after this LSN: the logs
      // disagree (find the fork point first).
      Status begun = sim.Append(rec.epoch, rec.lsn);
      if (!begun.ok()) {
        return Status::InvalidArgument("replicated record " + std::to_string(rec.lsn) + " in epoch " +
                                       std::to_string(rec.epoch) + " conflicts with the epoch history: " +
                                       begun.message());
      }
    }
    Status decodes = CheckRecordPayload(rec);
    if (!decodes.ok()) return decodes;
    ++expect;
    return Status::Ok();
  });
  if (!verified.ok()) return verified;
  WriteTicket last;
  Status s;
  ForEachRecord(buf, [&](const WalRecord& rec) {
    if (rec.epoch != epochs_.EpochOf(rec.lsn)) s = BeginEpoch(rec.epoch);  // durable before its first record
    if (!s.ok()) return false;
    auto t = Append(
        /*durable=*/true, [&](std::string* b, Lsn) { b->append(rec.encoded); },
        [&] {
          bool existed = false;
          (void)ApplyRecord(&state_, rec, &existed);  // decodes: checked above
          return existed;
        },
        /*range=*/false, /*replicated=*/true);
    if (!t) s = t.error();
    if (t) last = *t;
    return s.ok();
  });
  if (!s.ok()) return s;
  return last;
}

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
  // Gate off: no limit, and no waiter needs more than it asked for.
  const Lsn gate_limit = ack_gate_ ? ack_watermark_ : UINT64_MAX;
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
    if (w.lsn <= gate_limit) {
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
    if (f.target <= gate_limit) {
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

template <typename Pred>
Status EngineImpl::DriveUntil(Pred pred, CompletionSink* sink) {
  bool retried = false;
  for (;;) {
    CollectResults(sink);
    if (pred()) return Status::Ok();
    if (!refusal_.ok()) return refusal_;
    if (!commit_running_) {
      if (no_space_hold_) {
        if (retried) return Status::NoSpace(no_space_);
        retried = true;
        no_space_hold_ = false;
        StartCommit(true);
      } else {
        MaybeStartCommit(env_->Now());
      }
    }
    if (!commit_running_ && committer_->outstanding() == 0) {
      if (!no_space_.empty()) return Status::NoSpace(no_space_);
      return Status::Internal("the engine is idle but the wait is not satisfied");
    }
    committer_->WaitResult();
  }
}

Status EngineImpl::WaitDurable(Lsn lsn, CompletionSink* sink) {
  if (closed_) return lsn <= durable_lsn_ ? Status::Ok() : Status::ShuttingDown("the engine is closed");
  if (lsn > last_lsn_) {
    if (!no_space_.empty()) return Status::NoSpace(no_space_);
    return Status::InvalidArgument("LSN " + std::to_string(lsn) + " was never assigned");
  }
  want_sync_upto_ = std::max(want_sync_upto_, lsn);
  KVD_RETURN_IF_ERROR(DriveUntil([&] { return durable_lsn_ >= lsn || lsn > last_lsn_; }, sink));
  // lsn > last_lsn_: its group hit ENOSPC and was dropped.
  return lsn > last_lsn_ ? Status::NoSpace(no_space_) : Status::Ok();
}

// ---- configuration, snapshots, stats, close ------------------------------------------------

Status EngineImpl::SetDurability(const DurabilityOptions& d) {
  if (d.batch_size == 0) return Status::InvalidArgument("batch_size must be at least 1");
  if (d.flush_interval.count() <= 0) return Status::InvalidArgument("flush_interval must be positive");
  dur_ = d;
  if (!pending_.empty()) pending_.back().closed = true;  // new groups get the new cap
  MaybeStartCommit(env_->Now());
  return Status::Ok();
}

Status EngineImpl::SnapshotInstalled(Lsn lsn) {
  Status s = PruneSnapshots(env_, opts_.snapshot_dir, lsn);
  snapshot_lsn_ = std::max(snapshot_lsn_, lsn);
  SubmitDrop();
  return s;
}

EngineStats EngineImpl::stats() const {
  EngineStats st;
  st.last_lsn = last_lsn_;
  st.durable_lsn = durable_lsn_;
  st.applied_lsn = applied_lsn_;
  st.groups = groups_;
  st.syncs = syncs_done_;
  st.grouped_records = grouped_records_;
  st.group_records = group_sizes_;
  if (committer_) {
    SyncLatency l = committer_->sync_latency();
    st.sync_p50_us = l.p50_us;
    st.sync_p99_us = l.p99_us;
    st.sync_max_us = l.max_us;
    st.last_sync_us = l.last_us;
    st.sync_latency_us = l.buckets;
  }
  st.pending_records = last_lsn_ - durable_lsn_;
  st.ack_window = acked_.count();
  st.ack_window_peak = ack_window_peak_;
  st.ack_window_age_peak_us =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(ack_age_peak_).count());
  st.wal = wal_stats_;
  if (!refusal_.ok()) st.write_refusal = refusal_.message();
  st.no_space = no_space_;
  if (!fence_.ok()) st.write_fence = fence_.ToString();
  st.ack_gate = ack_gate_;
  st.ack_watermark = ack_watermark_;
  st.ack_lsn = ack_lsn();
  if (ack_gate_) {
    for (const Waiter& w : waiters_) {
      if (w.lsn > applied_lsn_ || w.lsn > durable_lsn_) break;
      if (w.lsn > ack_watermark_) st.gated_writes++;
    }
  }
  st.retention_floor = retention_floor_;
  st.retained_wal_segments = retained_.segments;
  st.retained_wal_bytes = retained_.bytes;
  return st;
}

Status EngineImpl::DriveUntilIdle(CompletionSink* sink) {
  want_sync_upto_ = std::max(want_sync_upto_, last_lsn_);
  return DriveUntil(
      [&] { return durable_lsn_ == last_lsn_ && !commit_running_ && pending_.empty() && drops_running_ == 0; }, sink);
}

Status EngineImpl::Close(CompletionSink* sink) {
  if (closed_) return close_status_;
  Status s;
  if (committer_) {
    if (refusal_.ok()) {
      // Everything appended becomes durable, as after a FLUSH.
      const Lsn target = last_lsn_;
      const uint64_t after = syncs_started_;
      want_sync_upto_ = std::max(want_sync_upto_, target);
      want_fresh_sync_ = true;
      s = DriveUntil([&] { return (syncs_done_ > after && durable_lsn_ >= last_lsn_) || target > last_lsn_; }, sink);
    }
    closed_ = true;
    // Whatever could not be made durable (ENOSPC while closing), or was
    // durable but still held by the acknowledgement gate, fails.
    Status failed;
    if (!refusal_.ok()) {
      failed = refusal_;
    } else if (s.ok()) {
      failed = Status::ShuttingDown("closed before the acknowledgement watermark covered it");
    } else {
      failed = Status::ShuttingDown("closed before it was durable: " + s.ToString());
    }
    for (const Waiter& w : waiters_) {
      if (sink) sink->OnWriteDone(w.lsn, failed, false);
    }
    waiters_.clear();
    for (const Flush& f : flushes_) {
      if (sink) sink->OnFlushDone(f.token, failed, ack_lsn());
    }
    flushes_.clear();
    committer_->Stop();
    while (committer_->TakeResult()) {
    }
    Report(sink);
    committer_.reset();
  }
  closed_ = true;
  if (wal_) {
    // After a failed fdatasync nothing may be synced again: just drop the writer.
    if (refusal_.ok()) {
      Status c = wal_->Close();
      if (s.ok()) s = c;
    }
    wal_.reset();
  }
  if (s.ok() && !refusal_.ok()) s = refusal_;
  close_status_ = s;
  return s;
}

}  // namespace kvd
