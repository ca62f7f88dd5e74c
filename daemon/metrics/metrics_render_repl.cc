// The replication metric families (docs/metrics.md, "Replication"). Runs on
// the exposer's thread, on a private copy. Every family is always present
// (a node that is not a primary shows no per-replica samples, and zero
// counters), so dashboards and alerts need not handle missing names.
#include <string>
#include <utility>

#include "metrics/metric_family.h"
#include "metrics/replication_metrics.h"

namespace kvd::daemon {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

using metric_family::AddValue;
using metric_family::D;
using metric_family::Family;
using metric_family::One;

constexpr const char* kSenderStates[] = {"handshake", "catching_up", "streaming"};

}  // namespace

void AppendReplicationMetrics(const ReplicationMetrics& r, std::vector<MetricFamily>* out) {
  MetricFamily role = Family("kvd_role", "1 for this node's role (primary or replica), 0 for the other.",
                             MetricType::Gauge);
  AddValue(&role, r.role == "primary" ? 1 : 0, {{"role", "primary"}});
  AddValue(&role, r.role == "replica" ? 1 : 0, {{"role", "replica"}});
  out->push_back(std::move(role));
  out->push_back(One("kvd_epoch", "This node's current epoch (primary term).", MetricType::Gauge, D(r.epoch)));

  // A primary's replicas.
  MetricFamily by_state = Family("kvd_replicas", "Connected replicas by state.", MetricType::Gauge);
  for (const char* st : kSenderStates) {
    uint64_t n = 0;
    for (const ReplicaMetrics& x : r.replicas) n += x.state == st ? 1 : 0;
    AddValue(&by_state, D(n), {{"state", st}});
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
    AddValue(&state, 1, {{"replica", x.name}, {"state", x.state}});
    AddValue(&sent, D(x.sent_lsn), name);
    AddValue(&durable, D(x.durable_lsn), name);
    AddValue(&applied, D(x.applied_lsn), name);
    AddValue(&lag_bytes, D(x.lag_bytes), name);
    AddValue(&lag_s, D(x.lag_ms) / 1000.0, name);
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
