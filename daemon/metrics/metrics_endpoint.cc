#include "metrics/metrics_endpoint.h"

#include "config/config_units.h"

#include <prometheus/exposer.h>

#include <exception>
#include <vector>

namespace kvd::daemon {
namespace {

// How long a scrape waits for the loop's fresh copy before it serves the
// last one (the loop answers within a turn; this only bounds a stall).
constexpr std::chrono::milliseconds kRefreshWait{1000};

}  // namespace

MetricsEndpoint::MetricsEndpoint() = default;

MetricsEndpoint::~MetricsEndpoint() { Stop(); }

Status MetricsEndpoint::Start(uv_loop_t* loop, const std::string& listen, FillFn fill) {
  KVD_RETURN_IF_ERROR(ParseHostPort(listen, nullptr, nullptr));
  fill_ = std::move(fill);
  if (!InitAsync(loop, &async_, &MetricsEndpoint::OnAsync, this)) {
    return Status::Internal("metrics: uv_async_init failed");
  }
  uv_unref(async_.handle());  // an idle endpoint does not keep the loop alive
  uv_async_t* async = async_.get();
  collector_ = std::make_shared<MetricsCollector>([async] { uv_async_send(async); }, kRefreshWait);
  MetricsSnapshot first;
  fill_(&first);
  collector_->Publish(first);
  try {
    // One HTTP thread: scrapes are rare and each is short.
    exposer_ = std::make_unique<prometheus::Exposer>(listen, 1);
    exposer_->RegisterCollectable(collector_, "/metrics");
    const std::vector<int> ports = exposer_->GetListeningPorts();
    port_ = ports.empty() ? 0 : static_cast<uint16_t>(ports.front());
  } catch (const std::exception& e) {
    exposer_.reset();
    collector_->Stop();
    async_.reset();
    return Status::InvalidArgument("metrics.listen = \"" + listen + "\": cannot listen: " + e.what());
  }
  return Status::Ok();
}

void MetricsEndpoint::Stop() {
  // Order: no new refresh requests (Stop wakes waiting scrapes), then join
  // the HTTP thread, then close the async handle nobody can signal any more.
  if (collector_) collector_->Stop();
  exposer_.reset();
  async_.reset();
  port_ = 0;
}

void MetricsEndpoint::OnAsync(uv_async_t* a) {
  auto* self = static_cast<MetricsEndpoint*>(a->data);
  MetricsSnapshot s;
  self->fill_(&s);
  self->collector_->Publish(s);
}

}  // namespace kvd::daemon
