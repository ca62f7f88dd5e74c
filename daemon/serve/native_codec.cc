#include "serve/native_codec.h"

#include "kvd/env.h"

namespace kvd::daemon {
namespace {

using proto::Opcode;

uint64_t LoadU64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void PutU32At(std::string* out, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) (*out)[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

void AppendU32(std::string* out, uint32_t v) {
  char b[4];
  for (size_t i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out->append(b, 4);
}

RequestRef RefFor(uint64_t id, uint8_t raw_opcode) {
  RequestRef ref;
  ref.id = id;
  ref.tag = raw_opcode;
  if (proto::IsKnownOpcode(raw_opcode)) ref.op = ToOp(static_cast<Opcode>(raw_opcode));
  return ref;
}

void SetProblem(const Status& st, Command* cmd) {
  cmd->problem = st;
  // A key or value over its limit is the client's data, not a broken frame.
  cmd->fatal = st.code() != Code::kTooLarge;
}

}  // namespace

proto::Opcode ToOpcode(Op op) { return static_cast<Opcode>(static_cast<uint8_t>(op) + 1); }
Op ToOp(proto::Opcode opcode) { return static_cast<Op>(static_cast<uint8_t>(opcode) - 1); }
static_assert(static_cast<uint8_t>(proto::kLastOpcode) == kOpCount, "Op and proto::Opcode list the same operations");

DecodeResult NativeCodec::Decode(std::span<const std::byte> data, uint64_t /*seq*/, Command* cmd) {
  DecodeResult r;
  auto split = proto::SplitFrame(data, limits_.max_frame_bytes);
  if (!split.has_value()) {
    // Too large or too short to hold a header. The id is readable if the
    // header arrived, so the client can tell which request failed; the
    // opcode is echoed only when known (else PING).
    r.kind = DecodeResult::kBroken;
    r.error = split.error();
    r.ref.tag = static_cast<uint8_t>(Opcode::kPing);
    if (data.size() >= proto::kLengthBytes + proto::kRequestHeaderBytes) {
      const auto raw = static_cast<uint8_t>(data[proto::kLengthBytes + 3]);
      r.ref = RefFor(LoadU64(data.data() + proto::kLengthBytes + 8),
                     proto::IsKnownOpcode(raw) ? raw : static_cast<uint8_t>(Opcode::kPing));
    }
    return r;
  }
  if (!split->has_value()) return r;  // need more bytes
  const size_t frame_len = **split;
  auto frame = data.first(frame_len);
  proto::Request req;
  if (!proto::DecodeRequestFast(frame, &req)) {
    // Not a well-formed request: the full decoder says why.
    proto::RequestHeader partial;
    auto slow = proto::DecodeRequest(frame, &partial);
    r.kind = DecodeResult::kBroken;
    r.error = slow.has_value() ? Status::Internal("request header decoders disagree") : slow.error();
    r.ref = RefFor(partial.request_id, static_cast<uint8_t>(partial.opcode));
    return r;
  }
  // Field by field rather than `*cmd = Command{}`: this runs once per request,
  // and a fresh Command costs a Status (and its string) built and destroyed.
  cmd->key = {};
  cmd->value = {};
  cmd->batch = {};
  cmd->scan = ScanSpec{};
  cmd->args = {};
  cmd->range = KeyRange{};
  cmd->backup_id = 0;
  cmd->offset = 0;
  cmd->max_bytes = 0;
  cmd->force = false;
  cmd->epoch = 0;
  if (!cmd->problem.ok()) cmd->problem = Status::Ok();
  cmd->fatal = false;
  cmd->ref = RefFor(req.header.request_id, static_cast<uint8_t>(req.header.opcode));
  cmd->durable = (req.header.flags & proto::kFlagDurable) != 0;
  cmd->min_lsn = 0;
  std::span<const std::byte> payload = req.payload;
  if ((req.header.flags & proto::kFlagMinLsn) != 0) {
    // Only reads can wait for an LSN; on anything else the flag is a
    // protocol error like an unknown one (the stream cannot be trusted).
    auto rest = proto::AcceptsMinLsn(req.header.opcode)
                    ? proto::SplitMinLsn(payload, &cmd->min_lsn)
                    : Result<std::span<const std::byte>>(
                          Status::InvalidArgument("kFlagMinLsn is valid only on GET, SCAN and COUNT"));
    if (!rest.has_value()) {
      r.kind = DecodeResult::kBroken;
      r.error = rest.error();
      r.ref = cmd->ref;
      return r;
    }
    payload = *rest;
  }
  DecodePayload(req.header.opcode, payload, cmd);
  r.kind = DecodeResult::kCommand;
  r.consumed = frame_len;
  return r;
}

void NativeCodec::DecodePayload(Opcode opcode, std::span<const std::byte> payload, Command* cmd) {
  switch (opcode) {
    case Opcode::kGet:
    case Opcode::kDel: {
      auto k = proto::DecodeKey(payload, limits_.max_key_bytes);
      if (!k.has_value()) return SetProblem(k.error(), cmd);
      cmd->key = *k;
      return;
    }
    case Opcode::kPut: {
      auto a = proto::DecodePut(payload, limits_.max_key_bytes, limits_.max_value_bytes);
      if (!a.has_value()) return SetProblem(a.error(), cmd);
      cmd->key = a->key;
      cmd->value = a->value;
      return;
    }
    case Opcode::kBatch: {
      Status st = proto::DecodeBatch(payload, limits_.max_key_bytes, limits_.max_value_bytes, batch_);
      if (!st.ok()) return SetProblem(st, cmd);
      cmd->batch = *batch_;
      return;
    }
    case Opcode::kScan: {
      auto a = proto::DecodeScan(payload);
      if (!a.has_value()) return SetProblem(a.error(), cmd);
      cmd->scan = ScanSpec{a->kind == proto::ScanArgs::kPrefix, a->limit, a->a, a->b, a->after};
      return;
    }
    case Opcode::kCount:
    case Opcode::kConfigGet:
      cmd->key = AsStringView(payload);
      return;
    case Opcode::kConfigSet: {
      auto a = proto::DecodeConfigSet(payload);
      if (!a.has_value()) return SetProblem(a.error(), cmd);
      cmd->key = a->name;
      cmd->value = a->value;
      return;
    }
    case Opcode::kDelRange: {
      auto a = proto::DecodeDelRange(payload);
      if (!a.has_value()) return SetProblem(a.error(), cmd);
      cmd->range = *a;
      return;
    }
    case Opcode::kBackupRead: {
      auto a = proto::DecodeBackupRead(payload);
      if (!a.has_value()) return SetProblem(a.error(), cmd);
      cmd->backup_id = a->backup_id;
      cmd->offset = a->offset;
      cmd->max_bytes = a->max_bytes;
      return;
    }
    case Opcode::kBackupEnd: {
      auto id = proto::DecodeU64(payload);
      if (!id.has_value()) return SetProblem(id.error(), cmd);
      cmd->backup_id = *id;
      return;
    }
    case Opcode::kPromote: {
      auto a = proto::DecodePromote(payload);
      if (!a.has_value()) return SetProblem(a.error(), cmd);
      cmd->force = a->force;
      cmd->epoch = a->epoch;
      return;
    }
    case Opcode::kReplicate:
      cmd->key = AsStringView(payload);
      return;
    case Opcode::kPing:
    case Opcode::kFlush:
    case Opcode::kBackupBegin:
    case Opcode::kSnapshot:
    case Opcode::kStatus:
      return;  // no payload to read
  }
}

bool NativeCodec::HasRequest(std::span<const std::byte> data) const {
  auto split = proto::SplitFrame(data, limits_.max_frame_bytes);
  return !split.has_value() || split->has_value();
}

void NativeCodec::EncodeReply(const Reply& reply, std::string* out) {
  proto::ReplyHeader h;
  h.opcode = static_cast<Opcode>(reply.ref.tag);
  h.status = reply.code;
  h.request_id = reply.ref.id;
  h.durable_lsn = reply.durable_lsn;
  h.lsn = reply.lsn;
  if (reply.scan != nullptr) {
    // Straight into *out: header first, then the items, then the length.
    const size_t start = out->size();
    proto::EncodeReply(out, h);
    AppendScanPayload(*reply.scan, out);
    PutU32At(out, start, static_cast<uint32_t>(out->size() - start - proto::kLengthBytes));
    return;
  }
  if (reply.ref.op == Op::kCount && reply.code == Code::kOk) {
    char b[8];
    for (size_t i = 0; i < 8; ++i) b[i] = static_cast<char>((reply.count >> (8 * i)) & 0xff);
    proto::EncodeReply(out, h, {std::string_view(b, 8)});
    return;
  }
  proto::EncodeReply(out, h, {reply.text});
}

void AppendScanPayload(const ScanResult& r, std::string* out) {
  size_t bytes = 4 + 1;
  for (const auto& [k, v] : r.items) bytes += 8 + k.size() + v.size();
  out->reserve(out->size() + bytes);
  AppendU32(out, static_cast<uint32_t>(r.items.size()));
  for (const auto& [k, v] : r.items) {
    AppendU32(out, static_cast<uint32_t>(k.size()));
    out->append(k);
    AppendU32(out, static_cast<uint32_t>(v.size()));
    out->append(v);
  }
  out->push_back(r.more ? '\1' : '\0');
}

void NativeProtocol::EncodeRefusal(Code code, std::string_view message, std::string* out) const {
  proto::ReplyHeader h;
  h.status = code;
  proto::EncodeReply(out, h, {message});
}

}  // namespace kvd::daemon
