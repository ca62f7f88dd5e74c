// PromoteCheck: may this replica become the primary without losing a write
// the old primary acknowledged? (docs/replication.md §7). Pure: the caller
// gathers what the WAL receiver knows; tests feed it any facts.
//
// A replica can only judge from what it heard. It refuses (unless forced)
// when
//   - it never heard from a primary since it started (it knows nothing of
//     what was acknowledged),
//   - its durable LSN is behind the durable LSN the primary last reported
//     (WAL messages and heartbeats carry it): those writes may have been
//     acknowledged and this node does not have them,
//   - the link is still up but silent for longer than kPromoteSilence (a
//     stalled or stopped primary may still be acknowledging writes that
//     never reach us).
// In asynchronous mode (sync_replicas = 0) even a passing check cannot prove
// that nothing acknowledged is missing: the primary may have acknowledged
// writes after its last report. That is the lag §8 puts in the table.
#pragma once

#include <chrono>

#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd::daemon::repl {

inline constexpr std::chrono::milliseconds kPromoteSilence{1000};

struct PromoteFacts {
  bool heard_primary = false;  // any frame from a primary since start
  bool link_up = false;        // connected to it now (handshake or streaming)
  std::chrono::milliseconds silent_for{0};  // since the last frame heard
  Lsn own_durable = 0;
  Lsn primary_durable = 0;  // as the primary last reported it
};

// OK, or kInvalidArgument saying why (and that --force overrides it).
Status CheckPromoteSafe(const PromoteFacts& f);

}  // namespace kvd::daemon::repl
