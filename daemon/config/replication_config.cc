// The rules between [replication] keys, checked after every key parsed.
#include "config/config.h"
#include "net/host_port.h"

namespace kvd::daemon {

Status CheckReplicationConfig(const ReplicationConfig& r) {
  if (!r.listen.empty()) {
    auto hp = ParseHostPort(r.listen, /*allow_port0=*/true);
    if (!hp) return Status::InvalidArgument("replication.listen: " + hp.error().message());
    if (!IsLoopback(*hp)) {
      return Status::InvalidArgument("replication.listen: " + hp->host +
                                     " is not a loopback address; replication is unencrypted for now and may only "
                                     "listen on 127.0.0.1 or ::1 (TLS comes in a later release)");
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
  if (r.sync_replicas > 0) {
    return Status::InvalidArgument("replication.sync_replicas: synchronous replication is not built yet; use 0 "
                                   "(asynchronous)");
  }
  return Status::Ok();
}

}  // namespace kvd::daemon
