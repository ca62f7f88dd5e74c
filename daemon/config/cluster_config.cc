// The rules of [cluster] keys (docs/cluster.md), checked after every key parsed.
#include <string>
#include <vector>

#include "config/config.h"
#include "config/config_units.h"
#include "net/host_port.h"

namespace kvd::daemon {

Result<std::vector<std::string>> ParseEtcdEndpoints(std::string_view text) {
  std::vector<std::string> out;
  std::string_view scheme;  // of the first URL: every other one must match
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view url = Trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (url.empty()) return Status::InvalidArgument("cluster.etcd_endpoints: an empty entry");
    const std::string_view this_scheme = url.starts_with("https://") ? "https://"
                                         : url.starts_with("http://") ? "http://"
                                                                      : "";
    if (this_scheme.empty()) {
      return Status::InvalidArgument("cluster.etcd_endpoints: \"" + std::string(url) +
                                     "\" is not http://IP:PORT or https://IP:PORT");
    }
    if (scheme.empty()) scheme = this_scheme;
    if (this_scheme != scheme) {
      // One TLS setting serves every member: a mix is a typo or a cluster
      // half-way through a migration, and the http half would be clear text.
      return Status::InvalidArgument("cluster.etcd_endpoints: http:// and https:// mixed (" + std::string(url) +
                                     "): every endpoint must use the same scheme");
    }
    std::string_view host_port = url.substr(this_scheme.size());
    if (!host_port.empty() && host_port.back() == '/') host_port.remove_suffix(1);
    // An IP address, not a host name: libcurl would resolve a name on a
    // thread of its own (docs/cluster.md §4).
    auto hp = ParseHostPort(host_port);
    if (!hp) return Status::InvalidArgument("cluster.etcd_endpoints: " + hp.error().message());
    out.push_back(std::string(this_scheme) + hp->ToString());
  }
  if (out.empty()) return Status::InvalidArgument("cluster.etcd_endpoints: no endpoint");
  return out;
}

namespace {

// TLS to etcd: which keys go together (the files are read at start-up, by
// CheckEtcdTlsFiles). The system CA store is never used: etcd's certificate
// must chain to the CA named here (docs/cluster.md "TLS to etcd").
Status CheckEtcdTlsKeys(const ClusterConfig& c, bool https) {
  if (c.etcd_cert_file.empty() != c.etcd_key_file.empty()) {
    return Status::InvalidArgument("cluster.etcd_cert_file and etcd_key_file: set both (a client certificate) or "
                                   "neither");
  }
  const bool any = !c.etcd_ca_file.empty() || !c.etcd_cert_file.empty();
  if (https && c.etcd_ca_file.empty()) {
    return Status::InvalidArgument("cluster.etcd_ca_file: required with https:// endpoints (the CA that signed "
                                   "etcd's certificate; the system CA store is not used)");
  }
  if (!https && any) {
    return Status::InvalidArgument("cluster.etcd_ca_file, etcd_cert_file, etcd_key_file: only with https:// "
                                   "endpoints (etcd_endpoints are http://: nothing would use them)");
  }
  return Status::Ok();
}

}  // namespace

Status CheckClusterConfig(const ClusterConfig& c) {
  if (!c.etcd_endpoints.empty()) {
    auto eps = ParseEtcdEndpoints(c.etcd_endpoints);
    if (!eps) return eps.error();
    KVD_RETURN_IF_ERROR(CheckEtcdTlsKeys(c, eps->front().starts_with("https://")));
  }
  const std::string& p = c.prefix;
  if (p.size() < 2 || p.front() != '/' || p.back() == '/') {
    return Status::InvalidArgument("cluster.prefix: \"" + p + "\" must start with '/' and not end with one (\"/kvd/main\")");
  }
  for (char ch : p) {
    if (static_cast<unsigned char>(ch) <= ' ') {
      return Status::InvalidArgument("cluster.prefix: no spaces or control characters");
    }
  }
  if (c.ttl.count() % 1000 != 0) {
    return Status::InvalidArgument("cluster.ttl: etcd counts lease TTLs in whole seconds (\"5s\")");
  }
  return Status::Ok();
}

Status CheckClusterReplication(const ClusterConfig& c, const ReplicationConfig& r) {
  if (!c.enabled()) return Status::Ok();
  // etcd decides the roles: a configured role would contradict it.
  if (r.role != "primary" || !r.primary.empty()) {
    return Status::InvalidArgument("replication.role and replication.primary: not with [cluster] (etcd decides "
                                   "which node is primary); remove them");
  }
  if (r.name.empty()) {
    return Status::InvalidArgument("replication.name: [cluster] needs each node's name (its key in etcd)");
  }
  auto hp = ParseHostPort(r.listen);
  if (r.listen.empty() || !hp) {
    return Status::InvalidArgument("replication.listen: [cluster] needs HOST:PORT with a fixed port (the other "
                                   "nodes connect to it when this node is primary)");
  }
  return Status::Ok();
}

}  // namespace kvd::daemon
