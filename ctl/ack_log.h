// `kvctl bench --ack-log FILE`: when each acknowledged PUT was acknowledged.
//
// One sample per OK reply to a PUT: the write's LSN and the reply's arrival
// time on CLOCK_MONOTONIC (the clock Python's time.monotonic_ns() reads, so
// a script can line the samples up with its own observations, e.g. when a
// replica's applied LSN covered each write: bench/compare_repl.py). The
// number of samples is bounded so a long run cannot eat the memory: past the
// bound, samples are counted as dropped instead.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kvd/status.h"

namespace kvctl {

struct AckSample {
  uint64_t lsn = 0;
  uint64_t ack_ns = 0;  // CLOCK_MONOTONIC, when the reply was read
};

// 4 Mi samples (64 MiB): minutes of a replicated run at tens of thousands of
// writes a second.
inline constexpr uint64_t kMaxAckSamples = uint64_t{1} << 22;

// Text, one sample per line: "<lsn> <ack_ns>\n", after a '#' header line
// that names the clock and says how many samples were dropped. Sorted by LSN.
// A measurement artefact, not data: written plainly (no fsync), and any write
// error is reported.
kvd::Status WriteAckLog(const std::string& path, std::vector<AckSample> samples, uint64_t dropped);

}  // namespace kvctl
