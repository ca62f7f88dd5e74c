// RenderMetrics: a MetricsSnapshot as Prometheus metric families. Names,
// units and meanings are listed in docs/metrics.md; keep the two in step.
// Runs on the exposer's thread, on a private copy.
#include <limits>
#include <string>
#include <utility>

#include "metrics/metric_family.h"
#include "metrics/metrics_collector.h"

namespace kvd::daemon {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

using metric_family::AddValue;
using metric_family::D;
using metric_family::Family;
using metric_family::One;

// scale: the unit of the histogram's values in the exposed unit (1e-6 for
// microseconds shown as seconds). The count is the sum of the buckets, so
// count and +Inf agree whatever happened between copies.
template <typename H>
void AddHistogram(MetricFamily* f, const H& h, double scale, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < H::kBounds; ++i) {
    cumulative += h.counts()[i];
    m.histogram.bucket.push_back({cumulative, D(H::Bound(i)) * scale});
  }
  cumulative += h.counts()[H::kBounds];
  m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = D(h.sum()) * scale;
  f->metric.push_back(std::move(m));
}

}  // namespace

std::vector<MetricFamily> RenderMetrics(const MetricsSnapshot& s) {
  std::vector<MetricFamily> out;
  const ServerCounters& c = s.counters;

  MetricFamily ops = Family("kvd_requests_total", "Requests by operation, whatever the protocol.", MetricType::Counter);
  MetricFamily lat = Family("kvd_request_duration_seconds",
                            "From the read that delivered a request to the write that sent its reply, by operation.",
                            MetricType::Histogram);
  for (size_t i = 0; i < kOpCount; ++i) {
    const std::string op(OpName(static_cast<Op>(i)));
    AddValue(&ops, D(c.ops[i]), {{"op", op}});
    AddHistogram(&lat, s.latency.by_op[i], 1e-6, {{"op", op}});
  }
  out.push_back(std::move(ops));
  out.push_back(std::move(lat));
  out.push_back(One("kvd_request_errors_total", "Replies with a status other than OK or NotFound.",
                    MetricType::Counter, D(c.errors)));
  out.push_back(One("kvd_writes_refused_total",
                    "Writes the engine refused or failed: after a failed fdatasync, disk full, I/O error.",
                    MetricType::Counter, D(c.writes_refused)));
  out.push_back(One("kvd_writes_refusing",
                    "1 while every write is refused after a failed fdatasync (until a restart), else 0.",
                    MetricType::Gauge, s.writes_refusing ? 1 : 0));

  MetricFamily sync = Family("kvd_fdatasync_duration_seconds", "Duration of each successful WAL fdatasync.",
                             MetricType::Histogram);
  AddHistogram(&sync, s.sync_latency_us, 1e-6);
  out.push_back(std::move(sync));
  MetricFamily group = Family("kvd_commit_group_records", "Records made durable by each fdatasync (group commit).",
                              MetricType::Histogram);
  AddHistogram(&group, s.group_records, 1.0);
  out.push_back(std::move(group));

  out.push_back(One("kvd_last_lsn", "Last LSN assigned.", MetricType::Gauge, D(s.last_lsn)));
  out.push_back(One("kvd_durable_lsn", "Last LSN covered by a successful fdatasync.", MetricType::Gauge,
                    D(s.durable_lsn)));
  out.push_back(One("kvd_applied_lsn", "Last LSN applied to the in-memory state.", MetricType::Gauge,
                    D(s.applied_lsn)));
  out.push_back(One("kvd_pending_records", "Records appended and not yet durable.", MetricType::Gauge,
                    D(s.pending_records)));
  out.push_back(One("kvd_wal_bytes", "Bytes of records in the live WAL segments.", MetricType::Gauge, D(s.wal_bytes)));
  out.push_back(One("kvd_wal_segments", "Live WAL segment files.", MetricType::Gauge, D(s.wal_segments)));

  out.push_back(One("kvd_keys", "Keys in the state.", MetricType::Gauge, D(s.keys)));
  out.push_back(One("kvd_state_memory_bytes", "Memory the in-memory state estimates it uses.", MetricType::Gauge,
                    D(s.state_bytes)));
  out.push_back(One("kvd_data_bytes", "Bytes of keys and values in the state.", MetricType::Gauge, D(s.data_bytes)));
  out.push_back(One("kvd_resident_memory_bytes", "Resident set size of the kvd process.", MetricType::Gauge,
                    D(s.rss_bytes)));

  MetricFamily snaps = Family("kvd_snapshots_total", "Snapshots finished, by result.", MetricType::Counter);
  AddValue(&snaps, D(s.snapshots_succeeded), {{"result", "ok"}});
  AddValue(&snaps, D(s.snapshots_failed), {{"result", "failed"}});
  out.push_back(std::move(snaps));
  MetricFamily snap_dur = Family("kvd_snapshot_duration_seconds",
                                 "Duration of each successful snapshot, fork to installed.", MetricType::Histogram);
  AddHistogram(&snap_dur, s.snapshot_duration_ms, 1e-3);
  out.push_back(std::move(snap_dur));
  out.push_back(One("kvd_snapshot_in_progress", "1 while a snapshot child runs.", MetricType::Gauge,
                    s.snapshot_running ? 1 : 0));
  out.push_back(One("kvd_last_snapshot_lsn", "LSN of the newest successful snapshot of this run (0: none).",
                    MetricType::Gauge, D(s.last_snapshot_lsn)));

  out.push_back(One("kvd_connections", "Open client connections.", MetricType::Gauge, D(c.connections_current)));
  out.push_back(One("kvd_connections_total", "Client connections accepted.", MetricType::Counter,
                    D(c.connections_total)));
  out.push_back(One("kvd_connections_refused_total", "Connections refused over server.max_connections.",
                    MetricType::Counter, D(c.connections_refused)));
  out.push_back(One("kvd_idle_closed_total", "Connections closed for idleness.", MetricType::Counter,
                    D(c.idle_closed)));
  out.push_back(One("kvd_protocol_errors_total", "Connections closed for a protocol error (bad frame).",
                    MetricType::Counter, D(c.bad_frames)));
  out.push_back(One("kvd_received_bytes_total", "Bytes read from clients.", MetricType::Counter, D(c.bytes_in)));
  out.push_back(One("kvd_sent_bytes_total", "Bytes written to clients.", MetricType::Counter, D(c.bytes_out)));
  out.push_back(One("kvd_uptime_seconds", "Seconds since kvd started serving.", MetricType::Gauge, s.uptime_s));
  AppendReplicationMetrics(s.repl, &out);
  return out;
}

}  // namespace kvd::daemon
