// The kvd wire protocol: frame layout, opcodes and the codec.
//
// docs/wire_protocol.md is the normative spec; this header is its C++ face.
// All integers are little-endian. Every frame:
//
//   u32 length            bytes that follow (header + payload); <= max_frame_bytes
//   request header, 16 bytes:
//     u16 magic = 0x564B  (bytes 'K' 'V')
//     u8  version = 1
//     u8  opcode
//     u16 flags           bit 0: kFlagDurable (acknowledge only once durable, any mode)
//                         bit 1: kFlagMinLsn (GET, SCAN, COUNT: the payload starts with a
//                                u64 minimum LSN; answered once the node applied it)
//     u16 reserved = 0
//     u64 request_id      chosen by the client, echoed in the reply
//   reply header, 32 bytes:
//     u16 magic, u8 version, u8 opcode (echo), u16 status (kvd::Code), u16 flags = 0,
//     u64 request_id, u64 durable_lsn (at reply time), u64 lsn (the write's own LSN,
//     the snapshot LSN for SNAPSHOT, the durable LSN for FLUSH; otherwise 0)
//   payload               per opcode, below; error replies carry a UTF-8 message
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd::proto {

inline constexpr uint16_t kMagic = 0x564B;
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kLengthBytes = 4;
inline constexpr size_t kRequestHeaderBytes = 16;
inline constexpr size_t kReplyHeaderBytes = 32;
inline constexpr uint32_t kDefaultMaxFrameBytes = 32 * 1024 * 1024;
inline constexpr uint16_t kFlagDurable = 1;
// Read-your-writes (docs/wire_protocol.md section 6): on GET, SCAN and COUNT
// only; the payload starts with a u64 LSN the node must have applied first.
inline constexpr uint16_t kFlagMinLsn = 2;
inline constexpr uint16_t kKnownRequestFlags = kFlagDurable | kFlagMinLsn;
inline constexpr uint32_t kMaxScanLimit = 10000;

enum class Opcode : uint8_t {
  kPing = 1,       // payload: empty.            reply: empty
  kGet = 2,        // payload: key (all bytes).  reply: value (all bytes) | kNotFound
  kPut = 3,        // payload: u32 key_len, key, value (rest).  reply: empty, lsn set
  kDel = 4,        // payload: key.              reply: kOk (existed) | kNotFound (absent), lsn set
  kBatch = 5,      // payload: u32 count, count x (u8 op(1 put, 2 del), u32 key_len, key,
                   //          put only: u32 value_len, value).  reply: empty, lsn set
  kScan = 6,       // payload: u8 kind (0 prefix, 1 range), u32 limit (0 = server default),
                   //          u32 len, a (prefix | range start, inclusive),
                   //          u32 len, b (range end, exclusive; empty = unbounded),
                   //          u32 len, after (continuation: only keys > after; empty = none)
                   // reply: u32 count, count x (u32 key_len, key, u32 value_len, value),
                   //        u8 more (1: call again with after = last key returned)
  kCount = 7,      // payload: prefix (may be empty = all keys).  reply: u64 count
  kFlush = 8,      // payload: empty. reply once everything appended before it is durable
  kSnapshot = 9,   // payload: empty. reply once a snapshot is installed; lsn = its LSN
  kStatus = 10,    // payload: empty. reply: a JSON object (UTF-8)
  kConfigGet = 11, // payload: key name ("durability.batch_size") or empty = all.
                   // reply: JSON object {name: value}
  kConfigSet = 12, // payload: u32 name_len, name, value text (as in kvd.toml: "64", "batch", "10ms")
                   // reply: empty | kInvalidArgument with a message
  kDelRange = 13,  // payload: u8 kind (0 prefix, 1 range), u32 len, a (prefix | range start, inclusive),
                   //          u32 len, b (range end, exclusive; empty = unbounded; prefix: empty)
                   // reply: u64 keys deleted, lsn set. One WAL record: atomic.
  kBackupBegin = 14,  // payload: empty. reply once a snapshot for it is installed: lsn = its LSN,
                      // payload u64 backup_id, u64 size (bytes), u64 entries
  kBackupRead = 15,   // payload: u64 backup_id, u64 offset, u32 max_bytes.
                      // reply: up to max_bytes of the file from offset (empty: at its end)
  kBackupEnd = 16,    // payload: u64 backup_id. reply: empty (the server lets the file go)
  kPromote = 17,      // payload: u8 force, optional u64 epoch (absent or 0: the server chooses).
                      // reply: u64 epoch begun; lsn = the last LSN before it (docs/replication.md §7)
  kReplicate = 18,    // payload: HOST:PORT of the primary to follow (all bytes). reply: empty
};
inline constexpr Opcode kLastOpcode = Opcode::kReplicate;
// BACKUP_READ never returns more than this in one reply.
inline constexpr uint32_t kMaxBackupChunk = 1024 * 1024;

std::string_view OpcodeName(Opcode op);
bool IsKnownOpcode(uint8_t op);
bool IsWriteOpcode(Opcode op);  // PUT, DEL, BATCH, DEL_RANGE
bool AcceptsMinLsn(Opcode op);  // GET, SCAN, COUNT: the reads kFlagMinLsn may carry

struct RequestHeader {
  Opcode opcode = Opcode::kPing;
  uint16_t flags = 0;
  uint64_t request_id = 0;
};

struct ReplyHeader {
  Opcode opcode = Opcode::kPing;
  Code status = Code::kOk;
  uint64_t request_id = 0;
  Lsn durable_lsn = 0;
  Lsn lsn = 0;
};

// A decoded request; payload points into the frame buffer.
struct Request {
  RequestHeader header;
  std::span<const std::byte> payload;
};

// Framing of a byte stream. Given the bytes received so far, returns:
//   nullopt               need more bytes (fewer than 4, or an incomplete frame)
//   n                     the first n bytes are one whole frame (length field included)
//   kTooLarge error       length > max_frame_bytes: checked before anything is allocated
//   kInvalidArgument      length too small to hold a header
//   kUnsupported          bad magic or version, as soon as those 3 bytes arrived
Result<std::optional<size_t>> SplitFrame(std::span<const std::byte> buf, uint32_t max_frame_bytes,
                                         size_t header_bytes = kRequestHeaderBytes);

// Decodes a whole frame (as returned by SplitFrame). Errors: bad magic/version
// (kUnsupported), unknown opcode (kUnsupported). The request id is filled in
// *partial whenever the header was long enough to read it, so the error reply can carry it.
Result<Request> DecodeRequest(std::span<const std::byte> frame, RequestHeader* partial = nullptr);
// The same decoding for the common case, without building a Status: true and
// *out filled exactly as DecodeRequest would when the frame is a well-formed
// request; false for anything DecodeRequest would refuse (call it to learn why).
// The serving path calls this once per request.
bool DecodeRequestFast(std::span<const std::byte> frame, Request* out);
Result<ReplyHeader> DecodeReplyHeader(std::span<const std::byte> frame);
// The payload of a reply frame (after the 32-byte header).
std::span<const std::byte> ReplyPayload(std::span<const std::byte> frame);

// Appends one encoded frame to out. payload_parts are concatenated (so
// callers can send key and value without copying them together first).
void EncodeRequest(std::string* out, const RequestHeader& h,
                   std::initializer_list<std::string_view> payload_parts = {});
void EncodeReply(std::string* out, const ReplyHeader& h,
                 std::initializer_list<std::string_view> payload_parts = {});

// ---- payload codecs: requests --------------------------------------------
struct PutArgs {
  std::string_view key;
  std::string_view value;
};
struct ScanArgs {
  enum Kind : uint8_t { kPrefix = 0, kRange = 1 } kind = kPrefix;
  uint32_t limit = 0;
  std::string_view a;      // prefix, or range start
  std::string_view b;      // range end (exclusive), empty = unbounded
  std::string_view after;  // continuation, empty = from the start
};
struct ConfigSetArgs {
  std::string_view name;
  std::string_view value;
};

// Decoders validate every length against the payload (kInvalidArgument on a
// truncated or trailing-garbage payload) and the key/value limits (kTooLarge).
Result<PutArgs> DecodePut(std::span<const std::byte> payload, uint32_t max_key, uint32_t max_value);
Result<std::string_view> DecodeKey(std::span<const std::byte> payload, uint32_t max_key);
// ops views point into payload; ops is cleared first.
Status DecodeBatch(std::span<const std::byte> payload, uint32_t max_key, uint32_t max_value,
                   std::vector<BatchOp>* ops);
Result<ScanArgs> DecodeScan(std::span<const std::byte> payload);
Result<ConfigSetArgs> DecodeConfigSet(std::span<const std::byte> payload);
// Bounds over kMaxKeyBytes, a bad kind or a prefix with an end: kInvalidArgument.
Result<KeyRange> DecodeDelRange(std::span<const std::byte> payload);
struct BackupReadArgs {
  uint64_t backup_id = 0;
  uint64_t offset = 0;
  uint32_t max_bytes = 0;
};
Result<BackupReadArgs> DecodeBackupRead(std::span<const std::byte> payload);
struct PromoteArgs {
  bool force = false;  // promote even if this node may lack acknowledged writes
  uint64_t epoch = 0;  // 0: the node picks the highest epoch it has seen + 1
};
// 1 byte (force 0/1), or 9 bytes (force, u64 epoch); anything else kInvalidArgument.
Result<PromoteArgs> DecodePromote(std::span<const std::byte> payload);
std::string EncodePromotePayload(const PromoteArgs& args);

std::string EncodePutPayload(std::string_view key, std::string_view value);
std::string EncodeBatchPayload(std::span<const BatchOp> ops);
std::string EncodeScanPayload(const ScanArgs& args);
std::string EncodeConfigSetPayload(std::string_view name, std::string_view value);
std::string EncodeDelRangePayload(const KeyRange& range);
std::string EncodeBackupReadPayload(const BackupReadArgs& args);

// ---- payload codecs: replies ---------------------------------------------
struct ScanReply {
  std::vector<std::pair<std::string, std::string>> items;
  bool more = false;
};
// Incremental scan-reply builder used by the server: reserve, add, finish.
class ScanReplyBuilder {
 public:
  void Add(std::string_view key, std::string_view value);
  // Returns the payload; `more` as in the spec.
  std::string Finish(bool more);
  size_t bytes() const { return body_.size(); }
  uint32_t count() const { return count_; }

 private:
  std::string body_;
  uint32_t count_ = 0;
};
Result<ScanReply> DecodeScanReply(std::span<const std::byte> payload);
// BACKUP_BEGIN's reply payload.
struct BackupBeginReply {
  uint64_t backup_id = 0;
  uint64_t size = 0;
  uint64_t entries = 0;
};
std::string EncodeBackupBeginReply(const BackupBeginReply& r);
Result<BackupBeginReply> DecodeBackupBeginReply(std::span<const std::byte> payload);
std::string EncodeU64(uint64_t v);
Result<uint64_t> DecodeU64(std::span<const std::byte> payload);

// kFlagMinLsn: the u64 in front of a read's own payload. Sets *min_lsn and
// returns the rest (the payload the opcode defines). Fewer than 8 bytes:
// kInvalidArgument. The request's encoder puts EncodeU64(min_lsn) first.
Result<std::span<const std::byte>> SplitMinLsn(std::span<const std::byte> payload, Lsn* min_lsn);

}  // namespace kvd::proto
