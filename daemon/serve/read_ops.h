// The read-only requests evaluated against the State: SCAN (GET and COUNT
// are one State call each). Pure functions of (State, arguments), so they
// are tested without a server.
#pragma once

#include <cstddef>
#include <string>

#include "kvd/protocol.h"
#include "kvd/state.h"
#include "kvd/status.h"
#include "serve/command.h"

namespace kvd::daemon {

// Server default when a SCAN asks for limit 0.
inline constexpr uint32_t kDefaultScanLimit = 1000;

// Collects a SCAN's items into *result (views into state). Stops at
// spec.limit (0 = the default, capped at proto::kMaxScanLimit) items or once
// the native reply payload would pass max_bytes (at least one item is
// returned if any matches), setting `more`.
void CollectScan(const State& state, const ScanSpec& spec, size_t max_bytes, ScanResult* result);

// The same, encoded as the native SCAN reply payload into *payload.
void ScanState(const State& state, const proto::ScanArgs& args, size_t max_bytes,
               std::string* payload);

}  // namespace kvd::daemon
