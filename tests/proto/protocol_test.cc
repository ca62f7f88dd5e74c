#include "kvd/protocol.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace kvd::proto {
namespace {

std::span<const std::byte> B(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
std::string_view S(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::string Frame(Opcode op, uint16_t flags, uint64_t id, std::string_view payload) {
  std::string out;
  EncodeRequest(&out, RequestHeader{op, flags, id}, {payload});
  return out;
}

}  // namespace

TEST_CASE("request frame round trip, with the payload in parts") {
  std::string out;
  EncodeRequest(&out, RequestHeader{Opcode::kPut, kFlagDurable, 0x0102030405060708ull}, {"ab", "", "cde"});
  REQUIRE(out.size() == kLengthBytes + kRequestHeaderBytes + 5);
  // Little-endian length and magic bytes 'K' 'V'.
  CHECK(out.substr(0, 4) == std::string("\x15\0\0\0", 4));
  CHECK(out.substr(4, 2) == "KV");
  auto split = SplitFrame(B(out), kDefaultMaxFrameBytes);
  REQUIRE(split);
  REQUIRE(split->has_value());
  CHECK(**split == out.size());
  auto req = DecodeRequest(B(out));
  REQUIRE(req);
  CHECK(req->header.opcode == Opcode::kPut);
  CHECK(req->header.flags == kFlagDurable);
  CHECK(req->header.request_id == 0x0102030405060708ull);
  CHECK(S(req->payload) == "abcde");
}

TEST_CASE("DecodeRequestFast accepts exactly what DecodeRequest accepts, with the same result") {
  // Every known opcode and flag mix, then every byte of the header (and the
  // length prefix) set to every value: the two decoders agree on each frame.
  std::vector<std::string> frames;
  for (uint8_t op = 1; op <= static_cast<uint8_t>(Opcode::kConfigSet); ++op) {
    frames.push_back(Frame(static_cast<Opcode>(op), op % 2 ? kFlagDurable : 0, 0x1122334455667788ull * op, "pay"));
  }
  size_t accepted = 0, refused = 0;
  auto agree = [&](const std::string& f) {
    Request fast;
    const bool ok = DecodeRequestFast(B(f), &fast);
    auto slow = DecodeRequest(B(f));
    REQUIRE(ok == slow.has_value());
    if (!ok) {
      ++refused;
      return;
    }
    ++accepted;
    CHECK(fast.header.opcode == slow->header.opcode);
    CHECK(fast.header.flags == slow->header.flags);
    CHECK(fast.header.request_id == slow->header.request_id);
    CHECK(fast.payload.data() == slow->payload.data());
    CHECK(fast.payload.size() == slow->payload.size());
  };
  for (const std::string& good : frames) {
    agree(good);
    for (size_t at = 0; at < kLengthBytes + kRequestHeaderBytes; ++at) {
      for (int v = 0; v < 256; ++v) {
        std::string f = good;
        f[at] = static_cast<char>(v);
        agree(f);
      }
    }
    agree(good.substr(0, kLengthBytes + kRequestHeaderBytes - 1));  // too short for a header
  }
  CHECK(accepted > frames.size());  // the ids and payload-free bytes vary freely
  CHECK(refused > 1000);
}

TEST_CASE("reply frame round trip") {
  std::string out;
  ReplyHeader h{Opcode::kDel, Code::kNotFound, 77, 1000, 1001};
  EncodeReply(&out, h, {"msg"});
  auto split = SplitFrame(B(out), kDefaultMaxFrameBytes, kReplyHeaderBytes);
  REQUIRE(split);
  REQUIRE(split->value_or(0) == out.size());
  auto d = DecodeReplyHeader(B(out));
  REQUIRE(d);
  CHECK(d->opcode == Opcode::kDel);
  CHECK(d->status == Code::kNotFound);
  CHECK(d->request_id == 77);
  CHECK(d->durable_lsn == 1000);
  CHECK(d->lsn == 1001);
  CHECK(S(ReplyPayload(B(out))) == "msg");
}

TEST_CASE("SplitFrame byte by byte over a stream of frames") {
  std::string stream;
  std::vector<size_t> sizes;
  for (int i = 0; i < 5; i++) {
    size_t before = stream.size();
    EncodeRequest(&stream, RequestHeader{Opcode::kGet, 0, static_cast<uint64_t>(i)},
                  {std::string(static_cast<size_t>(i * 3), 'k')});
    sizes.push_back(stream.size() - before);
  }
  // Feed one byte at a time: a frame is reported exactly when its last byte arrived.
  std::string buf;
  size_t frames = 0;
  for (char c : stream) {
    buf.push_back(c);
    auto r = SplitFrame(B(buf), kDefaultMaxFrameBytes);
    REQUIRE(r);
    if (!r->has_value()) {
      CHECK(buf.size() < sizes[frames]);
      continue;
    }
    CHECK(**r == sizes[frames]);
    auto req = DecodeRequest(B(buf).first(**r));
    REQUIRE(req);
    CHECK(req->header.request_id == frames);
    buf.erase(0, **r);
    frames++;
  }
  CHECK(frames == 5);
  CHECK(buf.empty());
}

TEST_CASE("bytes that are no frame are refused once magic and version arrived, not when the length is") {
  // A small, plausible length, then garbage: refused after 7 bytes (the
  // length claims 1000), for requests and replies alike.
  const std::string garbage = std::string("\xe8\x03\0\0", 4) + "\x13\x37\x01" + std::string(100, 'g');
  for (size_t header : {kRequestHeaderBytes, kReplyHeaderBytes}) {
    for (size_t n = 4; n <= garbage.size(); ++n) {
      auto r = SplitFrame(B(garbage.substr(0, n)), kDefaultMaxFrameBytes, header);
      if (n < kLengthBytes + 3) {
        REQUIRE(r);
        CHECK_FALSE(r->has_value());
        continue;
      }
      REQUIRE_FALSE(r);
      CHECK(r.error().code() == Code::kUnsupported);
      CHECK(r.error().message().find("bad magic") != std::string::npos);
    }
  }
  // The right magic with another version: refused as early.
  std::string frame;
  EncodeRequest(&frame, RequestHeader{Opcode::kGet, 0, 1}, {"k"});
  frame[kLengthBytes + 2] = 9;
  auto r = SplitFrame(B(frame.substr(0, kLengthBytes + 3)), kDefaultMaxFrameBytes);
  REQUIRE_FALSE(r);
  CHECK(r.error().message().find("unsupported protocol version 9") != std::string::npos);
}

TEST_CASE("an oversized length is rejected from the 4-byte prefix alone") {
  // Only the length field has arrived: nothing about the frame is buffered yet.
  const std::string four_gib("\xff\xff\xff\xff", 4);
  auto r = SplitFrame(B(four_gib), kDefaultMaxFrameBytes);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Code::kTooLarge);
  const std::string just_over = Frame(Opcode::kGet, 0, 1, std::string(100, 'x'));
  auto r2 = SplitFrame(B(just_over).first(4), kRequestHeaderBytes + 99);
  REQUIRE_FALSE(r2);
  CHECK(r2.error().code() == Code::kTooLarge);
  auto r3 = SplitFrame(B(just_over).first(4), kRequestHeaderBytes + 100);
  REQUIRE(r3);
  CHECK_FALSE(r3->has_value());  // exactly at the limit: fine, wait for the rest
}

TEST_CASE("a length too small for a header is invalid; fewer than 4 bytes need more") {
  const std::string small("\x0f\0\0\0", 4);
  auto r = SplitFrame(B(small), kDefaultMaxFrameBytes);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Code::kInvalidArgument);
  auto r2 = SplitFrame(B(std::string_view("\x10\0\0", 3)), kDefaultMaxFrameBytes);
  REQUIRE(r2);
  CHECK_FALSE(r2->has_value());
  // A reply needs 32 header bytes.
  const std::string req_len("\x10\0\0\0", 4);
  CHECK_FALSE(SplitFrame(B(req_len), kDefaultMaxFrameBytes, kReplyHeaderBytes));
}

TEST_CASE("bad magic, version, opcode, flags and reserved bits") {
  std::string good = Frame(Opcode::kPing, 0, 99, "");
  REQUIRE(DecodeRequest(B(good)));

  std::string bad = good;
  bad[4] = 'X';
  RequestHeader partial;
  auto r = DecodeRequest(B(bad), &partial);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Code::kUnsupported);
  CHECK(partial.request_id == 99);  // so the error reply can carry it

  bad = good;
  bad[6] = 2;
  r = DecodeRequest(B(bad));
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Code::kUnsupported);

  for (uint8_t op : {0, 19, 99, 255}) {
    bad = good;
    bad[7] = static_cast<char>(op);
    partial = {};
    r = DecodeRequest(B(bad), &partial);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Code::kUnsupported);
    CHECK(static_cast<uint8_t>(partial.opcode) == op);
    CHECK(partial.request_id == 99);
    CHECK_FALSE(IsKnownOpcode(op));
  }

  bad = good;
  bad[8] = 4;  // unknown flag bit (bit 1 is kFlagMinLsn)
  CHECK(DecodeRequest(B(bad)).error().code() == Code::kUnsupported);
  bad[8] = 0;
  bad[9] = 0x80;  // the top bit
  CHECK(DecodeRequest(B(bad)).error().code() == Code::kUnsupported);
  bad = good;
  bad[8] = static_cast<char>(kFlagMinLsn);  // known: the header decodes (the payload is the codec's business)
  CHECK(DecodeRequest(B(bad)).has_value());
  bad = good;
  bad[10] = 1;  // reserved
  CHECK(DecodeRequest(B(bad)).error().code() == Code::kInvalidArgument);

  // A frame whose length field disagrees with its size.
  bad = good + "x";
  CHECK(DecodeRequest(B(bad)).error().code() == Code::kInvalidArgument);
  // Shorter than a header.
  CHECK_FALSE(DecodeRequest(B(good).first(10)));
  // A reply with a bad magic.
  std::string rep;
  EncodeReply(&rep, ReplyHeader{}, {});
  rep[5] = 0;
  CHECK(DecodeReplyHeader(B(rep)).error().code() == Code::kUnsupported);
}

TEST_CASE("opcode names and classes") {
  for (uint8_t op = 1; op <= static_cast<uint8_t>(kLastOpcode); op++) {
    CHECK(IsKnownOpcode(op));
    CHECK(OpcodeName(static_cast<Opcode>(op)) != "UNKNOWN");
  }
  CHECK(IsWriteOpcode(Opcode::kPut));
  CHECK(IsWriteOpcode(Opcode::kDel));
  CHECK(IsWriteOpcode(Opcode::kBatch));
  CHECK(IsWriteOpcode(Opcode::kDelRange));
  CHECK_FALSE(IsWriteOpcode(Opcode::kBackupBegin));
  CHECK_FALSE(IsWriteOpcode(Opcode::kGet));
  CHECK(OpcodeName(Opcode::kDelRange) == "DEL_RANGE");
  CHECK(static_cast<uint8_t>(kLastOpcode) == 18);
  CHECK(OpcodeName(Opcode::kPromote) == "PROMOTE");
  CHECK(OpcodeName(Opcode::kReplicate) == "REPLICATE");
  CHECK_FALSE(IsWriteOpcode(Opcode::kPromote));
  CHECK_FALSE(IsWriteOpcode(Opcode::kFlush));
}

TEST_CASE("PUT payload: round trip, limits, truncation") {
  std::string p = EncodePutPayload("key", std::string("v\0lue", 5));
  auto d = DecodePut(B(p), kMaxKeyBytes, kMaxValueBytes);
  REQUIRE(d);
  CHECK(d->key == "key");
  CHECK(d->value == std::string_view("v\0lue", 5));
  // Empty key and empty value are legal at the protocol level.
  p = EncodePutPayload("", "");
  REQUIRE(DecodePut(B(p), 1, 1));

  p = EncodePutPayload("key", "value");
  CHECK(DecodePut(B(p), 2, 100).error().code() == Code::kTooLarge);
  CHECK(DecodePut(B(p), 3, 4).error().code() == Code::kTooLarge);
  CHECK(DecodePut(B(p), 3, 5));
  // key_len pointing past the end, and a payload shorter than the length field.
  std::string bad = p;
  bad[0] = 50;
  CHECK(DecodePut(B(bad), kMaxKeyBytes, kMaxValueBytes).error().code() == Code::kInvalidArgument);
  CHECK(DecodePut(B(p).first(3), kMaxKeyBytes, kMaxValueBytes).error().code() == Code::kInvalidArgument);
  bad = std::string("\xff\xff\xff\xff", 4) + "k";
  CHECK_FALSE(DecodePut(B(bad), UINT32_MAX, UINT32_MAX));
}

TEST_CASE("key payload (GET, DEL)") {
  auto k = DecodeKey(B("hello"), 5);
  REQUIRE(k);
  CHECK(*k == "hello");
  CHECK(DecodeKey(B("hello"), 4).error().code() == Code::kTooLarge);
}

TEST_CASE("BATCH payload: round trip, truncation at every byte, trailing garbage") {
  const std::string big(300, 'z');
  const BatchOp ops[] = {{OpType::kPut, "a", "1"}, {OpType::kDel, "bb", ""}, {OpType::kPut, "c", big},
                         {OpType::kPut, "", ""}};
  const std::string p = EncodeBatchPayload(ops);
  std::vector<BatchOp> out;
  REQUIRE(DecodeBatch(B(p), kMaxKeyBytes, kMaxValueBytes, &out).ok());
  REQUIRE(out.size() == 4);
  for (size_t i = 0; i < 4; i++) {
    CHECK(out[i].type == ops[i].type);
    CHECK(out[i].key == ops[i].key);
    CHECK(out[i].value == ops[i].value);
  }
  for (size_t n = 0; n < p.size(); n++) {
    CAPTURE(n);
    Status s = DecodeBatch(B(p).first(n), kMaxKeyBytes, kMaxValueBytes, &out);
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(out.empty());
  }
  CHECK(DecodeBatch(B(p + "x"), kMaxKeyBytes, kMaxValueBytes, &out).code() == Code::kInvalidArgument);
  CHECK(DecodeBatch(B(p), kMaxKeyBytes, 299, &out).code() == Code::kTooLarge);
  CHECK(DecodeBatch(B(p), 1, kMaxValueBytes, &out).code() == Code::kTooLarge);
  // Unknown op type.
  std::string bad = p;
  bad[4] = 3;
  CHECK(DecodeBatch(B(bad), kMaxKeyBytes, kMaxValueBytes, &out).code() == Code::kInvalidArgument);
  // A huge count with no bytes behind it is rejected without reserving for it.
  bad = std::string("\xff\xff\xff\x7f", 4);
  CHECK(DecodeBatch(B(bad), kMaxKeyBytes, kMaxValueBytes, &out).code() == Code::kInvalidArgument);
  // Empty batch.
  REQUIRE(DecodeBatch(B(EncodeBatchPayload({})), 1, 1, &out).ok());
  CHECK(out.empty());
}

TEST_CASE("SCAN payload: round trip, limit clamp, errors") {
  ScanArgs a{ScanArgs::kRange, 17, "a", "m", "c"};
  std::string p = EncodeScanPayload(a);
  auto d = DecodeScan(B(p));
  REQUIRE(d);
  CHECK(d->kind == ScanArgs::kRange);
  CHECK(d->limit == 17);
  CHECK(d->a == "a");
  CHECK(d->b == "m");
  CHECK(d->after == "c");

  a = {ScanArgs::kPrefix, kMaxScanLimit + 5, "pre", "", ""};
  p = EncodeScanPayload(a);  // the decoded views point into p
  d = DecodeScan(B(p));
  REQUIRE(d);
  CHECK(d->kind == ScanArgs::kPrefix);
  CHECK(d->limit == kMaxScanLimit);
  CHECK(d->a == "pre");
  CHECK(d->b.empty());

  a.b = "x";  // a prefix scan has no end
  CHECK(DecodeScan(B(EncodeScanPayload(a))).error().code() == Code::kInvalidArgument);
  p = EncodeScanPayload({ScanArgs::kRange, 0, "a", "b", ""});
  for (size_t n = 0; n < p.size(); n++) CHECK_FALSE(DecodeScan(B(p).first(n)));
  CHECK_FALSE(DecodeScan(B(p + "!")));
  p[0] = 2;
  CHECK(DecodeScan(B(p)).error().code() == Code::kInvalidArgument);
}

TEST_CASE("DEL_RANGE payload: round trip, truncation at every byte, errors") {
  for (const KeyRange& in : {KeyRange{true, "user:", ""}, KeyRange{false, "a", std::string_view("b\0c", 3)},
                             KeyRange{false, "", ""}}) {
    const std::string p = EncodeDelRangePayload(in);
    auto out = DecodeDelRange(B(p));
    REQUIRE(out.has_value());
    CHECK(out->prefix == in.prefix);
    CHECK(out->a == in.a);
    CHECK(out->b == in.b);
    for (size_t cut = 0; cut < p.size(); ++cut) {
      CHECK(DecodeDelRange(B(p).first(cut)).error().code() == Code::kInvalidArgument);
    }
    CHECK(DecodeDelRange(B(p + "x")).error().code() == Code::kInvalidArgument);
  }
  // Exact bytes: kind, then two length-prefixed bounds.
  CHECK(EncodeDelRangePayload(KeyRange{false, "a", "b"}) == std::string("\x01\x01\0\0\0a\x01\0\0\0b", 11));
  std::string bad_kind = EncodeDelRangePayload(KeyRange{true, "p", ""});
  bad_kind[0] = 2;
  CHECK(DecodeDelRange(B(bad_kind)).error().code() == Code::kInvalidArgument);
  std::string prefix_with_end = EncodeDelRangePayload(KeyRange{false, "p", "q"});
  prefix_with_end[0] = 0;
  CHECK(DecodeDelRange(B(prefix_with_end)).error().code() == Code::kInvalidArgument);
  const std::string long_bound(kMaxKeyBytes + 1, 'k');
  CHECK(DecodeDelRange(B(EncodeDelRangePayload(KeyRange{true, long_bound, ""}))).error().code() ==
        Code::kInvalidArgument);
}

TEST_CASE("PROMOTE payload: force alone or with an epoch; anything else refused") {
  const std::string plain = EncodePromotePayload({false, 0});
  CHECK(plain == std::string(1, '\0'));
  auto a = DecodePromote(B(plain));
  REQUIRE(a.has_value());
  CHECK_FALSE(a->force);
  CHECK(a->epoch == 0);
  const std::string forced = EncodePromotePayload({true, 7});
  CHECK(forced.size() == 9);
  auto b = DecodePromote(B(forced));
  REQUIRE(b.has_value());
  CHECK(b->force);
  CHECK(b->epoch == 7);
  CHECK(DecodePromote(B(std::string())).error().code() == Code::kInvalidArgument);
  CHECK(DecodePromote(B(forced).first(5)).error().code() == Code::kInvalidArgument);
  CHECK(DecodePromote(B(std::string(1, '\2'))).error().code() == Code::kInvalidArgument);
}

TEST_CASE("BACKUP payloads: BACKUP_READ request and BACKUP_BEGIN reply round trip") {
  const std::string r = EncodeBackupReadPayload({7, 1ull << 33, 65536});
  CHECK(r.size() == 20);
  auto a = DecodeBackupRead(B(r));
  REQUIRE(a.has_value());
  CHECK(a->backup_id == 7);
  CHECK(a->offset == 1ull << 33);
  CHECK(a->max_bytes == 65536);
  CHECK(DecodeBackupRead(B(r).first(19)).error().code() == Code::kInvalidArgument);
  CHECK(DecodeBackupRead(B(r + "x")).error().code() == Code::kInvalidArgument);
  const std::string b = EncodeBackupBeginReply({3, 4096, 12});
  CHECK(b.size() == 24);
  auto d = DecodeBackupBeginReply(B(b));
  REQUIRE(d.has_value());
  CHECK(d->backup_id == 3);
  CHECK(d->size == 4096);
  CHECK(d->entries == 12);
  CHECK_FALSE(DecodeBackupBeginReply(B(b).first(23)).has_value());
}

TEST_CASE("CONFIG_SET payload") {
  std::string p = EncodeConfigSetPayload("durability.batch_size", "64");
  auto d = DecodeConfigSet(B(p));
  REQUIRE(d);
  CHECK(d->name == "durability.batch_size");
  CHECK(d->value == "64");
  CHECK_FALSE(DecodeConfigSet(B(EncodeConfigSetPayload("", "64"))));
  CHECK_FALSE(DecodeConfigSet(B(p).first(10)));
  CHECK_FALSE(DecodeConfigSet(B(p).first(3)));
}

TEST_CASE("scan reply builder and decoder") {
  ScanReplyBuilder b;
  CHECK(b.count() == 0);
  b.Add("k1", "v1");
  b.Add("", std::string(1000, 'v'));
  b.Add(std::string("\0\1", 2), "");
  CHECK(b.count() == 3);
  CHECK(b.bytes() > 1000);
  std::string p = b.Finish(true);
  auto d = DecodeScanReply(B(p));
  REQUIRE(d);
  REQUIRE(d->items.size() == 3);
  CHECK(d->items[0] == std::pair<std::string, std::string>("k1", "v1"));
  CHECK(d->items[1].second.size() == 1000);
  CHECK(d->items[2].first == std::string("\0\1", 2));
  CHECK(d->more);
  // The builder is reusable after Finish; an empty reply is 5 bytes.
  std::string empty = b.Finish(false);
  CHECK(empty == std::string("\0\0\0\0\0", 5));
  d = DecodeScanReply(B(empty));
  REQUIRE(d);
  CHECK(d->items.empty());
  CHECK_FALSE(d->more);

  for (size_t n = 0; n < p.size(); n++) CHECK_FALSE(DecodeScanReply(B(p).first(n)));
  CHECK_FALSE(DecodeScanReply(B(p + "x")));
  std::string bad = p;
  bad.back() = 2;
  CHECK_FALSE(DecodeScanReply(B(bad)));
  CHECK_FALSE(DecodeScanReply(B(std::string("\xff\xff\xff\xff\0", 5))));
}

TEST_CASE("u64 payload") {
  std::string p = EncodeU64(0x1122334455667788ull);
  CHECK(p[0] == '\x88');
  auto d = DecodeU64(B(p));
  REQUIRE(d);
  CHECK(*d == 0x1122334455667788ull);
  CHECK_FALSE(DecodeU64(B(p).first(7)));
  CHECK_FALSE(DecodeU64(B(p + "x")));
}

}  // namespace kvd::proto
