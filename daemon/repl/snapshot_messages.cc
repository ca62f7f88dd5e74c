#include "repl/snapshot_messages.h"

namespace kvd::daemon::repl {
namespace {

void Put(std::string* s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t Get(std::string_view b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + static_cast<size_t>(i)]);
  return v;
}

}  // namespace

std::string EncodeSnapshotBegin(const SnapshotBegin& m) {
  std::string s;
  Put(&s, m.snapshot_lsn, 8);
  return s;
}

std::string EncodeSnapshotEnd(const SnapshotEnd& m) {
  std::string s;
  Put(&s, m.total_bytes, 8);
  Put(&s, m.file_crc, 4);
  return s;
}

Result<SnapshotBegin> DecodeSnapshotBegin(std::string_view body) {
  if (body.size() != 8) {
    return Status::InvalidArgument("bad SNAPSHOT_BEGIN message: " + std::to_string(body.size()) + " bytes, not 8");
  }
  return SnapshotBegin{Get(body, 0, 8)};
}

Result<SnapshotEnd> DecodeSnapshotEnd(std::string_view body) {
  if (body.size() != 12) {
    return Status::InvalidArgument("bad SNAPSHOT_END message: " + std::to_string(body.size()) + " bytes, not 12");
  }
  return SnapshotEnd{Get(body, 0, 8), static_cast<uint32_t>(Get(body, 8, 4))};
}

Status CheckSnapshotChunk(std::string_view body) {
  if (body.empty() || body.size() > kSnapshotChunkBytes) {
    return Status::InvalidArgument("bad SNAPSHOT_CHUNK message: " + std::to_string(body.size()) + " bytes");
  }
  return Status::Ok();
}

}  // namespace kvd::daemon::repl
