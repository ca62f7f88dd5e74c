// The read-only requests evaluated against the State: GET, SCAN, COUNT.
// Pure functions of (State, payload), so they are tested without a server.
#pragma once

#include <cstddef>
#include <string>

#include "kvd/protocol.h"
#include "kvd/state.h"
#include "kvd/status.h"

namespace kvd::daemon {

// Server default when a SCAN asks for limit 0.
inline constexpr uint32_t kDefaultScanLimit = 1000;

// Builds a SCAN reply payload into *payload. Stops at args.limit (0 = the
// default, capped at proto::kMaxScanLimit) items or once the payload passes
// max_bytes (at least one item is returned if any matches), setting `more`.
void ScanState(const State& state, const proto::ScanArgs& args, size_t max_bytes,
               std::string* payload);

}  // namespace kvd::daemon
