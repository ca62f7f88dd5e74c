// `kvctl bench`: a redis-benchmark-like load generator for kvd.
//
// It never changes the server's configuration, so a bench that is killed
// cannot leave kvd in another durability mode: the run uses the server's
// current mode, and --durability sync (or --durable-flag) marks every PUT
// with the protocol's per-request durable flag instead. --durability batch or
// none is accepted only when the server already runs in that mode.
// Keys are --prefix ("bench:") + 12 digits; after the run (also after Ctrl-C
// or a failed run) every key of the key space under that prefix is deleted,
// unless --keep.
// --resp ENDPOINT drives kvd's RESP listener with the same load model
// instead. RESP has no per-request durable flag, so --durability sync then
// needs a server already in sync mode (kvd answers a SET after its fdatasync
// there, as it does a native PUT); --durable-flag and --ack-log (which needs
// LSNs) are refused.
// --prefill writes every key of the key space once before the measured run
// (pipelined, without the durable flag), then sends one FLUSH.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "histogram.h"
#include "keyspace.h"
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
  std::string prefix = std::string(kDefaultBenchPrefix);
  bool keep = false;                   // leave the keys in place
  std::chrono::milliseconds timeout{0};  // control connection (connect, CONFIG GET, FLUSH, clean-up)
  // Non-empty: the load speaks RESP2 (SET/GET) to this RESP Unix socket or
  // HOST:PORT; the control connection (mode, FLUSH, clean-up) stays native.
  std::string resp;
  std::string ack_log;  // non-empty: write the measured run's acknowledged PUTs there (ack_log.h)
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

// Deletes every key a run over key_space with these keys can have written
// ([keys.Key(0), keys.Key(key_space))), by SCAN pages and one BATCH of
// deletes per page.
kvd::Status DeleteBenchKeys(const std::string& socket_path, std::chrono::milliseconds timeout, const BenchKeys& keys,
                            uint64_t key_space);

// Runs the benchmark and prints the report on out; problems go to err as one
// line. Returns the exit code: 0, 2 (bad options), 3 (server unreachable,
// or any request failed).
int RunBench(const std::string& socket_path, const BenchOptions& options, std::ostream& out, std::ostream& err);

}  // namespace kvctl
