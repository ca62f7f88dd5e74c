// Finding the node to talk to in a cluster (`kvctl --cluster ...`), and
// following a replica's redirect to the primary.
//
//   --cluster http://IP:PORT[,...]   etcd: the leader key names the primary,
//                                    its member key gives its client socket
//   --cluster unix:PATH[,unix:PATH]  kvd nodes: the first that answers PING
//
// Either way, a write refused with NotPrimary whose message ends in
// " primary_address=PATH" is sent once more, to PATH (commands.cc); a second
// NotPrimary is reported, never followed again (no redirect loops).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "etcd_gateway.h"
#include "kvd/status.h"

namespace kvctl {

struct ClusterSpec {
  enum Kind { kEtcd, kNodes };
  Kind kind = kEtcd;
  std::vector<std::string> items;  // etcd endpoints, or socket paths (without "unix:")
};

// Every item http:// (etcd) or every item unix:PATH (nodes); a mix, an
// empty list or anything else is kInvalidArgument.
kvd::Result<ClusterSpec> ParseClusterSpec(std::string_view text);

// The path after the last " primary_address=" of a NotPrimary message (the
// token ends the message, so the path is the rest of it), when not empty.
std::optional<std::string> PrimaryAddressFromRefusal(std::string_view message);

// The primary's client socket: <prefix>/leader's value, then that member's
// "address". Errors say which step failed (no leader; no member key; no
// address) and are kIOError.
kvd::Result<std::string> PrimarySocketFromEtcd(EtcdGateway& gw, const std::string& prefix);

// The first socket whose kvd answers PING within timeout; the error lists
// why each one failed.
kvd::Result<std::string> FirstAnsweringNode(const std::vector<std::string>& sockets,
                                            std::chrono::milliseconds timeout);

// The socket for a command run with --cluster (either kind); tls for etcd
// (checked by EtcdGateway::CheckTls).
kvd::Result<std::string> ResolveClusterSocket(const ClusterSpec& spec, const std::string& prefix,
                                              std::chrono::milliseconds timeout, const EtcdTls& tls = {});

}  // namespace kvctl
