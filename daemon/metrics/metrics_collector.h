// MetricsCollector: the bridge between the loop thread, which owns every
// number kvd exposes, and the HTTP thread of the Prometheus exposer.
//
// A scrape (Collect, on the exposer's thread) asks the loop for a fresh
// copy (request_refresh: uv_async_send, never blocking the loop) and waits
// for it up to a bound; the loop thread builds a MetricsSnapshot and
// Publish()es it under a short lock. If the loop does not answer in time
// (or the endpoint is stopping), the scrape serves the last copy. The hot
// path never takes the lock: the loop updates its own plain counters and
// copies them only when asked.
//
// Threading: Publish/Stop from the loop thread; Collect from exposer threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <vector>

#include "metrics/metrics_snapshot.h"

namespace kvd::daemon {

class MetricsCollector : public prometheus::Collectable {
 public:
  // request_refresh: thread-safe, non-blocking (uv_async_send).
  MetricsCollector(std::function<void()> request_refresh, std::chrono::milliseconds wait)
      : request_refresh_(std::move(request_refresh)), wait_(wait) {}

  // Loop thread: a fresh copy; wakes the scrapes waiting for it.
  void Publish(const MetricsSnapshot& s);
  // Loop thread: no more refreshes; waiting scrapes return at once.
  void Stop();

  // Exposer thread.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::function<void()> request_refresh_;
  const std::chrono::milliseconds wait_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  MetricsSnapshot snapshot_;   // guarded by mu_
  uint64_t generation_ = 0;    // guarded by mu_: Publish count
  bool stopped_ = false;       // guarded by mu_
};

// The metric families of one snapshot (names in docs/metrics.md).
std::vector<prometheus::MetricFamily> RenderMetrics(const MetricsSnapshot& s);

}  // namespace kvd::daemon
