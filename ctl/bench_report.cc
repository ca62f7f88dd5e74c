// Parsing bench options and printing its report (text and JSON).
#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench.h"

namespace kvctl {

kvd::Result<std::chrono::nanoseconds> ParseBenchDuration(std::string_view text) {
  size_t num_end = 0;
  while (num_end < text.size() && (std::isdigit(static_cast<unsigned char>(text[num_end])) || text[num_end] == '.')) {
    ++num_end;
  }
  const std::string number(text.substr(0, num_end));
  const std::string_view unit = text.substr(num_end);
  double scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1e9;
  } else if (unit == "ms") {
    scale = 1e6;
  } else if (unit == "us") {
    scale = 1e3;
  } else if (unit == "m" || unit == "min") {
    scale = 60e9;
  } else if (unit == "h") {
    scale = 3600e9;
  }
  char* end = nullptr;
  const double v = number.empty() ? -1 : std::strtod(number.c_str(), &end);
  if (scale == 0 || v <= 0 || end != number.c_str() + number.size() || !std::isfinite(v)) {
    return kvd::Status::InvalidArgument("bad duration '" + std::string(text) + "' (e.g. 10s, 500ms, 2m)");
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(v * scale));
}

kvd::Result<std::pair<uint32_t, uint32_t>> ParseRatio(std::string_view text) {
  const auto colon = text.find(':');
  auto bad = kvd::Status::InvalidArgument("bad ratio '" + std::string(text) + "' (PUT:GET, e.g. 1:0 or 10:90)");
  if (colon == std::string_view::npos) return bad;
  uint32_t put = 0;
  uint32_t get = 0;
  const auto a = text.substr(0, colon);
  const auto b = text.substr(colon + 1);
  const auto ra = std::from_chars(a.data(), a.data() + a.size(), put);
  const auto rb = std::from_chars(b.data(), b.data() + b.size(), get);
  if (a.empty() || b.empty() || ra.ec != std::errc() || ra.ptr != a.data() + a.size() || rb.ec != std::errc() ||
      rb.ptr != b.data() + b.size() || (put == 0 && get == 0) || put > 1'000'000 || get > 1'000'000) {
    return bad;
  }
  return std::make_pair(put, get);
}

namespace {

double OpsPerSec(const BenchReport& r) {
  return r.load.seconds > 0 ? static_cast<double>(r.load.requests) / r.load.seconds : 0.0;
}

double CpuPct(const BenchReport& r) {
  return r.load.seconds > 0 ? 100.0 * (r.cpu_user_s + r.cpu_sys_s) / r.load.seconds : 0.0;
}

}  // namespace

std::string FormatBenchText(const BenchReport& r) {
  const auto& o = r.options;
  const auto& h = r.load.latency_us;
  char buf[1024];
  std::string out;
  std::snprintf(buf, sizeof(buf),
                "kvctl bench: %u clients x pipeline %u, %u thread%s, PUT:GET %s, %u-byte values, key space %llu, "
                "durability %s%s, protocol %s\n",
                o.clients, o.pipeline, o.threads, o.threads == 1 ? "" : "s", o.ratio.c_str(), o.value_size,
                static_cast<unsigned long long>(o.key_space), r.durability.c_str(),
                o.durable_flag ? " (+durable flag)" : "", o.resp.empty() ? "native" : "RESP2");
  out += buf;
  std::snprintf(buf, sizeof(buf), "  requests    %llu in %.3f s (%llu PUT, %llu GET, %llu GET misses), errors %llu\n",
                static_cast<unsigned long long>(r.load.requests), r.load.seconds,
                static_cast<unsigned long long>(r.load.puts), static_cast<unsigned long long>(r.load.gets),
                static_cast<unsigned long long>(r.load.get_misses), static_cast<unsigned long long>(r.load.errors));
  out += buf;
  std::snprintf(buf, sizeof(buf), "  throughput  %.0f ops/s\n", OpsPerSec(r));
  out += buf;
  std::snprintf(buf, sizeof(buf),
                "  latency us  p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu  (mean %.1f)\n",
                static_cast<unsigned long long>(h.Percentile(50)), static_cast<unsigned long long>(h.Percentile(90)),
                static_cast<unsigned long long>(h.Percentile(99)), static_cast<unsigned long long>(h.Percentile(99.9)),
                static_cast<unsigned long long>(h.max()), h.mean());
  out += buf;
  std::snprintf(buf, sizeof(buf), "  generator   cpu user %.2f s + sys %.2f s = %.0f%% of one core\n", r.cpu_user_s,
                r.cpu_sys_s, CpuPct(r));
  out += buf;
  if (!r.load.first_error.empty()) out += "  first error " + r.load.first_error + "\n";
  return out;
}

std::string FormatBenchJson(const BenchReport& r) {
  const auto& o = r.options;
  const auto& h = r.load.latency_us;
  nlohmann::ordered_json j;
  j["ops_per_sec"] = std::round(OpsPerSec(r) * 10) / 10;
  j["p50_us"] = h.Percentile(50);
  j["p90_us"] = h.Percentile(90);
  j["p99_us"] = h.Percentile(99);
  j["p999_us"] = h.Percentile(99.9);
  j["max_us"] = h.max();
  j["mean_us"] = std::round(h.mean() * 10) / 10;
  j["errors"] = r.load.errors;
  j["requests"] = r.load.requests;
  j["puts"] = r.load.puts;
  j["gets"] = r.load.gets;
  j["get_misses"] = r.load.get_misses;
  j["max_ack_lag"] = r.load.max_ack_lag;
  j["clients"] = o.clients;
  j["pipeline"] = o.pipeline;
  j["threads"] = o.threads;
  j["value_size"] = o.value_size;
  j["key_space"] = o.key_space;
  j["ratio"] = o.ratio;
  j["durability"] = r.durability;
  j["durable_flag"] = o.durable_flag;
  j["protocol"] = o.resp.empty() ? "native" : "resp";
  j["prefill"] = o.prefill;
  j["seed"] = o.seed;
  j["duration_s"] = std::round(r.load.seconds * 1e6) / 1e6;
  j["cpu_user_s"] = std::round(r.cpu_user_s * 1e3) / 1e3;
  j["cpu_sys_s"] = std::round(r.cpu_sys_s * 1e3) / 1e3;
  j["cpu_pct_of_core"] = std::round(CpuPct(r) * 10) / 10;
  j["first_error"] = r.load.first_error;
  // Server messages may hold any bytes: never let dump() throw on them.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace kvctl
