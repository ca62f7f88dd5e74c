// The replication metric families (docs/metrics.md, "Replication"). Runs on
// the exposer's thread, on a private copy. Every family is always present
// (a node that is not a primary shows no per-replica samples, and zero
// counters), so dashboards and alerts need not handle missing names.
#include <string>
#include <utility>

#include "metrics/replication_metrics.h"

namespace kvd::daemon {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void Add(MetricFamily* f, double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f->type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  f->metric.push_back(std::move(m));
}

MetricFamily One(std::string name, std::string help, MetricType type, double v) {
  MetricFamily f = Family(std::move(name), std::move(help), type);
  Add(&f, v);
  return f;
}

double D(uint64_t v) { return static_cast<double>(v); }

constexpr const char* kSenderStates[] = {"handshake", "catching_up", "streaming"};

}  // namespace

void AppendReplicationMetrics(const ReplicationMetrics& r, std::vector<MetricFamily>* out) {
  MetricFamily role = Family("kvd_role", "1 for this node's role (primary or replica), 0 for the other.",
                             MetricType::Gauge);
  Add(&role, r.role == "primary" ? 1 : 0, {{"role", "primary"}});
  Add(&role, r.role == "replica" ? 1 : 0, {{"role", "replica"}});
  out->push_back(std::move(role));
  out->push_back(One("kvd_epoch", "This node's current epoch (primary term).", MetricType::Gauge, D(r.epoch)));

  // A primary's replicas.
  MetricFamily by_state = Family("kvd_replicas", "Connected replicas by state.", MetricType::Gauge);
  for (const char* st : kSenderStates) {
    uint64_t n = 0;
    for (const ReplicaMetrics& x : r.replicas) n += x.state == st ? 1 : 0;
    Add(&by_state, D(n), {{"state", st}});
  }
  out->push_back(std::move(by_state));
  MetricFamily state = Family("kvd_replica_state", "1 for each connected replica's current state.", MetricType::Gauge);
  MetricFamily sent = Family("kvd_replica_sent_lsn", "Last LSN sent to the replica.", MetricType::Gauge);
  MetricFamily durable = Family("kvd_replica_durable_lsn", "Last LSN the replica acknowledged as durable.",
                                MetricType::Gauge);
  MetricFamily applied = Family("kvd_replica_applied_lsn", "Last LSN the replica acknowledged as applied.",
                                MetricType::Gauge);
  MetricFamily lag_bytes = Family("kvd_replica_lag_bytes", "WAL bytes written here and not yet durable on the replica.",
                                  MetricType::Gauge);
  MetricFamily lag_s = Family("kvd_replica_lag_seconds",
                              "Replication lag: 0 when caught up, else the age of the newest ACK's echoed send time.",
                              MetricType::Gauge);
  for (const ReplicaMetrics& x : r.replicas) {
    const std::vector<ClientMetric::Label> name{{"replica", x.name}};
    Add(&state, 1, {{"replica", x.name}, {"state", x.state}});
    Add(&sent, D(x.sent_lsn), name);
    Add(&durable, D(x.durable_lsn), name);
    Add(&applied, D(x.applied_lsn), name);
    Add(&lag_bytes, D(x.lag_bytes), name);
    Add(&lag_s, D(x.lag_ms) / 1000.0, name);
  }
  for (MetricFamily* f : {&state, &sent, &durable, &applied, &lag_bytes, &lag_s}) out->push_back(std::move(*f));
  out->push_back(One("kvd_replica_connects_total", "Replicas that completed the handshake with this primary.",
                     MetricType::Counter, D(r.replica_connects)));
  out->push_back(One("kvd_replica_disconnects_total", "Links of handshaken replicas that closed.",
                     MetricType::Counter, D(r.replica_disconnects)));
  out->push_back(One("kvd_replica_catchups_started_total",
                     "Times a replica began catching up from the WAL on disk.", MetricType::Counter,
                     D(r.catchups_started)));
  out->push_back(One("kvd_replica_catchups_finished_total",
                     "Times a catching-up replica reached the in-memory feed (streaming).", MetricType::Counter,
                     D(r.catchups_finished)));

  // A replica's link to its primary.
  out->push_back(One("kvd_replication_streaming", "1 while this replica streams from its primary.",
                     MetricType::Gauge, r.receiver_streaming ? 1 : 0));
  out->push_back(One("kvd_replication_connects_total", "Connections this replica opened to its primary.",
                     MetricType::Counter, D(r.receiver_connects)));
  out->push_back(One("kvd_replication_disconnects_total", "Links to the primary this replica lost.",
                     MetricType::Counter, D(r.receiver_disconnects)));
  out->push_back(One("kvd_replication_received_records_total", "WAL records this replica received and appended.",
                     MetricType::Counter, D(r.records_received)));
  out->push_back(One("kvd_replication_lag_seconds",
                     "This replica's lag: 0 when caught up with the primary's last LSN it knows, else the time "
                     "since it was.",
                     MetricType::Gauge, D(r.receiver_lag_ms) / 1000.0));
  out->push_back(One("kvd_replication_primary_last_lsn", "The primary's last LSN as this replica last heard it.",
                     MetricType::Gauge, D(r.primary_last_lsn)));
}

}  // namespace kvd::daemon
