// The replication protocol's frames and messages (docs/replication.md §3-4):
// pure encoding and decoding, no sockets, so tests can feed it any bytes.
//
// Frame (little-endian): u32 length (bytes after it), u8 type, u64 epoch,
// body, u32 masked CRC32C of [type .. end of body]. Decoding refuses, with
// a message that says why, a length out of range, a CRC mismatch, an unknown
// type and a body that does not decode exactly (short or trailing bytes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kvd/epoch_history.h"
#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd::daemon::repl {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kFrameOverhead = 4 + 1 + 8 + 4;  // length, type, epoch, crc
inline constexpr uint32_t kMinFrameLength = 1 + 8 + 4;  // the length field's value for an empty body
// A WAL message holds at least one whole record (up to 64 MiB of payload).
inline constexpr uint32_t kMaxFrameLength = kMaxRecordPayload + 1024;
// WAL messages are cut near this size unless one record is larger.
inline constexpr size_t kWalChunkBytes = 256 * 1024;

enum class MsgType : uint8_t {
  kHello = 1,
  kWelcome = 2,
  kWal = 3,
  kAck = 4,
  kHeartbeat = 5,
  kSnapshotBegin = 6,  // bodies: repl/snapshot_messages.h
  kSnapshotChunk = 7,
  kSnapshotEnd = 8,
  kError = 9,
};
std::string_view MsgTypeName(MsgType t);

struct Frame {
  MsgType type = MsgType::kError;
  Epoch epoch = 0;
  std::string_view body;  // a view into the decoded buffer
};

// Appends one frame whose body is the concatenation of `parts`.
void AppendFrame(std::string* out, MsgType type, Epoch epoch, std::initializer_list<std::string_view> parts);

// Decodes the frame at the start of buf. nullopt: not all of it is there yet
// (*consumed = 0). A frame: *consumed is its size. An error: the stream is
// unusable (kCorruption for a bad CRC, kInvalidArgument otherwise).
Result<std::optional<Frame>> DecodeFrame(std::string_view buf, size_t* consumed);

struct Hello {
  uint32_t protocol_version = kProtocolVersion;
  std::string node_name;
  Lsn last_lsn = 0;
  Lsn durable_lsn = 0;
  EpochHistory history;
};

enum class StartMode : uint8_t { kStream = 1, kSnapshot = 2, kTruncate = 3 };

struct Welcome {
  std::string primary_name;
  StartMode start = StartMode::kStream;
  Lsn start_lsn = 0;
  Lsn fork_lsn = 0;
  EpochHistory history;
};

struct WalHeader {
  Lsn first_lsn = 0;
  Lsn last_lsn = 0;
  Lsn primary_durable_lsn = 0;
  uint64_t sent_at_us = 0;
};
struct WalMessage {
  WalHeader header;
  std::string_view records;  // whole v2 records, a view into the frame's body
};

struct Ack {
  Lsn written_lsn = 0;
  Lsn durable_lsn = 0;
  Lsn applied_lsn = 0;
  uint64_t echo_sent_at_us = 0;
};

struct Heartbeat {
  Lsn last_lsn = 0;
  Lsn durable_lsn = 0;
  uint64_t sent_at_us = 0;
};

struct ErrorMessage {
  Code code = Code::kInternal;
  std::string reason;
};

std::string EncodeHello(const Hello& m);
std::string EncodeWelcome(const Welcome& m);
std::string EncodeWalHeader(const WalHeader& h);  // the body is this, then the records
std::string EncodeAck(const Ack& m);
std::string EncodeHeartbeat(const Heartbeat& m);
std::string EncodeError(const ErrorMessage& m);

Result<Hello> DecodeHello(std::string_view body);
Result<Welcome> DecodeWelcome(std::string_view body);
Result<WalMessage> DecodeWal(std::string_view body);
Result<Ack> DecodeAck(std::string_view body);
Result<Heartbeat> DecodeHeartbeat(std::string_view body);
Result<ErrorMessage> DecodeError(std::string_view body);

}  // namespace kvd::daemon::repl
