// MetricsEndpoint: the optional Prometheus endpoint ([metrics] listen):
// prometheus-cpp's Exposer (civetweb, its own HTTP thread) serving one
// MetricsCollector at /metrics, and the uv_async through which a scrape asks
// the loop thread for a fresh MetricsSnapshot.
//
// The loop never blocks on a scrape: the async callback fills a snapshot
// (fill, on the loop thread) and publishes it under the collector's short
// lock. Forked snapshot children run only the snapshot writer and _exit:
// they never touch the exposer (its threads do not exist in the child).
//
// Threading: Start/Stop and the fill callback on the loop thread.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "kvd/status.h"
#include "metrics/metrics_collector.h"
#include "net/uv_handle.h"

namespace prometheus {
class Exposer;
}

namespace kvd::daemon {

class MetricsEndpoint {
 public:
  using FillFn = std::function<void(MetricsSnapshot*)>;
  MetricsEndpoint();
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // Listens on listen ("HOST:PORT"; port 0 picks a free one, see port()).
  Status Start(uv_loop_t* loop, const std::string& listen, FillFn fill);
  // Stops the HTTP thread (a scrape in progress gets the last copy) and
  // closes the async handle. Idempotent.
  void Stop();

  bool running() const { return exposer_ != nullptr; }
  // The bound port (0 when not running).
  uint16_t port() const { return port_; }

 private:
  static void OnAsync(uv_async_t* a);

  FillFn fill_;
  UvHandle<uv_async_t> async_;
  std::shared_ptr<MetricsCollector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  uint16_t port_ = 0;
};

}  // namespace kvd::daemon
