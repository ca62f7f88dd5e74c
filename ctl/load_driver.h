// The load generator behind `kvctl bench`: many pipelined connections
// driven by a few epoll threads.
//
// Threading: RunLoad() connects every client on the calling thread, then
// starts `threads` workers; worker t owns clients t, t+T, t+2T, ... with
// their sockets, buffers and histogram (nothing shared but a few relaxed
// atomics for the progress line and the stop flag). The histograms are
// merged after the workers are joined.
//
// Per connection, no heap allocation per request: requests are appended
// from pre-encoded templates (request_template.h) to a reused output
// buffer, replies are read in chunks of up to 64 KiB into a reused input
// buffer, and the send times of the requests in flight live in a fixed ring
// (replies come back in request order).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ack_log.h"
#include "histogram.h"
#include "keyspace.h"
#include "kvd/status.h"

namespace kvctl {

struct LoadSpec {
  uint32_t clients = 1;
  uint32_t threads = 1;
  uint32_t pipeline = 1;
  uint32_t value_size = 100;
  uint64_t key_space = 1'000'000;
  uint32_t put_weight = 1;  // PUT:GET ratio
  uint32_t get_weight = 0;
  // Exactly one of: a total request count, or a duration.
  uint64_t requests = 0;
  std::chrono::nanoseconds duration{0};
  uint64_t seed = 1;
  bool durable_flag = false;  // set kFlagDurable on PUTs (native only)
  // Speak RESP2 (SET key value / GET key) instead of the native protocol;
  // the endpoint is then a RESP Unix socket or HOST:PORT. Everything else
  // (workload, pipelining, histograms) is the same code path.
  bool resp = false;
  std::string key_prefix = std::string(kDefaultBenchPrefix);  // keys: prefix + 12 digits (keyspace.h)
  // Prefill: PUT every key of the key space once (keys split across the
  // clients); requests/duration/ratio are ignored.
  bool prefill = false;
  // Record (LSN, reply time) of every OK PUT, at most this many (0 = off);
  // split evenly over the threads.
  uint64_t max_ack_samples = 0;
};

struct LoadResult {
  uint64_t requests = 0;  // replies received
  uint64_t errors = 0;    // error replies (RESP: -ERR ...), plus requests lost with a connection
  uint64_t puts = 0;
  uint64_t gets = 0;
  uint64_t get_misses = 0;
  double seconds = 0;     // first request sent to last reply received
  // Largest lsn - durable_lsn (native only: RESP replies carry no LSN) of a PUT's OK reply: how many writes, at most,
  // were acknowledged but not yet durable when kvd answered (batch/none
  // mode's loss window, as the clients saw it; 0 in sync mode).
  uint64_t max_ack_lag = 0;
  Histogram latency_us;   // send -> reply, per request
  std::string first_error;
  std::vector<AckSample> acks;  // with LoadSpec::max_ack_samples, in no particular order
  uint64_t acks_dropped = 0;    // OK PUTs past the bound
};

struct LoadProgress {
  uint64_t completed = 0;
  uint64_t errors = 0;
  double elapsed_s = 0;
};

// Runs the load against `endpoint` (the native Unix socket, or with
// spec.resp a RESP Unix socket or HOST:PORT). Fails only when a client cannot connect; everything after
// that is counted in the result. `stop` (may be null) ends the run early;
// `on_progress` (may be empty) is called about once a second from the
// calling thread.
kvd::Result<LoadResult> RunLoad(const std::string& endpoint, const LoadSpec& spec,
                                const std::atomic<bool>* stop,
                                const std::function<void(const LoadProgress&)>& on_progress);

}  // namespace kvctl
