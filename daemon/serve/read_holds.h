// ReadHolds: read replies held until the sync watermark covers what the
// read saw (the read barrier of synchronous replication, docs/replication.md
// §6).
//
// With sync_replicas >= 1 a write is applied (visible) on the primary once
// durable here, but acknowledged only once sync_replicas replicas have it
// durable too. A read that answered at once could show a write that a
// failover then loses (it was never acknowledged): primary reads would not
// be linearizable. So a read is evaluated at once, against the State at
// applied LSN L, and its reply is held in its slot until the engine's
// ack_lsn (min(durable LSN, sync watermark)) reaches L: until every write it
// could have seen is acknowledgeable. If that takes longer than
// sync_timeout the read fails with the sync gate's error, as a write would.
//
// The reply waits in its connection's reply queue (a pending slot), so
// replies keep request order and the loop never blocks. Entries are in LSN
// order (the applied LSN never decreases).
//
// Threading: the loop thread only; no libuv (the server's prepare phase calls
// the dispatcher's ReleaseHeldReads and keeps a timer at NextDeadline).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>

#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd::daemon {

class ReadHolds {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Entry {
    uint64_t session = 0;
    uint64_t seq = 0;     // the reply slot
    Lsn lsn = 0;          // the applied LSN the read saw
    TimePoint deadline;   // sync_timeout after it was evaluated
    Code code = Code::kOk;  // the reply's code (kOk or kNotFound)
  };

  void Hold(Entry e) { held_.push_back(e); }
  // Calls release(e) for each entry covered by ack_lsn, and expire(e) for
  // each whose deadline passed (in that order of preference), removing them.
  void Release(Lsn ack_lsn, TimePoint now, const std::function<void(const Entry&)>& release,
               const std::function<void(const Entry&)>& expire);
  // Removes every entry, calling fn(e) for each.
  void TakeAll(const std::function<void(const Entry&)>& fn);

  std::optional<TimePoint> NextDeadline() const;
  size_t size() const { return held_.size(); }
  bool empty() const { return held_.empty(); }

 private:
  std::deque<Entry> held_;  // LSN order
};

}  // namespace kvd::daemon
