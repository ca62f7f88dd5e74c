// One example request and reply frame per opcode, built with the codec, and
// an annotated hex rendering of each. docs/wire_protocol.md embeds these
// renderings verbatim (wire_examples_test checks that they still match), and
// fuzz/gen_frame_corpus.cc writes the frames as the frame decoder's seeds.
//
// The payload of each example is also spelled out field by field; the test
// checks that those fields concatenate to exactly what the codec produced.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kvd/protocol.h"

namespace kvd::proto::examples {

struct Field {
  std::string bytes;
  std::string note;
};

struct Frame {
  std::string title;     // "PUT request"
  bool reply = false;
  std::string bytes;     // the whole frame, from EncodeRequest/EncodeReply
  std::vector<Field> payload_fields;  // the payload, field by field
};

inline std::string Le32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; i++) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

inline std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += c;
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", static_cast<unsigned char>(c));
      out += b;
    }
  }
  return out + "\"";
}

inline std::string Hex(std::string_view bytes, size_t from, size_t n) {
  std::string out;
  for (size_t i = from; i < from + n && i < bytes.size(); i++) {
    char b[4];
    std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(bytes[i]));
    if (!out.empty()) out += ' ';
    out += b;
  }
  return out;
}

// Adds "hex  note" lines, 8 bytes of hex per line (long fields wrap).
inline void AddLines(std::string* out, std::string_view bytes, const std::string& note) {
  if (bytes.empty()) {
    *out += "  " + std::string(23, ' ') + "  " + note + " (0 bytes)\n";
    return;
  }
  for (size_t off = 0; off < bytes.size(); off += 8) {
    std::string line = "  " + Hex(bytes, off, 8);
    if (off == 0) {
      line.resize(2 + 23, ' ');
      line += "  " + note;
    }
    *out += line + "\n";
  }
}

inline uint64_t LeAt(std::string_view b, size_t off, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v |= static_cast<uint64_t>(static_cast<unsigned char>(b[off + i])) << (8 * i);
  return v;
}

// The annotated dump of one frame, as it appears in docs/wire_protocol.md.
inline std::string Render(const Frame& f) {
  const std::string_view b = f.bytes;
  std::string out = f.title + " (" + std::to_string(b.size()) + " bytes)\n";
  const auto op = static_cast<Opcode>(b[7]);
  AddLines(&out, b.substr(0, 4), "length = " + std::to_string(LeAt(b, 0, 4)));
  AddLines(&out, b.substr(4, 2), "magic 0x564B (\"KV\")");
  AddLines(&out, b.substr(6, 1), "version 1");
  AddLines(&out, b.substr(7, 1), "opcode " + std::to_string(LeAt(b, 7, 1)) + " = " + std::string(OpcodeName(op)));
  size_t pos = 8;
  if (!f.reply) {
    const uint64_t flags = LeAt(b, 8, 2);
    std::string names = (flags & kFlagDurable) != 0 ? " (kFlagDurable)" : "";
    if ((flags & kFlagMinLsn) != 0) names += " (kFlagMinLsn)";
    AddLines(&out, b.substr(8, 2), "flags = " + std::to_string(flags) + names);
    AddLines(&out, b.substr(10, 2), "reserved = 0");
    AddLines(&out, b.substr(12, 8), "request_id = " + std::to_string(LeAt(b, 12, 8)));
    pos = 20;
  } else {
    const auto code = static_cast<Code>(LeAt(b, 8, 2));
    AddLines(&out, b.substr(8, 2), "status = " + std::to_string(LeAt(b, 8, 2)) + " (" + std::string(CodeName(code)) + ")");
    AddLines(&out, b.substr(10, 2), "flags = 0");
    AddLines(&out, b.substr(12, 8), "request_id = " + std::to_string(LeAt(b, 12, 8)));
    AddLines(&out, b.substr(20, 8), "durable_lsn = " + std::to_string(LeAt(b, 20, 8)));
    AddLines(&out, b.substr(28, 8), "lsn = " + std::to_string(LeAt(b, 28, 8)));
    pos = 36;
  }
  for (const Field& field : f.payload_fields) {
    AddLines(&out, b.substr(pos, field.bytes.size()), field.note);
    pos += field.bytes.size();
  }
  if (pos == b.size() && f.payload_fields.empty()) out += "  (no payload)\n";
  return out;
}

inline Frame Req(std::string title, Opcode op, uint16_t flags, uint64_t id, std::vector<Field> fields) {
  Frame f{std::move(title), false, {}, std::move(fields)};
  std::string payload;
  for (const Field& x : f.payload_fields) payload += x.bytes;
  EncodeRequest(&f.bytes, RequestHeader{op, flags, id}, {payload});
  return f;
}

inline Frame Rep(std::string title, Opcode op, Code status, uint64_t id, Lsn durable, Lsn lsn,
                 std::vector<Field> fields) {
  Frame f{std::move(title), true, {}, std::move(fields)};
  std::string payload;
  for (const Field& x : f.payload_fields) payload += x.bytes;
  EncodeReply(&f.bytes, ReplyHeader{op, status, id, durable, lsn}, {payload});
  return f;
}

inline Field Len(std::string_view s, const std::string& what) {
  return {Le32(static_cast<uint32_t>(s.size())), what + " = " + std::to_string(s.size())};
}
inline Field Raw(std::string_view s, const std::string& what) { return {std::string(s), what + " " + Quote(s)}; }
inline Field U8(uint8_t v, const std::string& what) { return {std::string(1, static_cast<char>(v)), what + " = " + std::to_string(v)}; }
inline Field U32(uint32_t v, const std::string& what) { return {Le32(v), what + " = " + std::to_string(v)}; }

// Every example, in the order the spec shows them. The `payload` member of
// each pair is what the codec's payload encoder produced, for the test to
// compare with the concatenated fields.
struct Example {
  Frame frame;
  std::string encoder_payload;  // empty when the payload has no encoder
};

inline std::vector<Example> AllExamples() {
  using O = Opcode;
  const std::string_view k = "user:1", v = "alice";
  std::vector<Example> ex;
  auto add = [&](Frame f, std::string enc = {}) { ex.push_back({std::move(f), std::move(enc)}); };

  add(Req("PING request", O::kPing, 0, 1, {}));
  add(Rep("PING reply", O::kPing, Code::kOk, 1, 41, 0, {}));

  add(Req("PUT request, durable", O::kPut, kFlagDurable, 2, {Len(k, "key_len"), Raw(k, "key"), Raw(v, "value")}),
      EncodePutPayload(k, v));
  add(Rep("PUT reply", O::kPut, Code::kOk, 2, 42, 42, {}));

  add(Req("GET request", O::kGet, 0, 3, {Raw(k, "key")}));
  add(Rep("GET reply, found", O::kGet, Code::kOk, 3, 42, 0, {Raw(v, "value")}));
  add(Req("GET request, absent key", O::kGet, 0, 4, {Raw("nope", "key")}));
  add(Rep("GET reply, not found", O::kGet, Code::kNotFound, 4, 42, 0, {}));

  // Read-your-writes: GET user:1 once LSN 45 is applied; a node that has
  // not applied it within its min_lsn_wait answers TimedOut.
  add(Req("GET request, with a minimum LSN", O::kGet, kFlagMinLsn, 17,
          {{EncodeU64(45), "min_lsn = 45 (u64)"}, Raw(k, "key")}));
  const std::string lagging = "minimum LSN 45 not applied within 1000 ms (this node has applied LSN 44)";
  add(Rep("GET reply, minimum LSN not applied in time", O::kGet, Code::kTimedOut, 17, 44, 0,
          {Raw(lagging, "message")}));

  add(Req("DEL request", O::kDel, 0, 5, {Raw("user:2", "key")}));
  add(Rep("DEL reply, key was absent", O::kDel, Code::kNotFound, 5, 42, 43, {}));

  const BatchOp ops[] = {{OpType::kPut, "a", "1"}, {OpType::kDel, "b", ""}};
  add(Req("BATCH request", O::kBatch, 0, 6,
          {U32(2, "count"), U8(1, "type (put)"), Len("a", "key_len"), Raw("a", "key"), Len("1", "value_len"),
           Raw("1", "value"), U8(2, "type (del)"), Len("b", "key_len"), Raw("b", "key")}),
      EncodeBatchPayload(ops));
  add(Rep("BATCH reply", O::kBatch, Code::kOk, 6, 42, 44, {}));

  ScanArgs prefix{ScanArgs::kPrefix, 2, "user:", "", ""};
  add(Req("SCAN request, prefix", O::kScan, 0, 7,
          {U8(0, "kind (prefix)"), U32(2, "limit"), Len("user:", "a_len"), Raw("user:", "prefix"),
           Len("", "b_len"), Raw("", "b"), Len("", "after_len"), Raw("", "after")}),
      EncodeScanPayload(prefix));
  ScanReplyBuilder sb;
  sb.Add("user:1", "alice");
  sb.Add("user:3", "carol");
  add(Rep("SCAN reply", O::kScan, Code::kOk, 7, 44, 0,
          {U32(2, "count"), Len("user:1", "key_len"), Raw("user:1", "key"), Len("alice", "value_len"),
           Raw("alice", "value"), Len("user:3", "key_len"), Raw("user:3", "key"), Len("carol", "value_len"),
           Raw("carol", "value"), U8(1, "more")}),
      sb.Finish(true));
  ScanArgs range{ScanArgs::kRange, 0, "a", "m", "user:3"};
  add(Req("SCAN request, range continuation", O::kScan, 0, 8,
          {U8(1, "kind (range)"), U32(0, "limit (server default)"), Len("a", "a_len"), Raw("a", "start"),
           Len("m", "b_len"), Raw("m", "end"), Len("user:3", "after_len"), Raw("user:3", "after")}),
      EncodeScanPayload(range));

  add(Req("COUNT request", O::kCount, 0, 9, {Raw("user:", "prefix")}));
  add(Rep("COUNT reply", O::kCount, Code::kOk, 9, 44, 0, {{EncodeU64(2), "count = 2 (u64)"}}));

  add(Req("FLUSH request", O::kFlush, 0, 10, {}));
  add(Rep("FLUSH reply", O::kFlush, Code::kOk, 10, 44, 44, {}));

  add(Req("SNAPSHOT request", O::kSnapshot, 0, 11, {}));
  add(Rep("SNAPSHOT reply", O::kSnapshot, Code::kOk, 11, 44, 44, {}));

  add(Req("STATUS request", O::kStatus, 0, 12, {}));
  const std::string status_json = R"({"version":"0.1.0","keys":2})";
  add(Rep("STATUS reply (JSON shortened)", O::kStatus, Code::kOk, 12, 44, 0, {Raw(status_json, "JSON")}));

  add(Req("CONFIG_GET request", O::kConfigGet, 0, 13, {Raw("durability.batch_size", "name")}));
  const std::string cfg_json = R"({"durability.batch_size":"1024"})";
  add(Rep("CONFIG_GET reply", O::kConfigGet, Code::kOk, 13, 44, 0, {Raw(cfg_json, "JSON")}));

  add(Req("CONFIG_SET request", O::kConfigSet, 0, 14,
          {Len("durability.mode", "name_len"), Raw("durability.mode", "name"), Raw("batch", "value")}),
      EncodeConfigSetPayload("durability.mode", "batch"));
  add(Rep("CONFIG_SET reply", O::kConfigSet, Code::kOk, 14, 44, 0, {}));

  add(Req("DEL_RANGE request, prefix", O::kDelRange, 0, 16,
          {U8(0, "kind (prefix)"), Len("user:", "a_len"), Raw("user:", "prefix"), Len("", "b_len"), Raw("", "b")}),
      EncodeDelRangePayload(KeyRange{true, "user:", ""}));
  add(Rep("DEL_RANGE reply", O::kDelRange, Code::kOk, 16, 45, 45, {{EncodeU64(2), "deleted = 2 (u64)"}}));

  const std::string msg = "unknown opcode 99";
  add(Rep("Error reply to an unknown opcode 99 (then the server closes the connection)", static_cast<O>(99),
          Code::kUnsupported, 15, 44, 0, {Raw(msg, "message")}));
  return ex;
}

}  // namespace kvd::proto::examples
