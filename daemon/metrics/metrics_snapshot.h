// MetricsSnapshot: a copy of everything /metrics shows, taken on the loop
// thread (which owns all of it) and handed to the exporter's thread. Plain
// data: no pointers into the loop's objects.
#pragma once

#include <cstdint>

#include "kvd/engine.h"
#include "kvd/log2_histogram.h"
#include "metrics/replication_metrics.h"
#include "serve/request_latency.h"
#include "serve/server_stats.h"

namespace kvd::daemon {

// Snapshot durations in milliseconds (SnapshotHistory::duration_ms).
using SnapshotDurationHistogram = Log2Histogram<0, 20>;

struct MetricsSnapshot {
  ServerCounters counters;
  RequestLatency latency;
  // Engine
  Lsn last_lsn = 0, durable_lsn = 0, applied_lsn = 0;
  uint64_t keys = 0;
  uint64_t state_bytes = 0;  // the State's own estimate of its memory
  uint64_t data_bytes = 0;   // key and value bytes
  uint64_t rss_bytes = 0;    // the process's resident set
  uint64_t wal_bytes = 0, wal_segments = 0;
  uint64_t pending_records = 0;
  SyncLatencyHistogram sync_latency_us;
  GroupSizeHistogram group_records;
  bool writes_refusing = false;  // a failed fdatasync: every write is refused until a restart
  // Snapshots
  uint64_t snapshots_succeeded = 0, snapshots_failed = 0;
  SnapshotDurationHistogram snapshot_duration_ms;
  bool snapshot_running = false;
  Lsn last_snapshot_lsn = 0;
  double uptime_s = 0;
  // Role, epoch and replication (Replication::FillMetrics).
  ReplicationMetrics repl;
};

}  // namespace kvd::daemon
