// EtcdWatch: one watch over the gateway's streaming /v3/watch, delivering
// events as they arrive.
//
// The gateway answers a POST with a never-ending chunked reply, one JSON
// object per line. When the stream ends (member killed, connection reset,
// TCP keepalive gave up on a partition) the watch reconnects to the client's
// next endpoint after options().watch_retry, from the revision after the
// last event it delivered, so no event is lost or delivered twice.
//
// The callback receives each batch of events, and, for information, each
// failure (kIOError/kBusy: it is reconnecting on its own). Once only it may
// receive kInvalidArgument "compacted": events between the revision it asked
// for and the compaction are gone; the caller re-reads, and the watch goes
// on from the compact revision. Callbacks run on the loop, outside curl.
//
// Destroying the watch stops it (no callback afterwards). It must not
// outlive its client. Threading: loop thread only.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <memory>
#include <string>

#include "cluster/etcd_client.h"
#include "net/uv_handle.h"

namespace kvd::daemon {

class EtcdWatch {
 public:
  ~EtcdWatch();
  EtcdWatch(const EtcdWatch&) = delete;
  EtcdWatch& operator=(const EtcdWatch&) = delete;

  // The revision a reconnect would start from (0: "now", before the first
  // reply).
  int64_t next_revision() const { return next_revision_; }
  size_t reconnects() const { return reconnects_; }

 private:
  friend class EtcdClient;
  EtcdWatch(EtcdClient* client, std::string key, std::string range_end, int64_t start_revision,
            EtcdClient::WatchCallback on_batch);

  void Connect();
  void Disconnect();
  static size_t OnData(char* data, size_t size, size_t n, void* userp);
  // Parses and delivers the complete lines received; on the loop, outside
  // curl. False if it failed the stream or the callback destroyed the watch.
  bool DeliverLines();
  void OnDone(CURLcode result);
  void Fail(Status status);  // report, then reconnect after watch_retry

  EtcdClient* client_;
  std::string key_;
  std::string range_end_;
  int64_t next_revision_;
  EtcdClient::WatchCallback on_batch_;
  CURL* easy_ = nullptr;
  curl_slist* headers_ = nullptr;
  std::string body_;
  std::string url_;
  std::string buffer_;  // bytes received but not yet split into lines
  size_t endpoint_ = 0;
  size_t reconnects_ = 0;
  char error_[CURL_ERROR_SIZE] = {};
  UvHandle<uv_timer_t> deliver_timer_;
  UvHandle<uv_timer_t> retry_timer_;
  // Expires with the watch: callbacks may destroy it, code after them checks.
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

}  // namespace kvd::daemon
