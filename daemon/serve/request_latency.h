// RequestLatency: how long requests took, by operation, from the read that
// delivered the request to the socket write that sent its reply (metrics).
//
// Protocol-neutral: the Session records it for every front end (native,
// RESP) by the neutral Op. Owned by the server; sessions hold a pointer
// (Session::Limits::latency, nullptr = not measured, at no cost).
//
// Threading: loop thread only. The metrics endpoint gets copies the loop
// thread makes (daemon/metrics/).
#pragma once

#include <array>
#include <cstdint>

#include "kvd/log2_histogram.h"
#include "serve/command.h"

namespace kvd::daemon {

// Microseconds: 1 us .. 8.4 s, then +Inf.
using RequestLatencyHistogram = Log2Histogram<0, 23>;

struct RequestLatency {
  std::array<RequestLatencyHistogram, kOpCount> by_op{};
};

}  // namespace kvd::daemon
