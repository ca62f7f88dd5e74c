// A small blocking client for etcd's v3 JSON gateway, for kvctl's cluster
// commands (cluster status, switchover, --cluster routing).
//
// One libcurl easy handle, one request at a time: kvctl is a short-lived
// command, not the event loop (the daemon's client is daemon/cluster/).
// Endpoints ("http://IP:PORT", or all "https://IP:PORT" with EtcdTls) are
// tried in order: a read moves on to the
// next endpoint after any failure; a write moves on only when nothing was
// sent (the connection was refused), since after a timeout its outcome is
// unknown and repeating it elsewhere could apply it twice.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "curl_tls.h"
#include "etcd_json.h"
#include "kvd/status.h"

namespace kvctl {

// TLS to etcd (--etcd-cacert, --etcd-cert, --etcd-key; docs/cluster.md "TLS
// to etcd"), as kvd's [cluster] etcd_ca_file, etcd_cert_file, etcd_key_file,
// with the same rules (common/curl_tls.h).
using EtcdTls = kvd::CurlTls;

class EtcdGateway {
 public:
  // Parses "http://IP:PORT[,http://IP:PORT...]" or the same with https://;
  // a mix of both is refused, so is anything that is not http(s)://HOST:PORT.
  static kvd::Result<std::vector<std::string>> ParseEndpoints(std::string_view list);
  // The TLS options fit the endpoints: https needs ca_file, http takes none,
  // cert and key come together, and each named file is readable.
  static kvd::Status CheckTls(const std::vector<std::string>& endpoints, const EtcdTls& tls);

  // timeout bounds each request on each endpoint (0: 5 s). tls as checked
  // by CheckTls.
  EtcdGateway(std::vector<std::string> endpoints, std::chrono::milliseconds timeout, EtcdTls tls = {});
  ~EtcdGateway();
  EtcdGateway(const EtcdGateway&) = delete;
  EtcdGateway& operator=(const EtcdGateway&) = delete;

  const std::vector<std::string>& endpoints() const { return endpoints_; }

  // Every key in [key, range_end) (range_end empty: key alone).
  kvd::Result<etcd::RangeResult> Range(std::string_view key, std::string_view range_end = {});
  kvd::Result<etcd::TxnResult> Txn(const std::vector<etcd::Compare>& compares,
                                   const std::vector<etcd::TxnOp>& success, const std::vector<etcd::TxnOp>& failure);
  kvd::Result<int64_t> LeaseGrant(int64_t ttl_seconds);
  // Deletes every key on the lease.
  kvd::Status LeaseRevoke(int64_t id);
  // /v3/maintenance/status of one endpoint (no failover: health is per member).
  kvd::Result<etcd::MemberStatus> MemberStatusOf(const std::string& endpoint);

 private:
  struct Reply {
    long http_status = 0;
    std::string body;
  };
  // POSTs body to path on one endpoint. kIOError names the endpoint;
  // *nothing_sent says whether the request certainly did not leave.
  kvd::Result<Reply> PostTo(const std::string& endpoint, std::string_view path, std::string_view body,
                            bool* nothing_sent);
  // PostTo each endpoint in order until one answers 200 (idempotent: after
  // any failure; else only while nothing was sent). The error lists every
  // endpoint's failure.
  kvd::Result<std::string> Post(std::string_view path, std::string_view body, bool idempotent);

  std::vector<std::string> endpoints_;
  std::chrono::milliseconds timeout_;
  EtcdTls tls_;
  void* curl_ = nullptr;  // CURL*, reused so connections are kept alive
};

}  // namespace kvctl
