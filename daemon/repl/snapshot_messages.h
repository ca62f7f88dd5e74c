// The snapshot transfer's messages (docs/replication.md §4.6), beside the
// other messages of repl_codec.h:
//   SNAPSHOT_BEGIN  u64 snapshot_lsn
//   SNAPSHOT_CHUNK  bytes (1 .. kSnapshotChunkBytes), the next part of the file
//   SNAPSHOT_END    u64 total_bytes, u32 file_crc (CRC32C of every byte, unmasked)
// Size and CRC come last: the primary's child writes the snapshot into a
// pipe as it walks the state, so neither is known before the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd::daemon::repl {

inline constexpr size_t kSnapshotChunkBytes = 1 << 20;

struct SnapshotBegin {
  Lsn snapshot_lsn = 0;
};
struct SnapshotEnd {
  uint64_t total_bytes = 0;
  uint32_t file_crc = 0;
};

std::string EncodeSnapshotBegin(const SnapshotBegin& m);
std::string EncodeSnapshotEnd(const SnapshotEnd& m);
Result<SnapshotBegin> DecodeSnapshotBegin(std::string_view body);
Result<SnapshotEnd> DecodeSnapshotEnd(std::string_view body);
// A chunk's body is its bytes: only the size is checked.
Status CheckSnapshotChunk(std::string_view body);

}  // namespace kvd::daemon::repl
