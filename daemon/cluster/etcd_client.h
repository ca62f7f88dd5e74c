// EtcdClient: asynchronous etcd v3 operations over the JSON gateway, on the
// libuv loop (libcurl multi, cluster/curl_uv.h). kvd's only way to etcd;
// docs/cluster.md says why the gateway and not gRPC.
//
// Every operation takes a callback that receives Result<T>; it runs later on
// the loop, never inside the call that started the operation. Destroying the
// client cancels what is in flight without calling those callbacks.
//
// Endpoints: requests go to the current endpoint; a connection refused
// (nothing sent) is retried at once on the next ones, any other failure
// (timeout, reset, etcd Unavailable) moves the current endpoint on for the
// next request and is reported: after a timeout a write's outcome is
// unknown, and only the caller knows whether repeating it is safe (the
// leader lease re-reads the key; a CAS re-reads and compares).
//
// TLS (https:// endpoints): options.tls names the CA etcd's certificate
// must chain to and the optional client certificate (SetCurlTlsOptions in
// common/curl_tls.h).
// A failed handshake (nothing sent) is retried at once on the next member
// like a refused connection; its error says what TLS refused
// (CurlMulti::TlsHint).
//
// Log: a transport failure of an endpoint is logged (warn) when it starts
// or changes, and again every kHealthLogRepeat while it lasts; the first
// answer after it is logged (info). The caller keeps retrying as it would
// for any unreachable etcd.
//
// Errors: kIOError (transport; message names the endpoint), kBusy (etcd
// Unavailable: no leader, stopping; try again), kNotFound (lease not found),
// kInvalidArgument (etcd refused the request), kCorruption (a reply that does
// not parse).
//
// Threading: loop thread only.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/curl_uv.h"
#include "cluster/etcd_types.h"
#include "kvd/status.h"
#include "net/uv_handle.h"

namespace kvd::daemon {

class EtcdWatch;

struct EtcdClientOptions {
  // "http://127.0.0.1:2379" style URLs; IP addresses keep name resolution
  // off the loop (docs/cluster.md).
  std::vector<std::string> endpoints;
  std::chrono::milliseconds request_timeout{2000};  // whole request, per endpoint tried
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds watch_retry{250};       // pause before a watch reconnects
  CurlTls tls;  // https:// endpoints: ca_file required (config/cluster_config.cc checks)
};

class EtcdClient {
 public:
  template <typename T>
  using Callback = std::function<void(Result<T>)>;

  static Result<std::unique_ptr<EtcdClient>> Create(uv_loop_t* loop, EtcdClientOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // Linearizable read of `key` (range_end empty) or of [key, range_end).
  void Range(std::string key, std::string range_end, Callback<EtcdRange> done);
  void RangePrefix(std::string prefix, Callback<EtcdRange> done);
  // Returns the revision of the write.
  void Put(std::string key, std::string value, int64_t lease, Callback<int64_t> done);
  void Delete(std::string key, std::string range_end, Callback<int64_t> done);
  void Txn(EtcdTxnRequest txn, Callback<EtcdTxnResult> done);

  void LeaseGrant(int64_t ttl_seconds, Callback<EtcdLease> done);
  // One keepalive (one request, one reply). ttl_seconds == 0 in the result:
  // the lease is gone. `timeout` 0 uses request_timeout.
  void LeaseKeepAlive(int64_t id, std::chrono::milliseconds timeout, Callback<EtcdLease> done);
  void LeaseRevoke(int64_t id, Callback<int64_t> done);

  // Maintenance status of one endpoint (not failed over): who it thinks leads.
  void MemberStatus(size_t endpoint_index, Callback<EtcdMemberStatus> done);

  // Watches [key, range_end) (key alone if range_end is empty) from
  // start_revision (0: from now). See EtcdWatch. Destroy it to stop.
  using WatchCallback = std::function<void(Result<EtcdWatchBatch>)>;
  std::unique_ptr<EtcdWatch> Watch(std::string key, std::string range_end, int64_t start_revision,
                                   WatchCallback on_batch);

  // Replaces the endpoint list for later requests (in-flight ones finish
  // where they are). An empty list is refused.
  Status SetEndpoints(std::vector<std::string> endpoints);
  const std::vector<std::string>& endpoints() const { return options_.endpoints; }
  const std::string& current_endpoint() const { return options_.endpoints[current_]; }
  const EtcdClientOptions& options() const { return options_; }
  size_t in_flight() const { return calls_.size(); }

 private:
  friend class EtcdWatch;
  struct Call;
  using RawDone = std::function<void(Result<std::string>)>;

  EtcdClient(uv_loop_t* loop, EtcdClientOptions options);
  // POSTs body to path on the current endpoint (or on `pinned`, if set).
  void Issue(std::string path, std::string body, std::chrono::milliseconds timeout, RawDone done,
             int pinned = -1);
  void Send(Call* call);
  void Finish(Call* call, CURLcode result);
  // The endpoint at `index` failed: the next request goes to the one after
  // it (unless another failure moved on already).
  void EndpointFailed(size_t index);
  // Runs fn on the next loop turn (for failures found before anything was sent).
  void Defer(std::function<void()> fn);
  // Logs transitions of an endpoint's transport health (see "Log" above):
  // result CURLE_OK if the transfer got an answer, else why it failed.
  void NoteHealth(size_t endpoint, CURLcode result, const std::string& why);

  uv_loop_t* loop_;
  EtcdClientOptions options_;
  size_t current_ = 0;
  std::unique_ptr<CurlMulti> multi_;
  std::unordered_map<Call*, std::unique_ptr<Call>> calls_;
  UvHandle<uv_timer_t> defer_timer_;
  std::vector<std::function<void()>> deferred_;
  struct Health {
    CURLcode failing = CURLE_OK;  // the failure last logged; OK while it answers
    std::chrono::steady_clock::time_point logged_at{};
    uint64_t repeats = 0;  // the same failure since it was logged
  };
  std::vector<Health> health_;  // per endpoint
};

}  // namespace kvd::daemon
