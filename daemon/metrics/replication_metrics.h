// ReplicationMetrics: the replication part of a MetricsSnapshot (plain data,
// copied on the loop thread) and its rendering as Prometheus families
// (metrics_render_repl.cc). Names and meanings: docs/metrics.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "kvd/types.h"

namespace kvd::daemon {

struct ReplicaMetrics {  // one connected replica, as its primary sees it
  std::string name;
  std::string state;  // handshake | catching_up | streaming
  Lsn sent_lsn = 0, durable_lsn = 0, applied_lsn = 0;
  uint64_t lag_bytes = 0, lag_ms = 0;
};

struct ReplicationMetrics {
  std::string role = "primary";  // this node's role: primary | replica
  uint64_t epoch = 0;
  bool enabled = false;          // [replication] configured
  // A primary's replicas and its senders' counters (repl/repl_counters.h).
  std::vector<ReplicaMetrics> replicas;
  uint64_t replica_connects = 0, replica_disconnects = 0;
  uint64_t catchups_started = 0, catchups_finished = 0;
  // A replica's link to its primary.
  bool receiver = false;
  bool receiver_streaming = false;
  uint64_t receiver_connects = 0, receiver_disconnects = 0, records_received = 0;
  uint64_t receiver_lag_ms = 0;
  Lsn primary_last_lsn = 0;
};

// Appends the replication families to out.
void AppendReplicationMetrics(const ReplicationMetrics& r, std::vector<prometheus::MetricFamily>* out);

}  // namespace kvd::daemon
