// The engine's write entry points (Put, Del, Batch, DeleteRange, replicated
// records) filling groups, and the blocking helpers; the commit half is in
// engine_commit.cc, Engine::Open (recovery) in engine_open.cc.
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
