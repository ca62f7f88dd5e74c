#include "cluster_route.h"

#include "cluster_view.h"
#include "connect.h"
#include "format.h"

namespace kvctl {
namespace {

using kvd::Result;
using kvd::Status;

constexpr std::string_view kPrimaryToken = " primary_address=";
constexpr std::string_view kUnixScheme = "unix:";

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

Result<ClusterSpec> ParseClusterSpec(std::string_view text) {
  if (Trim(text).starts_with("http")) {
    KVD_ASSIGN_OR_RETURN(auto endpoints, EtcdGateway::ParseEndpoints(text));
    return ClusterSpec{ClusterSpec::kEtcd, std::move(endpoints)};
  }
  ClusterSpec spec{ClusterSpec::kNodes, {}};
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string item = Trim(text.substr(start, comma - start));
    start = comma + 1;
    if (item.empty()) continue;
    if (!item.starts_with(kUnixScheme) || item.size() == kUnixScheme.size()) {
      return Status::InvalidArgument("'" + EscapeForLine(item) +
                                     "': expected etcd endpoints http://IP:PORT[,...] or kvd sockets "
                                     "unix:PATH[,unix:PATH...] (not mixed)");
    }
    spec.items.push_back(item.substr(kUnixScheme.size()));
  }
  if (spec.items.empty()) return Status::InvalidArgument("empty --cluster list");
  return spec;
}

std::optional<std::string> PrimaryAddressFromRefusal(std::string_view message) {
  while (!message.empty() && message.back() == '\n') message.remove_suffix(1);
  const size_t at = message.rfind(kPrimaryToken);
  if (at == std::string_view::npos) return std::nullopt;
  // The token ends the message: the path is everything after it (spaces included).
  const std::string_view path = message.substr(at + kPrimaryToken.size());
  if (path.empty()) return std::nullopt;
  return std::string(path);
}

Result<std::string> PrimarySocketFromEtcd(EtcdGateway& gw, const std::string& prefix) {
  const std::string base = prefix + "/";
  KVD_ASSIGN_OR_RETURN(etcd::RangeResult range, gw.Range(base, etcd::PrefixEnd(base)));
  const ClusterView view = BuildClusterView(prefix, range);
  if (!view.leader) {
    return Status::IOError("no primary: " + base + "leader is absent (an election may be under way; retry)");
  }
  const ClusterMember* m = view.Primary();
  if (m == nullptr) {
    return Status::IOError("the primary " + EscapeForLine(*view.leader) + " has no member key " + base + "members/" +
                           EscapeForLine(*view.leader));
  }
  if (!m->error.empty()) return Status::IOError(m->error);
  if (m->address.empty()) {
    return Status::IOError("the primary " + EscapeForLine(*view.leader) + "'s member key has no client address");
  }
  return m->address;
}

Result<std::string> FirstAnsweringNode(const std::vector<std::string>& sockets, std::chrono::milliseconds timeout) {
  std::string errors;
  for (const std::string& socket : sockets) {
    auto client = ConnectTo(socket, timeout);
    Status s = client.has_value() ? (*client)->Ping() : client.error();
    if (s.ok()) return socket;
    errors += (errors.empty() ? "" : "; ") + socket + ": " + s.message();
  }
  return Status::IOError("no kvd node of --cluster answered: " + errors);
}

Result<std::string> ResolveClusterSocket(const ClusterSpec& spec, const std::string& prefix,
                                         std::chrono::milliseconds timeout, const EtcdTls& tls) {
  if (spec.kind == ClusterSpec::kNodes) return FirstAnsweringNode(spec.items, timeout);
  EtcdGateway gw(spec.items, timeout, tls);
  return PrimarySocketFromEtcd(gw, prefix);
}

}  // namespace kvctl
