#include "metrics/metrics_collector.h"

namespace kvd::daemon {

void MetricsCollector::Publish(const MetricsSnapshot& s) {
  {
    std::lock_guard<std::mutex> l(mu_);
    snapshot_ = s;
    ++generation_;
  }
  cv_.notify_all();
}

void MetricsCollector::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
}

std::vector<prometheus::MetricFamily> MetricsCollector::Collect() const {
  MetricsSnapshot copy;
  {
    std::unique_lock<std::mutex> l(mu_);
    if (!stopped_) {
      const uint64_t seen = generation_;
      request_refresh_();
      cv_.wait_for(l, wait_, [&] { return stopped_ || generation_ != seen; });
    }
    copy = snapshot_;
  }
  return RenderMetrics(copy);  // formatting happens outside the lock
}

}  // namespace kvd::daemon
