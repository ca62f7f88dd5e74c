// The wire codec (docs/wire_protocol.md): frame splitting, request and reply
// headers, opcode names, and the key/value payloads (PUT, BATCH, SCAN,
// DEL_RANGE, CONFIG_SET, BACKUP_*) with their replies. The node-level
// payloads (min-LSN, PROMOTE) are in protocol_node.cc, the byte helpers both
// use in protocol_coding.h. Every decoder treats its input as hostile:
// lengths are compared against the bytes that remain (never added to an
// offset first, so nothing overflows), nothing is read past the end, and a
// payload must be consumed exactly (trailing bytes are an error).
#include "kvd/protocol.h"

#include <cstdio>
#include <cstring>
#include <string>

#include "proto/protocol_coding.h"

namespace kvd::proto {

using coding::PutFixed;
using coding::PutLengthPrefixed;
using coding::Reader;
using coding::Trailing;
using coding::Truncated;

namespace {

Status CheckKey(size_t len, uint32_t max_key) {
  if (len > max_key) {
    return Status::TooLarge("key of " + std::to_string(len) + " bytes exceeds the limit of " +
                            std::to_string(max_key));
  }
  return Status();
}
Status CheckValue(size_t len, uint32_t max_value) {
  if (len > max_value) {
    return Status::TooLarge("value of " + std::to_string(len) + " bytes exceeds the limit of " +
                            std::to_string(max_value));
  }
  return Status();
}

// Reads "u32 len, bytes" for a key, checking the limit before the bytes.
Status ReadKey(Reader* r, uint32_t max_key, std::string_view what, std::string_view* key) {
  uint32_t len = 0;
  if (!r->U32(&len)) return Truncated(what);
  KVD_RETURN_IF_ERROR(CheckKey(len, max_key));
  if (!r->Bytes(len, key)) return Truncated(what);
  return Status();
}

struct FrameHead {
  uint32_t length = 0;
  uint16_t magic = 0;
  uint8_t version = 0;
  uint8_t opcode = 0;
};

// Reads the length field and the first 4 header bytes common to requests and
// replies; the frame must hold at least a whole header.
Status ReadFrameHead(Reader* r, std::span<const std::byte> frame, size_t header_bytes,
                     FrameHead* h) {
  if (frame.size() < kLengthBytes + header_bytes) {
    return Status::InvalidArgument("frame of " + std::to_string(frame.size()) +
                                   " bytes is shorter than its header");
  }
  r->U32(&h->length);
  r->U16(&h->magic);
  r->U8(&h->version);
  r->U8(&h->opcode);
  return Status();
}

Status CheckLength(const FrameHead& h, std::span<const std::byte> frame) {
  if (h.length != frame.size() - kLengthBytes) {
    return Status::InvalidArgument("frame length field " + std::to_string(h.length) +
                                   " does not match the frame's " +
                                   std::to_string(frame.size() - kLengthBytes) + " bytes");
  }
  return Status();
}

Status CheckMagicVersion(const FrameHead& h) {
  if (h.magic != kMagic) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "bad magic 0x%04x (expected 0x%04x)", h.magic, kMagic);
    return Status::Unsupported(buf);
  }
  if (h.version != kVersion) {
    return Status::Unsupported("unsupported protocol version " + std::to_string(h.version) +
                               " (this side speaks " + std::to_string(kVersion) + ")");
  }
  return Status();
}

}  // namespace

std::string_view OpcodeName(Opcode op) {
  switch (op) {
    case Opcode::kPing: return "PING";
    case Opcode::kGet: return "GET";
    case Opcode::kPut: return "PUT";
    case Opcode::kDel: return "DEL";
    case Opcode::kBatch: return "BATCH";
    case Opcode::kScan: return "SCAN";
    case Opcode::kCount: return "COUNT";
    case Opcode::kFlush: return "FLUSH";
    case Opcode::kSnapshot: return "SNAPSHOT";
    case Opcode::kStatus: return "STATUS";
    case Opcode::kConfigGet: return "CONFIG_GET";
    case Opcode::kConfigSet: return "CONFIG_SET";
    case Opcode::kDelRange: return "DEL_RANGE";
    case Opcode::kBackupBegin: return "BACKUP_BEGIN";
    case Opcode::kBackupRead: return "BACKUP_READ";
    case Opcode::kBackupEnd: return "BACKUP_END";
    case Opcode::kPromote: return "PROMOTE";
    case Opcode::kReplicate: return "REPLICATE";
  }
  return "UNKNOWN";
}

bool IsKnownOpcode(uint8_t op) {
  return op >= static_cast<uint8_t>(Opcode::kPing) && op <= static_cast<uint8_t>(kLastOpcode);
}

bool IsWriteOpcode(Opcode op) {
  return op == Opcode::kPut || op == Opcode::kDel || op == Opcode::kBatch || op == Opcode::kDelRange;
}

bool AcceptsMinLsn(Opcode op) { return op == Opcode::kGet || op == Opcode::kScan || op == Opcode::kCount; }

Result<std::optional<size_t>> SplitFrame(std::span<const std::byte> buf, uint32_t max_frame_bytes,
                                         size_t header_bytes) {
  if (buf.size() < kLengthBytes) return std::optional<size_t>();
  uint32_t length = 0;
  Reader r(buf);
  r.U32(&length);
  // Decided from the 4-byte prefix alone, so a hostile length never causes
  // an allocation: the caller only buffers frames that passed this check.
  if (length > max_frame_bytes) {
    return Status::TooLarge("frame of " + std::to_string(length) + " bytes exceeds max_frame_bytes " +
                            std::to_string(max_frame_bytes));
  }
  if (length < header_bytes) {
    return Status::InvalidArgument("frame length " + std::to_string(length) +
                                   " is too small for a " + std::to_string(header_bytes) +
                                   "-byte header");
  }
  // Magic and version as soon as they arrive: bytes that are no frame but
  // whose first four happen to read as a small length are refused at once,
  // not after waiting for (and buffering) up to max_frame_bytes of them.
  if (buf.size() >= kLengthBytes + 3) {
    FrameHead h;
    Reader head(buf.subspan(kLengthBytes));
    head.U16(&h.magic);
    head.U8(&h.version);
    KVD_RETURN_IF_ERROR(CheckMagicVersion(h));
  }
  const size_t total = kLengthBytes + static_cast<size_t>(length);
  if (buf.size() < total) return std::optional<size_t>();
  return std::optional<size_t>(total);
}

Result<Request> DecodeRequest(std::span<const std::byte> frame, RequestHeader* partial) {
  Reader r(frame);
  FrameHead fh;
  KVD_RETURN_IF_ERROR(ReadFrameHead(&r, frame, kRequestHeaderBytes, &fh));
  uint16_t flags = 0, reserved = 0;
  uint64_t id = 0;
  r.U16(&flags);
  r.U16(&reserved);
  r.U64(&id);
  if (partial != nullptr) {
    // An unknown opcode is still echoed (Opcode has a fixed underlying type).
    partial->opcode = static_cast<Opcode>(fh.opcode);
    partial->flags = flags;
    partial->request_id = id;
  }
  KVD_RETURN_IF_ERROR(CheckLength(fh, frame));
  KVD_RETURN_IF_ERROR(CheckMagicVersion(fh));
  if (!IsKnownOpcode(fh.opcode)) {
    return Status::Unsupported("unknown opcode " + std::to_string(fh.opcode));
  }
  if ((flags & ~kKnownRequestFlags) != 0) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "unknown request flags 0x%04x", flags);
    return Status::Unsupported(buf);
  }
  if (reserved != 0) return Status::InvalidArgument("reserved header field is not 0");
  Request req;
  req.header.opcode = static_cast<Opcode>(fh.opcode);
  req.header.flags = flags;
  req.header.request_id = id;
  req.payload = frame.subspan(kLengthBytes + kRequestHeaderBytes);
  return req;
}

bool DecodeRequestFast(std::span<const std::byte> frame, Request* out) {
  if (frame.size() < kLengthBytes + kRequestHeaderBytes) return false;
  auto le = [&](size_t at, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | static_cast<uint8_t>(frame[at + i]);
    return v;
  };
  const uint64_t length = le(0, 4);
  const uint8_t opcode = static_cast<uint8_t>(frame[kLengthBytes + 3]);
  const auto flags = static_cast<uint16_t>(le(kLengthBytes + 4, 2));
  if (length != frame.size() - kLengthBytes || le(kLengthBytes, 2) != kMagic ||
      static_cast<uint8_t>(frame[kLengthBytes + 2]) != kVersion || !IsKnownOpcode(opcode) ||
      (flags & ~kKnownRequestFlags) != 0 || le(kLengthBytes + 6, 2) != 0) {
    return false;
  }
  out->header.opcode = static_cast<Opcode>(opcode);
  out->header.flags = flags;
  out->header.request_id = le(kLengthBytes + 8, 8);
  out->payload = frame.subspan(kLengthBytes + kRequestHeaderBytes);
  return true;
}

Result<ReplyHeader> DecodeReplyHeader(std::span<const std::byte> frame) {
  Reader r(frame);
  FrameHead fh;
  KVD_RETURN_IF_ERROR(ReadFrameHead(&r, frame, kReplyHeaderBytes, &fh));
  KVD_RETURN_IF_ERROR(CheckLength(fh, frame));
  KVD_RETURN_IF_ERROR(CheckMagicVersion(fh));
  uint16_t status = 0, flags = 0;
  ReplyHeader h;
  r.U16(&status);
  r.U16(&flags);
  r.U64(&h.request_id);
  r.U64(&h.durable_lsn);
  r.U64(&h.lsn);
  // Opcode and status are taken as sent: a reply may echo an opcode this
  // side does not know (the error reply to it), and newer servers may append
  // status codes (CodeName() prints those as "Unknown").
  h.opcode = static_cast<Opcode>(fh.opcode);
  h.status = static_cast<Code>(status);
  return h;
}

std::span<const std::byte> ReplyPayload(std::span<const std::byte> frame) {
  if (frame.size() < kLengthBytes + kReplyHeaderBytes) return {};
  return frame.subspan(kLengthBytes + kReplyHeaderBytes);
}

namespace {
// Appends the length prefix (header + payload) and reserves room for the whole
// frame, so the header fields and payload that follow never reallocate.
// Writes straight into *out: the reply path must not allocate per request.
void BeginFrame(std::string* out, size_t header_bytes, std::initializer_list<std::string_view> parts) {
  size_t payload = 0;
  for (std::string_view p : parts) payload += p.size();
  out->reserve(out->size() + kLengthBytes + header_bytes + payload);
  PutFixed<uint32_t>(out, static_cast<uint32_t>(header_bytes + payload));
}
void AppendParts(std::string* out, std::initializer_list<std::string_view> parts) {
  for (std::string_view p : parts) out->append(p);
}
}  // namespace

void EncodeRequest(std::string* out, const RequestHeader& h,
                   std::initializer_list<std::string_view> payload_parts) {
  BeginFrame(out, kRequestHeaderBytes, payload_parts);
  PutFixed<uint16_t>(out, kMagic);
  PutFixed<uint8_t>(out, kVersion);
  PutFixed<uint8_t>(out, static_cast<uint8_t>(h.opcode));
  PutFixed<uint16_t>(out, h.flags);
  PutFixed<uint16_t>(out, 0);
  PutFixed<uint64_t>(out, h.request_id);
  AppendParts(out, payload_parts);
}

void EncodeReply(std::string* out, const ReplyHeader& h,
                 std::initializer_list<std::string_view> payload_parts) {
  BeginFrame(out, kReplyHeaderBytes, payload_parts);
  PutFixed<uint16_t>(out, kMagic);
  PutFixed<uint8_t>(out, kVersion);
  PutFixed<uint8_t>(out, static_cast<uint8_t>(h.opcode));
  PutFixed<uint16_t>(out, static_cast<uint16_t>(h.status));
  PutFixed<uint16_t>(out, 0);
  PutFixed<uint64_t>(out, h.request_id);
  PutFixed<uint64_t>(out, h.durable_lsn);
  PutFixed<uint64_t>(out, h.lsn);
  AppendParts(out, payload_parts);
}

// ---- request payloads -------------------------------------------------------

Result<PutArgs> DecodePut(std::span<const std::byte> payload, uint32_t max_key, uint32_t max_value) {
  Reader r(payload);
  PutArgs args;
  KVD_RETURN_IF_ERROR(ReadKey(&r, max_key, "PUT", &args.key));
  args.value = r.Rest();
  KVD_RETURN_IF_ERROR(CheckValue(args.value.size(), max_value));
  return args;
}

Result<std::string_view> DecodeKey(std::span<const std::byte> payload, uint32_t max_key) {
  KVD_RETURN_IF_ERROR(CheckKey(payload.size(), max_key));
  return std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size());
}

namespace {
// The rest of one BATCH op after its type byte.
Status ReadBatchOpBody(Reader* r, uint32_t max_key, uint32_t max_value, BatchOp* b) {
  KVD_RETURN_IF_ERROR(ReadKey(r, max_key, "BATCH", &b->key));
  if (b->type != OpType::kPut) return Status();
  uint32_t vlen = 0;
  if (!r->U32(&vlen)) return Truncated("BATCH");
  KVD_RETURN_IF_ERROR(CheckValue(vlen, max_value));
  if (!r->Bytes(vlen, &b->value)) return Truncated("BATCH");
  return Status();
}
}  // namespace

Status DecodeBatch(std::span<const std::byte> payload, uint32_t max_key, uint32_t max_value,
                   std::vector<BatchOp>* ops) {
  ops->clear();
  Reader r(payload);
  uint32_t count = 0;
  if (!r.U32(&count)) return Truncated("BATCH");
  // Every op takes at least 5 bytes (op + key length): a count that cannot
  // fit is rejected before reserving memory for it.
  if (count > r.remaining() / 5) return Truncated("BATCH");
  ops->reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    uint8_t op = 0;
    if (!r.U8(&op)) {
      ops->clear();
      return Truncated("BATCH");
    }
    if (op != static_cast<uint8_t>(OpType::kPut) && op != static_cast<uint8_t>(OpType::kDel)) {
      ops->clear();
      return Status::InvalidArgument("BATCH: op " + std::to_string(i) + " has unknown type " +
                                     std::to_string(op));
    }
    BatchOp b{static_cast<OpType>(op), {}, {}};
    Status s = ReadBatchOpBody(&r, max_key, max_value, &b);
    if (!s.ok()) {
      ops->clear();
      return s;
    }
    ops->push_back(b);
  }
  if (!r.done()) {
    ops->clear();
    return Trailing("BATCH");
  }
  return Status();
}

Result<ScanArgs> DecodeScan(std::span<const std::byte> payload) {
  Reader r(payload);
  ScanArgs args;
  uint8_t kind = 0;
  if (!r.U8(&kind) || !r.U32(&args.limit)) return Truncated("SCAN");
  if (kind != ScanArgs::kPrefix && kind != ScanArgs::kRange) {
    return Status::InvalidArgument("SCAN: unknown kind " + std::to_string(kind));
  }
  args.kind = static_cast<ScanArgs::Kind>(kind);
  // Bounds are compared with keys, never stored: one longer than any key
  // can be is a malformed request rather than a write over a limit.
  for (std::string_view* field : {&args.a, &args.b, &args.after}) {
    uint32_t len = 0;
    if (!r.U32(&len) || !r.Bytes(len, field)) return Truncated("SCAN");
    if (len > kMaxKeyBytes) return Status::InvalidArgument("SCAN: bound longer than the key limit");
  }
  if (!r.done()) return Trailing("SCAN");
  if (args.kind == ScanArgs::kPrefix && !args.b.empty()) {
    return Status::InvalidArgument("SCAN: a prefix scan takes no range end");
  }
  if (args.limit > kMaxScanLimit) args.limit = kMaxScanLimit;
  return args;
}

Result<ConfigSetArgs> DecodeConfigSet(std::span<const std::byte> payload) {
  Reader r(payload);
  ConfigSetArgs args;
  uint32_t len = 0;
  if (!r.U32(&len) || !r.Bytes(len, &args.name)) return Truncated("CONFIG_SET");
  if (args.name.empty()) return Status::InvalidArgument("CONFIG_SET: empty key name");
  args.value = r.Rest();
  return args;
}

Result<KeyRange> DecodeDelRange(std::span<const std::byte> payload) {
  Reader r(payload);
  KeyRange range;
  uint8_t kind = 0;
  if (!r.U8(&kind)) return Truncated("DEL_RANGE");
  if (kind > 1) return Status::InvalidArgument("DEL_RANGE: unknown kind " + std::to_string(kind));
  range.prefix = kind == 0;
  for (std::string_view* field : {&range.a, &range.b}) {
    uint32_t len = 0;
    if (!r.U32(&len) || !r.Bytes(len, field)) return Truncated("DEL_RANGE");
    if (len > kMaxKeyBytes) return Status::InvalidArgument("DEL_RANGE: bound longer than the key limit");
  }
  if (!r.done()) return Trailing("DEL_RANGE");
  if (range.prefix && !range.b.empty()) return Status::InvalidArgument("DEL_RANGE: a prefix delete takes no range end");
  return range;
}

Result<BackupReadArgs> DecodeBackupRead(std::span<const std::byte> payload) {
  Reader r(payload);
  BackupReadArgs args;
  if (!r.U64(&args.backup_id) || !r.U64(&args.offset) || !r.U32(&args.max_bytes)) return Truncated("BACKUP_READ");
  if (!r.done()) return Trailing("BACKUP_READ");
  return args;
}

std::string EncodeDelRangePayload(const KeyRange& range) {
  std::string out;
  PutFixed<uint8_t>(&out, range.prefix ? 0 : 1);
  PutLengthPrefixed(&out, range.a);
  PutLengthPrefixed(&out, range.prefix ? std::string_view() : range.b);
  return out;
}

std::string EncodeBackupReadPayload(const BackupReadArgs& args) {
  std::string out;
  PutFixed<uint64_t>(&out, args.backup_id);
  PutFixed<uint64_t>(&out, args.offset);
  PutFixed<uint32_t>(&out, args.max_bytes);
  return out;
}

std::string EncodePutPayload(std::string_view key, std::string_view value) {
  std::string out;
  out.reserve(4 + key.size() + value.size());
  PutLengthPrefixed(&out, key);
  out.append(value);
  return out;
}

std::string EncodeBatchPayload(std::span<const BatchOp> ops) {
  std::string out;
  size_t n = 4;
  for (const BatchOp& op : ops) n += 9 + op.key.size() + op.value.size();
  out.reserve(n);
  PutFixed<uint32_t>(&out, static_cast<uint32_t>(ops.size()));
  for (const BatchOp& op : ops) {
    PutFixed<uint8_t>(&out, static_cast<uint8_t>(op.type));
    PutLengthPrefixed(&out, op.key);
    if (op.type == OpType::kPut) PutLengthPrefixed(&out, op.value);
  }
  return out;
}

std::string EncodeScanPayload(const ScanArgs& args) {
  std::string out;
  PutFixed<uint8_t>(&out, static_cast<uint8_t>(args.kind));
  PutFixed<uint32_t>(&out, args.limit);
  PutLengthPrefixed(&out, args.a);
  PutLengthPrefixed(&out, args.b);
  PutLengthPrefixed(&out, args.after);
  return out;
}

std::string EncodeConfigSetPayload(std::string_view name, std::string_view value) {
  std::string out;
  PutLengthPrefixed(&out, name);
  out.append(value);
  return out;
}

// ---- reply payloads ---------------------------------------------------------

void ScanReplyBuilder::Add(std::string_view key, std::string_view value) {
  if (body_.empty()) body_.assign(4, '\0');  // count, patched by Finish
  PutLengthPrefixed(&body_, key);
  PutLengthPrefixed(&body_, value);
  count_++;
}

std::string ScanReplyBuilder::Finish(bool more) {
  if (body_.empty()) body_.assign(4, '\0');
  for (size_t i = 0; i < 4; i++) body_[i] = static_cast<char>((count_ >> (8 * i)) & 0xff);
  body_.push_back(more ? '\1' : '\0');
  std::string out = std::move(body_);
  body_.clear();
  count_ = 0;
  return out;
}

Result<ScanReply> DecodeScanReply(std::span<const std::byte> payload) {
  Reader r(payload);
  uint32_t count = 0;
  if (!r.U32(&count)) return Truncated("SCAN reply");
  // Each item takes at least 8 bytes (two lengths).
  if (count > r.remaining() / 8) return Truncated("SCAN reply");
  ScanReply reply;
  reply.items.reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    uint32_t klen = 0, vlen = 0;
    std::string_view k, v;
    if (!r.U32(&klen) || !r.Bytes(klen, &k) || !r.U32(&vlen) || !r.Bytes(vlen, &v)) {
      return Truncated("SCAN reply");
    }
    reply.items.emplace_back(std::string(k), std::string(v));
  }
  uint8_t more = 0;
  if (!r.U8(&more)) return Truncated("SCAN reply");
  if (more > 1) return Status::InvalidArgument("SCAN reply: bad 'more' byte " + std::to_string(more));
  if (!r.done()) return Trailing("SCAN reply");
  reply.more = more == 1;
  return reply;
}

std::string EncodeBackupBeginReply(const BackupBeginReply& b) {
  std::string out;
  PutFixed<uint64_t>(&out, b.backup_id);
  PutFixed<uint64_t>(&out, b.size);
  PutFixed<uint64_t>(&out, b.entries);
  return out;
}

Result<BackupBeginReply> DecodeBackupBeginReply(std::span<const std::byte> payload) {
  Reader r(payload);
  BackupBeginReply b;
  if (!r.U64(&b.backup_id) || !r.U64(&b.size) || !r.U64(&b.entries)) return Truncated("BACKUP_BEGIN reply");
  if (!r.done()) return Trailing("BACKUP_BEGIN reply");
  return b;
}

std::string EncodeU64(uint64_t v) {
  std::string out;
  PutFixed<uint64_t>(&out, v);
  return out;
}

Result<uint64_t> DecodeU64(std::span<const std::byte> payload) {
  if (payload.size() != 8) {
    return Status::InvalidArgument("expected an 8-byte integer, got " + std::to_string(payload.size()) +
                                   " bytes");
  }
  Reader r(payload);
  uint64_t v = 0;
  r.U64(&v);
  return v;
}

}  // namespace kvd::proto
