// SnapshotPolicy: when an automatic snapshot is due. Pure: no loop, no I/O;
// time is passed in (the scheduler reads Env::Now(), tests a fake clock).
//
// Three triggers, each off at 0 ([snapshot] in kvd.toml):
//   wal_growth  the WAL grew, since the last snapshot, by wal_growth_percent
//               of the data size (the last snapshot's file size) and by at
//               least wal_min_bytes: Redis's auto-aof-rewrite-percentage and
//               -min-size. Proportional, so a large data set is not rewritten
//               for a little log, and a small one never replays much more
//               log than data; the floor keeps tiny data sets from
//               snapshotting all the time.
//   wal_bytes   the WAL grew by this many bytes (an absolute bound).
//   interval    this long since the last snapshot (or start), if anything
//               was written since.
// "Grew" counts the records written since the last snapshot started, plus
// at start-up those recovery replayed after its snapshot: both are what a
// restart would replay now. A snapshot that fails leaves the baseline where
// the last good one put it, and automatic triggers back off for a while.
//
// Threading: one thread (the daemon's loop).
#pragma once

#include <chrono>
#include <cstdint>

#include "kvd/env.h"
#include "kvd/types.h"

namespace kvd::daemon {

struct SnapshotTriggers {
  std::chrono::milliseconds interval{0};
  uint64_t wal_bytes = 0;
  uint32_t wal_growth_percent = 0;
  uint64_t wal_min_bytes = 0;
};

// The WAL as the engine reports it now.
struct WalProgress {
  uint64_t appended_bytes = 0;  // WalStats::appended_bytes
  Lsn snapshot_lsn = 0;         // what a snapshot taken now would cover
};

class SnapshotPolicy {
 public:
  // After a failed snapshot, automatic triggers wait this long.
  static constexpr std::chrono::seconds kRetryDelay{5};

  // At start-up: recovery began from a snapshot at snapshot_lsn of
  // snapshot_bytes (0, 0: none) and replayed replayed_bytes of WAL after it.
  SnapshotPolicy(Clock::time_point now, Lsn snapshot_lsn, uint64_t snapshot_bytes, uint64_t replayed_bytes);

  // The trigger that makes an automatic snapshot due now ("wal_growth",
  // "wal_bytes", "interval"), or nullptr.
  const char* Due(const SnapshotTriggers& t, const WalProgress& p, Clock::time_point now) const;
  // Bytes a restart would replay now (growth since the last snapshot).
  uint64_t Grown(const WalProgress& p) const;
  // The WAL growth that triggers wal_growth (0: off).
  uint64_t GrowthThreshold(const SnapshotTriggers& t) const;

  // A snapshot (automatic or requested) started now, covering p.
  void Started(const WalProgress& p, Clock::time_point now);
  // It is durable; its file has `bytes`.
  void Succeeded(uint64_t bytes);
  // It failed: the baseline stays, automatic triggers back off.
  void Failed(Clock::time_point now);

  uint64_t data_bytes() const { return data_bytes_; }

 private:
  struct Baseline {
    Clock::time_point at;
    Lsn lsn = 0;
    uint64_t appended = 0;   // WalProgress::appended_bytes then
    uint64_t carried = 0;    // growth from before this process (recovery replay)
  };
  Baseline base_;          // the last good snapshot (or start-up)
  Baseline running_;       // the one started, not yet finished
  uint64_t data_bytes_ = 0;
  Clock::time_point retry_after_{};
};

}  // namespace kvd::daemon
