// Counters the serving side keeps for STATUS. Loop thread only.
#pragma once

#include <array>
#include <cstdint>

namespace kvd::daemon {

struct ServerCounters {
  static constexpr size_t kOpcodeSlots = 16;  // indexed by opcode value
  std::array<uint64_t, kOpcodeSlots> ops{};
  uint64_t errors = 0;       // replies with a status other than OK / NotFound
  uint64_t bad_frames = 0;   // connections closed for a protocol error
  uint64_t connections_current = 0;
  uint64_t connections_total = 0;
  uint64_t connections_refused = 0;  // over max_connections
  uint64_t idle_closed = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

}  // namespace kvd::daemon
