// The node-level payloads of the wire codec (docs/wire_protocol.md): what
// concerns a server's role and replication position rather than the keys,
// namely kFlagMinLsn's u64 in front of a read (SplitMinLsn) and PROMOTE's
// force/epoch payload. Framing, opcodes and the key/value payloads are in
// protocol.cc; both share the helpers of protocol_coding.h and the same
// rule: input is hostile, lengths are checked before anything is read.
#include <string>

#include "kvd/protocol.h"
#include "proto/protocol_coding.h"

namespace kvd::proto {

using coding::PutFixed;
using coding::Reader;

Result<std::span<const std::byte>> SplitMinLsn(std::span<const std::byte> payload, Lsn* min_lsn) {
  if (payload.size() < 8) {
    return Status::InvalidArgument("kFlagMinLsn: the payload must start with a u64 LSN, got " +
                                   std::to_string(payload.size()) + " bytes");
  }
  Reader r(payload.first(8));
  uint64_t v = 0;
  r.U64(&v);
  *min_lsn = v;
  return payload.subspan(8);
}

Result<PromoteArgs> DecodePromote(std::span<const std::byte> payload) {
  if (payload.size() != 1 && payload.size() != 9) {
    return Status::InvalidArgument("PROMOTE payload of " + std::to_string(payload.size()) +
                                   " bytes (expected u8 force, optional u64 epoch)");
  }
  const auto force = static_cast<uint8_t>(payload[0]);
  if (force > 1) return Status::InvalidArgument("PROMOTE force must be 0 or 1, got " + std::to_string(force));
  PromoteArgs a;
  a.force = force == 1;
  if (payload.size() == 9) {
    Reader r(payload.subspan(1));
    r.U64(&a.epoch);
  }
  return a;
}

std::string EncodePromotePayload(const PromoteArgs& args) {
  std::string out(1, args.force ? '\1' : '\0');
  if (args.epoch != 0) PutFixed<uint64_t>(&out, args.epoch);
  return out;
}

}  // namespace kvd::proto
