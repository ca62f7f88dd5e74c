// MetricsCollector and RenderMetrics without HTTP: a scrape asks the owner
// for a fresh copy and waits for it (bounded), Stop releases waiting scrapes
// at once, and the families carry the snapshot's numbers (histogram counts
// are the sum of their buckets, in seconds for microsecond data).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "daemon/metrics/metrics_collector.h"

namespace kvd::daemon {
namespace {

using namespace std::chrono_literals;
using prometheus::MetricFamily;

const MetricFamily& Find(const std::vector<MetricFamily>& fs, const std::string& name) {
  for (const auto& f : fs) {
    if (f.name == name) return f;
  }
  FAIL("no family " << name);
  static MetricFamily none;
  return none;
}

TEST_CASE("a scrape gets the copy published after its request") {
  std::atomic<int> requests{0};
  MetricsCollector* self = nullptr;
  std::thread owner;
  MetricsCollector c(
      [&] {
        // The loop answers on its own thread, as the uv_async callback does.
        ++requests;
        owner = std::thread([&] {
          MetricsSnapshot s;
          s.keys = 42;
          self->Publish(s);
        });
      },
      10s);
  self = &c;
  auto families = c.Collect();
  owner.join();
  CHECK(requests == 1);
  CHECK(Find(families, "kvd_keys").metric.at(0).gauge.value == 42);
}

TEST_CASE("without an answer a scrape serves the last copy after the bound; after Stop it does not wait") {
  MetricsCollector c([] {}, 50ms);
  MetricsSnapshot s;
  s.durable_lsn = 7;
  c.Publish(s);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(Find(c.Collect(), "kvd_durable_lsn").metric.at(0).gauge.value == 7);
  CHECK(std::chrono::steady_clock::now() - t0 >= 50ms);
  c.Stop();
  MetricsCollector slow([] {}, 1h);
  slow.Stop();
  CHECK(Find(slow.Collect(), "kvd_durable_lsn").metric.at(0).gauge.value == 0);  // at once, not after an hour
}

TEST_CASE("RenderMetrics: counters by op, histograms cumulative with +Inf equal to the count") {
  MetricsSnapshot s;
  s.counters.ops[static_cast<size_t>(Op::kPut)] = 3;
  auto& put = s.latency.by_op[static_cast<size_t>(Op::kPut)];
  put.Add(1);
  put.Add(100);
  put.Add(uint64_t{1} << 40);  // beyond the last bound
  s.group_records.Add(5);
  const auto fs = RenderMetrics(s);
  const MetricFamily& ops = Find(fs, "kvd_requests_total");
  CHECK(ops.type == prometheus::MetricType::Counter);
  CHECK(ops.metric.size() == kOpCount);
  bool seen = false;
  for (const auto& m : ops.metric) {
    if (m.label.at(0).value == "put") {
      CHECK(m.counter.value == 3);
      seen = true;
    }
  }
  CHECK(seen);
  const MetricFamily& lat = Find(fs, "kvd_request_duration_seconds");
  CHECK(lat.type == prometheus::MetricType::Histogram);
  for (const auto& m : lat.metric) {
    if (m.label.at(0).value != "put") continue;
    const auto& h = m.histogram;
    CHECK(h.sample_count == 3);
    CHECK(h.bucket.front().upper_bound == doctest::Approx(1e-6));
    CHECK(h.bucket.front().cumulative_count == 1);
    CHECK(h.bucket[h.bucket.size() - 2].cumulative_count == 2);  // 8.4 s: all but the huge one
    CHECK(h.bucket.back().cumulative_count == 3);
    CHECK(h.sample_sum == doctest::Approx((1.0 + 100.0 + static_cast<double>(uint64_t{1} << 40)) * 1e-6));
  }
  const auto& g = Find(fs, "kvd_commit_group_records").metric.at(0).histogram;
  CHECK(g.sample_count == 1);
  CHECK(g.sample_sum == 5);
  CHECK(g.bucket.at(3).upper_bound == 8);
  CHECK(g.bucket.at(3).cumulative_count == 1);
  CHECK(g.bucket.at(2).cumulative_count == 0);
}

}  // namespace
}  // namespace kvd::daemon
