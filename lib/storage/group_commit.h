// Group-commit policy: pure decisions, no threads, no I/O (unit-tested alone).
//
// The engine asks two questions:
//   AckAtOnce: may this write be acknowledged now, before its fdatasync?
//   Decide:    should a commit (write the next group, maybe fdatasync) start?
// and keeps an AckWindow of acknowledged records that are not yet durable.
//
// The modes (docs/durability.md):
//   sync   never acknowledge before the covering fdatasync; start a commit
//          whenever none runs and records are pending (groups of at most
//          batch_size records form while one commit runs).
//   batch  acknowledge at once only if afterwards fewer than batch_size
//          acknowledged records are not durable and the oldest of them is
//          younger than flush_interval; otherwise the write waits until that
//          holds (room frees as fdatasyncs return) or its own sync returned
//          (batch_size 1: every write waits for its sync). Like sync mode, a
//          commit starts whenever none runs and records are pending, so the
//          next fdatasync starts as soon as the previous one returned: the
//          disk never idles while acknowledged writes are not durable, which
//          keeps the window small and writers rarely at the bound.
//   none   acknowledge at once; write (no fdatasync) the buffer when it is
//          large or every flush_interval; fdatasync only when someone waits
//          for it (FLUSH, a `durable` write, Close).
#pragma once

#include <cstdint>
#include <deque>

#include "kvd/engine.h"

namespace kvd {

// Pending records are written in groups of at most this many bytes (a group
// holds at least one record, whatever its size). In none mode a full group
// is written at once.
inline constexpr uint64_t kGroupBytes = 1 << 20;

// Acknowledged records that are not yet durable, as runs of consecutive
// LSNs with the time of their oldest record.
class AckWindow {
 public:
  // Record `lsn` (greater than every earlier one) acknowledged at `now`.
  // coalesce: extend the last run instead of starting one (none mode, where
  // only the count matters; keeps memory constant).
  void Push(Lsn lsn, Clock::time_point now, bool coalesce);
  // Everything up to lsn is durable. A run only partly covered stays whole
  // (over-counting only makes writers wait sooner).
  void OnDurable(Lsn lsn);
  uint64_t count() const { return count_; }
  bool empty() const { return count_ == 0; }
  Clock::time_point oldest() const { return runs_.empty() ? Clock::time_point{} : runs_.front().oldest; }
  void Clear();

 private:
  struct Run {
    Lsn last;
    uint64_t count;
    Clock::time_point oldest;
  };
  std::deque<Run> runs_;
  uint64_t count_ = 0;
};

// Whether a write is acknowledged when it is appended. can_apply: the engine
// can apply it to the State now (an acknowledged write is always applied).
// A batch-mode write refused only for the bound may be acknowledged later,
// before it is durable, once this holds for it (HasRoom).
bool AckAtOnce(const DurabilityOptions& opts, bool durable, bool can_apply,
               const AckWindow& window, Clock::time_point now);

struct GroupInputs {
  Clock::time_point now;
  bool commit_running = false;
  uint64_t pending_records = 0;  // appended, not yet handed to a commit
  uint64_t pending_bytes = 0;
  bool front_group_full = false;       // the next group reached its cap
  Clock::time_point oldest_pending{};  // valid when pending_records > 0
  bool sync_wanted = false;  // a pending write, a FLUSH or a waiter needs an fdatasync
};

struct CommitPlan {
  bool start = false;  // start a commit of the next group now
  bool sync = false;   // fdatasync after writing it
};

// Batch mode: one more acknowledged, not durable record keeps the bound
// (fewer than batch_size, the oldest younger than flush_interval).
bool HasRoom(const DurabilityOptions& opts, const AckWindow& window, Clock::time_point now);

CommitPlan Decide(const DurabilityOptions& opts, const GroupInputs& in);

// The most records one group may hold in this mode (sync/batch: batch_size).
uint64_t GroupRecordCap(const DurabilityOptions& opts);

}  // namespace kvd
