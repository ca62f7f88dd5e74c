// `kvctl cluster status`: what etcd says about a kvd cluster (members,
// roles, epochs, LSNs, lag, the sync set) and the health of each etcd
// endpoint. The --json schema is documented in docs/cluster.md ("kvctl").
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "cluster_view.h"
#include "etcd_gateway.h"

namespace kvctl {

struct EtcdEndpointHealth {
  std::string endpoint;
  bool reachable = false;
  etcd::MemberStatus status;  // when reachable
  std::string error;          // when not
};

struct ClusterStatus {
  ClusterView view;
  std::vector<EtcdEndpointHealth> etcd;
  int64_t now_ms = 0;  // wall clock when read: member ages are now_ms - updated_ms
};

// Pure renderings (unit-tested).
std::string RenderClusterStatusText(const ClusterStatus& s);
std::string RenderClusterStatusJson(const ClusterStatus& s);

// Reads the view (one range over "<prefix>/") and every endpoint's status.
// Fails only when no endpoint could serve the range.
kvd::Result<ClusterStatus> ReadClusterStatus(EtcdGateway& gw, const std::string& prefix);

// The command: prints the table (or one JSON object) on out; exit code.
int CmdClusterStatus(EtcdGateway& gw, const std::string& prefix, bool json, std::ostream& out, std::ostream& err);

}  // namespace kvctl
