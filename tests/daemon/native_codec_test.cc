// The native codec behind the Codec seam: wire frames decode into neutral
// Commands (views into the frame), neutral Replies encode into wire frames,
// and the wire protocol's error rules survive the trip.
#include "daemon/serve/native_codec.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "kvd/env.h"
#include "kvd/protocol.h"

namespace kvd::daemon {
namespace {

using proto::Opcode;

std::string Frame(Opcode op, uint64_t id, std::initializer_list<std::string_view> parts = {}, uint16_t flags = 0) {
  std::string out;
  proto::RequestHeader h;
  h.opcode = op;
  h.request_id = id;
  h.flags = flags;
  proto::EncodeRequest(&out, h, parts);
  return out;
}

struct Decoded {
  std::shared_ptr<const std::string> frame;  // what cmd's views point into, for a temporary input
  DecodeResult result;
  Command cmd;
};

// The command's views point into `bytes`: it must outlive them.
Decoded Decode(NativeCodec& c, const std::string& bytes) {
  Decoded d;
  d.result = c.Decode(AsBytes(bytes), 0, &d.cmd);
  return d;
}

// A temporary input is kept alive with the result.
Decoded Decode(NativeCodec& c, std::string&& bytes) {
  auto frame = std::make_shared<const std::string>(std::move(bytes));
  Decoded d = Decode(c, *frame);
  d.frame = std::move(frame);
  return d;
}

std::pair<proto::ReplyHeader, std::string> DecodeReply(const std::string& bytes) {
  auto n = proto::SplitFrame(AsBytes(bytes), 1 << 30, proto::kReplyHeaderBytes);
  REQUIRE(n.has_value());
  REQUIRE(n->has_value());
  REQUIRE(**n == bytes.size());  // exactly one frame
  auto frame = AsBytes(bytes).first(**n);
  auto h = proto::DecodeReplyHeader(frame);
  REQUIRE(h.has_value());
  return {*h, std::string(AsStringView(proto::ReplyPayload(frame)))};
}

TEST_CASE("native codec: requests decode into neutral commands that view the frame") {
  NativeCodec c(NativeCodec::Limits{});
  const std::string put = Frame(Opcode::kPut, 41, {proto::EncodePutPayload("key", "value")}, proto::kFlagDurable);
  auto d = Decode(c, put);
  REQUIRE(d.result.kind == DecodeResult::kCommand);
  CHECK(d.result.consumed == put.size());
  CHECK(d.cmd.ref.op == Op::kPut);
  CHECK(d.cmd.ref.id == 41);
  CHECK(d.cmd.durable);
  CHECK(d.cmd.key == "key");
  CHECK(d.cmd.value == "value");
  CHECK(d.cmd.problem.ok());
  // A view into the frame, not a copy.
  CHECK(d.cmd.value.data() >= put.data());
  CHECK(d.cmd.value.data() < put.data() + put.size());

  const BatchOp ops[] = {{OpType::kPut, "a", "1"}, {OpType::kDel, "b", ""}};
  d = Decode(c, Frame(Opcode::kBatch, 2, {proto::EncodeBatchPayload(ops)}));
  REQUIRE(d.cmd.batch.size() == 2);
  CHECK(d.cmd.ref.op == Op::kBatch);
  CHECK(d.cmd.batch[1].type == OpType::kDel);
  CHECK(d.cmd.batch[1].key == "b");
  CHECK_FALSE(d.cmd.durable);

  d = Decode(c, Frame(Opcode::kScan, 3, {proto::EncodeScanPayload({proto::ScanArgs::kRange, 5, "a", "m", "c"})}));
  CHECK(d.cmd.ref.op == Op::kScan);
  CHECK_FALSE(d.cmd.scan.prefix);
  CHECK(d.cmd.scan.limit == 5);
  CHECK(d.cmd.scan.b == "m");
  CHECK(d.cmd.scan.after == "c");

  d = Decode(c, Frame(Opcode::kConfigSet, 4, {proto::EncodeConfigSetPayload("durability.mode", "batch")}));
  CHECK(d.cmd.ref.op == Op::kConfigSet);
  CHECK(d.cmd.key == "durability.mode");
  CHECK(d.cmd.value == "batch");

  d = Decode(c, Frame(Opcode::kCount, 5, {"pre"}));
  CHECK(d.cmd.ref.op == Op::kCount);
  CHECK(d.cmd.key == "pre");
}

TEST_CASE("native codec: every wire opcode maps to an operation and back") {
  for (uint8_t raw = 0; raw < 32; ++raw) {
    if (!proto::IsKnownOpcode(raw)) continue;
    const auto opcode = static_cast<Opcode>(raw);
    CHECK(ToOpcode(ToOp(opcode)) == opcode);
    std::string name(proto::OpcodeName(opcode));
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    CHECK(OpName(ToOp(opcode)) == name);  // STATUS keeps its counter names
  }
}

TEST_CASE("native codec: partial frames need more bytes; bad frames break the stream") {
  NativeCodec c(NativeCodec::Limits{});
  const std::string ping = Frame(Opcode::kPing, 9);
  for (size_t n = 0; n < ping.size(); ++n) {
    CHECK(Decode(c, ping.substr(0, n)).result.kind == DecodeResult::kNeedMore);
    CHECK_FALSE(c.HasRequest(AsBytes(std::string_view(ping).substr(0, n))));
  }
  CHECK(c.HasRequest(AsBytes(ping)));

  std::string bad = Frame(Opcode::kGet, 77, {"k"});
  bad[4] = 'X';  // magic
  auto d = Decode(c, bad);
  REQUIRE(d.result.kind == DecodeResult::kBroken);
  CHECK(d.result.error.code() == Code::kUnsupported);
  CHECK(d.result.ref.id == 77);
  CHECK(d.result.ref.op == Op::kGet);
  CHECK(c.HasRequest(AsBytes(bad)));

  std::string unknown = Frame(Opcode::kPing, 78);
  unknown[7] = static_cast<char>(200);  // opcode byte
  d = Decode(c, unknown);
  REQUIRE(d.result.kind == DecodeResult::kBroken);
  // The reply echoes the opcode the codec does not know.
  std::string out;
  Reply r;
  r.ref = d.result.ref;
  r.code = d.result.error.code();
  r.text = d.result.error.message();
  c.EncodeReply(r, &out);
  auto [h, payload] = DecodeReply(out);
  CHECK(static_cast<uint8_t>(h.opcode) == 200);
  CHECK(h.request_id == 78);
  CHECK(h.status == Code::kUnsupported);
  CHECK(payload.find("unknown opcode") != std::string::npos);

  NativeCodec small(NativeCodec::Limits{64, 8, 8});
  std::string huge = Frame(Opcode::kPing, 79);
  huge[0] = huge[1] = huge[2] = huge[3] = '\xff';
  d = Decode(small, huge);
  REQUIRE(d.result.kind == DecodeResult::kBroken);
  CHECK(d.result.error.code() == Code::kTooLarge);
  CHECK(d.result.ref.id == 79);
}

TEST_CASE("native codec: a key over its limit fails only its request; a truncated payload is fatal") {
  NativeCodec c(NativeCodec::Limits{proto::kDefaultMaxFrameBytes, 4, 8});
  auto d = Decode(c, Frame(Opcode::kGet, 1, {"toolongkey"}));
  REQUIRE(d.result.kind == DecodeResult::kCommand);
  CHECK(d.cmd.problem.code() == Code::kTooLarge);
  CHECK_FALSE(d.cmd.fatal);
  d = Decode(c, Frame(Opcode::kPut, 2, {proto::EncodePutPayload("k", "a value too long")}));
  CHECK(d.cmd.problem.code() == Code::kTooLarge);
  CHECK_FALSE(d.cmd.fatal);
  d = Decode(c, Frame(Opcode::kPut, 3, {"\x01"}));
  CHECK(d.cmd.problem.code() == Code::kInvalidArgument);
  CHECK(d.cmd.fatal);
  CHECK(d.cmd.ref.id == 3);
}

TEST_CASE("native codec: kFlagMinLsn puts a u64 LSN before a read's payload, and only reads take it") {
  NativeCodec c(NativeCodec::Limits{});
  const std::string lsn = proto::EncodeU64(0x0102030405060708ull);
  auto d = Decode(c, Frame(Opcode::kGet, 1, {lsn, "key"}, proto::kFlagMinLsn));
  REQUIRE(d.result.kind == DecodeResult::kCommand);
  CHECK(d.cmd.ref.op == Op::kGet);
  CHECK(d.cmd.min_lsn == 0x0102030405060708ull);
  CHECK(d.cmd.key == "key");  // the LSN is not part of the key
  CHECK(d.cmd.problem.ok());

  proto::ScanArgs args{proto::ScanArgs::kRange, 7, "a", "m", ""};
  d = Decode(c, Frame(Opcode::kScan, 2, {proto::EncodeU64(9), proto::EncodeScanPayload(args)}, proto::kFlagMinLsn));
  REQUIRE(d.result.kind == DecodeResult::kCommand);
  CHECK(d.cmd.min_lsn == 9);
  CHECK_FALSE(d.cmd.scan.prefix);
  CHECK(d.cmd.scan.limit == 7);
  CHECK(d.cmd.scan.a == "a");
  CHECK(d.cmd.scan.b == "m");

  d = Decode(c, Frame(Opcode::kCount, 3, {proto::EncodeU64(10), "user:"}, proto::kFlagMinLsn | proto::kFlagDurable));
  REQUIRE(d.result.kind == DecodeResult::kCommand);
  CHECK(d.cmd.min_lsn == 10);
  CHECK(d.cmd.key == "user:");
  // An empty prefix after the LSN: COUNT of everything.
  d = Decode(c, Frame(Opcode::kCount, 4, {proto::EncodeU64(11)}, proto::kFlagMinLsn));
  REQUIRE(d.result.kind == DecodeResult::kCommand);
  CHECK(d.cmd.min_lsn == 11);
  CHECK(d.cmd.key.empty());

  // The codec sets every field: a request without the flag, decoded into the
  // same Command, has no minimum LSN left over from the one before.
  Command cmd;
  const std::string with = Frame(Opcode::kGet, 5, {proto::EncodeU64(12), "k"}, proto::kFlagMinLsn);
  REQUIRE(c.Decode(AsBytes(with), 0, &cmd).kind == DecodeResult::kCommand);
  CHECK(cmd.min_lsn == 12);
  const std::string without = Frame(Opcode::kGet, 6, {"k"});
  REQUIRE(c.Decode(AsBytes(without), 0, &cmd).kind == DecodeResult::kCommand);
  CHECK(cmd.min_lsn == 0);
  CHECK(cmd.key == "k");
}

TEST_CASE("native codec: kFlagMinLsn on a write or without its 8 bytes breaks the stream") {
  NativeCodec c(NativeCodec::Limits{});
  auto d = Decode(c, Frame(Opcode::kPut, 8, {proto::EncodeU64(1), proto::EncodePutPayload("k", "v")}, proto::kFlagMinLsn));
  REQUIRE(d.result.kind == DecodeResult::kBroken);
  CHECK(d.result.error.code() == Code::kInvalidArgument);
  CHECK(d.result.error.message().find("only on GET, SCAN and COUNT") != std::string::npos);
  CHECK(d.result.ref.id == 8);
  CHECK(d.result.ref.op == Op::kPut);
  for (Opcode op : {Opcode::kPing, Opcode::kFlush, Opcode::kStatus, Opcode::kDel}) {
    CAPTURE(static_cast<int>(op));
    d = Decode(c, Frame(op, 9, {proto::EncodeU64(1)}, proto::kFlagMinLsn));
    CHECK(d.result.kind == DecodeResult::kBroken);
  }
  d = Decode(c, Frame(Opcode::kGet, 10, {"short"}, proto::kFlagMinLsn));  // 5 bytes: no room for the LSN
  REQUIRE(d.result.kind == DecodeResult::kBroken);
  CHECK(d.result.error.code() == Code::kInvalidArgument);
  CHECK(d.result.ref.id == 10);
  // An unknown flag bit is still refused as before.
  d = Decode(c, Frame(Opcode::kGet, 11, {"k"}, 4));
  REQUIRE(d.result.kind == DecodeResult::kBroken);
  CHECK(d.result.error.code() == Code::kUnsupported);
}

TEST_CASE("native codec: neutral replies encode as the wire protocol's frames") {
  NativeCodec c(NativeCodec::Limits{});
  auto d = Decode(c, Frame(Opcode::kGet, 12, {"k"}));
  Reply r;
  r.ref = d.cmd.ref;
  r.code = Code::kOk;
  r.durable_lsn = 5;
  r.text = "value";
  std::string out;
  c.EncodeReply(r, &out);
  auto [h, payload] = DecodeReply(out);
  CHECK(h.opcode == Opcode::kGet);
  CHECK(h.request_id == 12);
  CHECK(h.durable_lsn == 5);
  CHECK(payload == "value");

  d = Decode(c, Frame(Opcode::kCount, 13));
  Reply count;
  count.ref = d.cmd.ref;
  count.count = 123456789;
  out.clear();
  c.EncodeReply(count, &out);
  auto [ch, cp] = DecodeReply(out);
  CHECK(ch.opcode == Opcode::kCount);
  CHECK(proto::DecodeU64(AsBytes(cp)).value() == 123456789);

  d = Decode(c, Frame(Opcode::kScan, 14, {proto::EncodeScanPayload({})}));
  ScanResult items;
  items.items = {{"a", "1"}, {"bb", ""}};
  items.more = true;
  Reply scan;
  scan.ref = d.cmd.ref;
  scan.scan = &items;
  out = "prefix";  // encoding appends
  c.EncodeReply(scan, &out);
  auto [sh, sp] = DecodeReply(out.substr(6));
  CHECK(sh.opcode == Opcode::kScan);
  auto decoded = proto::DecodeScanReply(AsBytes(sp));
  REQUIRE(decoded.has_value());
  REQUIRE(decoded->items.size() == 2);
  CHECK(decoded->items[1].first == "bb");
  CHECK(decoded->more);

  d = Decode(c, Frame(Opcode::kPut, 15, {proto::EncodePutPayload("k", "v")}));
  Reply put;
  put.ref = d.cmd.ref;
  put.lsn = 99;
  out.clear();
  c.EncodeReply(put, &out);
  auto [ph, pp] = DecodeReply(out);
  CHECK(ph.opcode == Opcode::kPut);
  CHECK(ph.lsn == 99);
  CHECK(pp.empty());
}

TEST_CASE("native protocol: the refusal is one error frame") {
  NativeProtocol p(NativeCodec::Limits{});
  std::string out;
  p.EncodeRefusal(Code::kBusy, "too many connections", &out);
  auto [h, payload] = DecodeReply(out);
  CHECK(h.status == Code::kBusy);
  CHECK(payload == "too many connections");
  CHECK(p.name() == "native");
  CHECK(p.NewCodec() != nullptr);
}

}  // namespace
}  // namespace kvd::daemon
