#include "node/snapshot_policy.h"

#include <algorithm>

namespace kvd::daemon {

SnapshotPolicy::SnapshotPolicy(Clock::time_point now, Lsn snapshot_lsn, uint64_t snapshot_bytes,
                               uint64_t replayed_bytes)
    : data_bytes_(snapshot_bytes) {
  base_.at = now;
  base_.lsn = snapshot_lsn;
  base_.carried = replayed_bytes;
  running_ = base_;
}

uint64_t SnapshotPolicy::Grown(const WalProgress& p) const {
  return base_.carried + (p.appended_bytes > base_.appended ? p.appended_bytes - base_.appended : 0);
}

uint64_t SnapshotPolicy::GrowthThreshold(const SnapshotTriggers& t) const {
  if (t.wal_growth_percent == 0) return 0;
  // data_bytes_ * percent / 100 without overflow for any sizes kvd can hold.
  const uint64_t proportional = data_bytes_ / 100 * t.wal_growth_percent + data_bytes_ % 100 * t.wal_growth_percent / 100;
  return std::max<uint64_t>({proportional, t.wal_min_bytes, 1});
}

const char* SnapshotPolicy::Due(const SnapshotTriggers& t, const WalProgress& p, Clock::time_point now) const {
  if (now < retry_after_) return nullptr;
  const uint64_t grown = Grown(p);
  if (grown == 0 || p.snapshot_lsn <= base_.lsn) return nullptr;  // nothing a snapshot would add
  const uint64_t threshold = GrowthThreshold(t);
  if (threshold > 0 && grown >= threshold) return "wal_growth";
  if (t.wal_bytes > 0 && grown >= t.wal_bytes) return "wal_bytes";
  if (t.interval.count() > 0 && now - base_.at >= t.interval) return "interval";
  return nullptr;
}

void SnapshotPolicy::Started(const WalProgress& p, Clock::time_point now) {
  running_.at = now;
  running_.lsn = p.snapshot_lsn;
  running_.appended = p.appended_bytes;
  running_.carried = 0;
}

void SnapshotPolicy::Succeeded(uint64_t bytes) {
  base_ = running_;
  data_bytes_ = bytes;
  retry_after_ = {};
}

void SnapshotPolicy::Failed(Clock::time_point now) { retry_after_ = now + kRetryDelay; }

}  // namespace kvd::daemon
