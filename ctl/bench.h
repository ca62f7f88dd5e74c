// `kvctl bench`: a redis-benchmark-like load generator for kvd.
//
// Durability: --durability MODE sets the server's durability.mode with
// CONFIG SET for the measured run and restores the previous mode afterwards
// (also after Ctrl-C); without it the server's current mode is used and
// reported. --durable-flag instead marks every PUT as "acknowledge only once
// durable" (the protocol's per-request flag), which gives sync-mode replies
// without touching the server's setting.
// --prefill writes every key of the key space once before the measured run,
// under durability.mode=none followed by one FLUSH (fast, and durable before
// measuring starts), then sets the mode for the run.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "histogram.h"
#include "kvd/status.h"
#include "load_driver.h"

namespace kvctl {

struct BenchOptions {
  uint32_t clients = 16;
  uint64_t requests = 0;     // 0 and no duration: kDefaultRequests
  std::string duration;      // "10s", "500ms", "2m"; empty = by request count
  uint32_t pipeline = 1;
  uint32_t value_size = 100;
  uint64_t key_space = 1'000'000;
  std::string ratio = "1:0";  // PUT:GET
  std::string durability;     // "", "sync", "batch", "none"
  bool durable_flag = false;
  bool prefill = false;
  bool json = false;
  bool progress = true;  // live line on stderr, only when stderr is a terminal
  uint32_t threads = 1;
  uint64_t seed = 1;
};

inline constexpr uint64_t kDefaultRequests = 100'000;

// "10s" "1.5s" "500ms" "2m" "250us"; a bare number is seconds.
kvd::Result<std::chrono::nanoseconds> ParseBenchDuration(std::string_view text);
// "PUT:GET" with non-negative integers, not both zero: {put, get}.
kvd::Result<std::pair<uint32_t, uint32_t>> ParseRatio(std::string_view text);

// Everything the report needs.
struct BenchReport {
  BenchOptions options;
  std::string durability;  // the mode in effect during the run
  LoadResult load;
  double cpu_user_s = 0;
  double cpu_sys_s = 0;
};

std::string FormatBenchText(const BenchReport& r);
std::string FormatBenchJson(const BenchReport& r);  // one line, one object

// Runs the benchmark and prints the report on out; problems go to err as one
// line. Returns the exit code: 0, 2 (bad options), 3 (server unreachable,
// a failed CONFIG SET, or any request failed).
int RunBench(const std::string& socket_path, const BenchOptions& options, std::ostream& out, std::ostream& err);

}  // namespace kvctl
