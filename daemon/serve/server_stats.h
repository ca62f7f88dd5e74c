// Counters the serving side keeps for STATUS. Loop thread only.
#pragma once

#include <array>
#include <cstdint>

#include "serve/command.h"

namespace kvd::daemon {

struct ServerCounters {
  std::array<uint64_t, kOpCount> ops{};  // requests by operation, whatever the protocol
  uint64_t errors = 0;       // replies with a status other than OK / NotFound
  uint64_t bad_frames = 0;   // connections closed for a protocol error
  // Writes the engine refused or failed (failed fdatasync, disk full, I/O error).
  uint64_t writes_refused = 0;
  uint64_t connections_current = 0;
  uint64_t connections_total = 0;
  uint64_t connections_refused = 0;  // over max_connections
  uint64_t idle_closed = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  // Reads with a minimum LSN (kFlagMinLsn) that had to wait for it, and
  // those whose wait ended before it was applied (kTimedOut).
  uint64_t min_lsn_waits = 0;
  uint64_t min_lsn_timeouts = 0;
};

}  // namespace kvd::daemon
