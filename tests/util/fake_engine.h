// FakeEngine: an Engine in memory that models sync mode for serving-side
// tests: writes are applied and reported only when the test calls Poll
// ("the fdatasync returned"), in LSN order.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kvd/engine.h"

namespace kvd::test {

class FakeEngine : public Engine {
 public:
  Result<WriteTicket> Put(std::string_view k, std::string_view v, bool) override {
    if (!refusal.ok()) return refusal;
    pending_.push_back({++last_, {{OpType::kPut, std::string(k), std::string(v)}}});
    return WriteTicket{last_, false, false};
  }
  Result<WriteTicket> Del(std::string_view k, bool) override {
    if (!refusal.ok()) return refusal;
    pending_.push_back({++last_, {{OpType::kDel, std::string(k), {}}}});
    return WriteTicket{last_, false, false};
  }
  Result<WriteTicket> Batch(std::span<const BatchOp> ops, bool) override {
    if (!refusal.ok()) return refusal;
    W w{++last_, {}};
    for (const BatchOp& o : ops) w.ops.push_back({o.type, std::string(o.key), std::string(o.value)});
    pending_.push_back(std::move(w));
    return WriteTicket{last_, false, false};
  }
  Result<WriteTicket> DeleteRange(const KeyRange& r, bool) override {
    if (!refusal.ok()) return refusal;
    pending_.push_back({++last_, {}});
    ranges_[last_] = {r.prefix, std::string(r.a), std::string(r.b)};
    return WriteTicket{last_, false, false};
  }
  void RequestFlush(uint64_t token) override { flushes_.push_back(token); }
  void Poll(CompletionSink* sink) override {
    auto p = std::move(pending_);
    pending_.clear();
    for (auto& w : p) {
      if (auto it = ranges_.find(w.lsn); it != ranges_.end()) {
        const uint64_t n = kvd::DeleteRange(&state_, KeyRange{it->second.prefix, it->second.a, it->second.b});
        ranges_.erase(it);
        durable_ = applied_ = w.lsn;
        sink->OnDeleteRangeDone(w.lsn, Status::Ok(), n);
        continue;
      }
      bool existed = false;
      for (auto& o : w.ops) existed = o.type == OpType::kPut ? state_.Put(o.key, o.value) : state_.Del(o.key);
      durable_ = applied_ = w.lsn;
      sink->OnWriteDone(w.lsn, Status::Ok(), existed);
    }
    auto f = std::move(flushes_);
    flushes_.clear();
    for (uint64_t t : f) sink->OnFlushDone(t, Status::Ok(), durable_);
  }
  void Tick(Clock::time_point, CompletionSink* sink) override { Poll(sink); }
  Status WaitDurable(Lsn, CompletionSink* sink) override {
    Poll(sink);
    return Status::Ok();
  }
  const State& state() const override { return state_; }
  State& mutable_state() { return state_; }
  Lsn last_lsn() const override { return last_; }
  Lsn durable_lsn() const override { return durable_; }
  Lsn applied_lsn() const override { return applied_; }
  // The acknowledgement gate's watermark, as a test sets it (ack_cap).
  Lsn ack_lsn() const override { return std::min(durable_, ack_cap); }
  Status write_refusal() const override { return refusal; }
  EngineStats stats() const override { return {}; }
  Status SetDurability(const DurabilityOptions&) override { return Status::Ok(); }
  DurabilityOptions durability() const override { return {}; }
  Lsn SnapshotLsn() const override { return applied_; }
  Status SnapshotInstalled(Lsn) override { return Status::Ok(); }
  Status Close(CompletionSink* sink) override {
    Poll(sink);
    return Status::Ok();
  }
  size_t pending() const { return pending_.size(); }

  Status refusal;
  Lsn ack_cap = ~Lsn{0};  // no gate: ack_lsn() is durable_lsn()

 private:
  struct Op {
    OpType type;
    std::string key, value;
  };
  struct W {
    Lsn lsn;
    std::vector<Op> ops;
  };
  struct OwnedRange {
    bool prefix;
    std::string a, b;
  };
  std::map<Lsn, OwnedRange> ranges_;  // the pending writes that are DeleteRanges
  State state_;
  std::vector<W> pending_;
  std::vector<uint64_t> flushes_;
  Lsn last_ = 0, durable_ = 0, applied_ = 0;
};

}  // namespace kvd::test
