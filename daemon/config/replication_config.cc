// The rules between [replication] keys, checked after every key parsed.
#include "config/config.h"
#include "net/host_port.h"

namespace kvd::daemon {

Status CheckReplicationConfig(const ReplicationConfig& r) {
  if (r.tls() && (r.tls_cert.empty() || r.tls_key.empty() || r.tls_ca.empty())) {
    return Status::InvalidArgument("replication.tls_cert, tls_key and tls_ca: set all three (mutual TLS) or none");
  }
  if (!r.listen.empty()) {
    auto hp = ParseHostPort(r.listen, /*allow_port0=*/true);
    if (!hp) return Status::InvalidArgument("replication.listen: " + hp.error().message());
    if (!IsLoopback(*hp) && !r.tls() && !r.insecure) {
      return Status::InvalidArgument("replication.listen: " + hp->host +
                                     " is not a loopback address and the link is not encrypted: set tls_cert, "
                                     "tls_key and tls_ca (mutual TLS), or insecure = true to stream the WAL in "
                                     "clear text, or listen on 127.0.0.1 or ::1");
    }
  }
  if (r.role == "replica") {
    if (r.primary.empty()) return Status::InvalidArgument("replication.primary: a replica must name its primary");
    auto hp = ParseHostPort(r.primary);
    if (!hp) return Status::InvalidArgument("replication.primary: " + hp.error().message());
    // A replica's listen opens only once it is promoted (kvctl promote):
    // replicas do not serve replicas (no cascading).
  } else if (!r.primary.empty()) {
    return Status::InvalidArgument("replication.primary: set only with role = \"replica\"");
  }
  if (r.sync_replicas > 0 && !r.enabled()) {
    return Status::InvalidArgument("replication.sync_replicas: needs replication.listen (a primary that serves "
                                   "replicas)");
  }
  return Status::Ok();
}

}  // namespace kvd::daemon
