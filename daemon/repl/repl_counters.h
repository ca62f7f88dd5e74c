// ReplCounters: what the primary's WAL senders count over this run, for the
// metrics endpoint (docs/metrics.md). Owned by the ReplPrimary; each
// WalSender adds to it (loop thread only).
#pragma once

#include <cstdint>

namespace kvd::daemon::repl {

struct ReplCounters {
  uint64_t connects = 0;           // replicas that completed the handshake
  uint64_t disconnects = 0;        // links of such replicas that closed, for any reason
  uint64_t catchups_started = 0;   // a replica began catching up from the WAL on disk
  uint64_t catchups_finished = 0;  // ... and reached the in-memory feed (streaming)
};

}  // namespace kvd::daemon::repl
