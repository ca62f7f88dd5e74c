// What etcd says about one kvd cluster: the keys under its prefix
// (docs/cluster.md §2) read in one range, decoded.
//
//   <prefix>/leader            the primary's name; create revision = epoch
//   <prefix>/members/<name>    {"name","address","repl_address","role","epoch",
//                               "durable_lsn","applied_lsn","updated_ms"}
//   <prefix>/sync              {"epoch","members":[...],"sync_replicas"}
//   <prefix>/switchover        {"from","to"} while one is requested
//
// Pure: built from a RangeResult, unit-tested without etcd.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "etcd_json.h"
#include "kvd/status.h"

namespace kvctl {

struct ClusterMember {
  std::string name;          // from the key (members/<name>)
  std::string address;       // client Unix socket
  std::string repl_address;  // HOST:PORT
  std::string role;
  uint64_t epoch = 0;
  uint64_t durable_lsn = 0;
  uint64_t applied_lsn = 0;
  int64_t updated_ms = 0;  // wall clock (ms since the Unix epoch) of the last refresh
  std::string error;       // not empty: the value did not decode (shown, not dropped)
};

struct ClusterSync {
  uint64_t epoch = 0;
  std::vector<std::string> members;
  uint64_t sync_replicas = 0;
};

struct ClusterSwitchover {
  std::string from;
  std::string to;
};

struct ClusterView {
  std::string prefix;
  int64_t revision = 0;  // etcd's store revision the view was read at
  std::optional<std::string> leader;
  int64_t epoch = 0;  // the leader key's create revision (0: no leader)
  std::vector<ClusterMember> members;  // in key order
  std::optional<ClusterSync> sync;
  std::string sync_error;  // not empty: the sync key did not decode
  std::optional<ClusterSwitchover> switchover;

  const ClusterMember* Member(std::string_view name) const;
  // The leader's member entry, if both exist.
  const ClusterMember* Primary() const;
};

// "/kvd/main/" -> "/kvd/main": a trailing slash is dropped; empty is refused.
kvd::Result<std::string> NormalizePrefix(std::string_view prefix);

// Decodes the keys of one range over "<prefix>/"; keys it does not know
// are ignored.
ClusterView BuildClusterView(std::string_view prefix, const etcd::RangeResult& range);

kvd::Result<ClusterMember> ParseMember(std::string_view name, std::string_view json);
kvd::Result<ClusterSync> ParseSync(std::string_view json);
kvd::Result<ClusterSwitchover> ParseSwitchover(std::string_view json);
std::string SwitchoverJson(const ClusterSwitchover& s);

// The member's lag behind the primary in LSNs: primary durable LSN minus
// the member's durable LSN (0 if ahead); nullopt without a primary entry.
std::optional<uint64_t> LagOf(const ClusterView& view, const ClusterMember& m);

}  // namespace kvctl
