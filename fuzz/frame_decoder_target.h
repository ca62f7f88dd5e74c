// Fuzz target logic for the wire codec: framing, request headers and every
// payload decoder. Shared by fuzz/frame_decoder_fuzz.cc (libFuzzer) and
// tests/proto/fuzz_regression_test.cc (replays fuzz/regressions/frame_decoder/).
//
// Besides "no crash, no out-of-bounds read" it checks that whatever decodes
// re-encodes to the same bytes: the encoding is canonical, so a decoder that
// accepted something the encoder would never produce is a bug too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "kvd/protocol.h"

namespace kvd::fuzz {

inline std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
inline std::string_view View(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Runs every payload decoder on one payload (whatever the opcode said).
inline void FuzzPayloadDecoders(std::span<const std::byte> payload) {
  // Small limits so the kTooLarge paths are reached too.
  constexpr uint32_t kKey = 64, kValue = 256;
  if (auto put = proto::DecodePut(payload, kKey, kValue)) {
    KVD_FUZZ_CHECK(put->key.size() <= kKey && put->value.size() <= kValue);
    KVD_FUZZ_CHECK(proto::EncodePutPayload(put->key, put->value) == View(payload));
  }
  if (auto key = proto::DecodeKey(payload, kKey)) {
    KVD_FUZZ_CHECK(*key == View(payload));
  }
  std::vector<BatchOp> ops;
  if (proto::DecodeBatch(payload, kKey, kValue, &ops).ok()) {
    for (const BatchOp& op : ops) {
      KVD_FUZZ_CHECK(op.key.size() <= kKey && op.value.size() <= kValue);
      KVD_FUZZ_CHECK(op.type == OpType::kPut || op.value.empty());
    }
    KVD_FUZZ_CHECK(proto::EncodeBatchPayload(ops) == View(payload));
  } else {
    KVD_FUZZ_CHECK(ops.empty());
  }
  if (auto scan = proto::DecodeScan(payload)) {
    KVD_FUZZ_CHECK(scan->limit <= proto::kMaxScanLimit);
    KVD_FUZZ_CHECK(scan->kind == proto::ScanArgs::kRange || scan->b.empty());
    std::string again = proto::EncodeScanPayload(*scan);
    KVD_FUZZ_CHECK(again.size() == payload.size());
    // Only the limit may differ (clamped to kMaxScanLimit).
    KVD_FUZZ_CHECK(again.substr(0, 1) == View(payload).substr(0, 1));
    KVD_FUZZ_CHECK(again.substr(5) == View(payload).substr(5));
  }
  if (auto cs = proto::DecodeConfigSet(payload)) {
    KVD_FUZZ_CHECK(!cs->name.empty());
    KVD_FUZZ_CHECK(proto::EncodeConfigSetPayload(cs->name, cs->value) == View(payload));
  }
  if (auto reply = proto::DecodeScanReply(payload)) {
    proto::ScanReplyBuilder b;
    for (const auto& [k, v] : reply->items) b.Add(k, v);
    KVD_FUZZ_CHECK(b.Finish(reply->more) == View(payload));
  }
  if (auto u = proto::DecodeU64(payload)) {
    KVD_FUZZ_CHECK(proto::EncodeU64(*u) == View(payload));
  }
}

// The entry point: the input is a byte stream as a server would receive it.
inline int FrameDecoderTarget(const uint8_t* data, size_t size) {
  std::span<const std::byte> buf(reinterpret_cast<const std::byte*>(data), size);
  // The first byte picks a small frame limit so the kTooLarge path is hit.
  const uint32_t max_frame = size > 0 && (data[0] & 1) ? 64 : 1 << 20;
  while (!buf.empty()) {
    auto split = proto::SplitFrame(buf, max_frame);
    if (!split) {
      KVD_FUZZ_CHECK(buf.size() >= proto::kLengthBytes);
      break;  // a server replies with the error and closes the connection
    }
    if (!split->has_value()) {
      // Incomplete: the decoders must still be safe on whatever is there.
      (void)proto::DecodeRequest(buf);
      (void)proto::DecodeReplyHeader(buf);
      FuzzPayloadDecoders(buf);
      break;
    }
    const size_t n = **split;
    KVD_FUZZ_CHECK(n >= proto::kLengthBytes + proto::kRequestHeaderBytes && n <= buf.size());
    auto frame = buf.first(n);
    proto::RequestHeader partial;
    auto req = proto::DecodeRequest(frame, &partial);
    // The serving path's fast decoder accepts exactly what the full one does.
    proto::Request fast;
    const bool fast_ok = proto::DecodeRequestFast(frame, &fast);
    KVD_FUZZ_CHECK(fast_ok == req.has_value());
    if (fast_ok) {
      KVD_FUZZ_CHECK(fast.header.opcode == req->header.opcode && fast.header.flags == req->header.flags &&
                     fast.header.request_id == req->header.request_id);
      KVD_FUZZ_CHECK(fast.payload.data() == req->payload.data() && fast.payload.size() == req->payload.size());
    }
    if (req) {
      KVD_FUZZ_CHECK(proto::IsKnownOpcode(static_cast<uint8_t>(req->header.opcode)));
      KVD_FUZZ_CHECK(partial.request_id == req->header.request_id);
      KVD_FUZZ_CHECK(req->payload.size() == n - proto::kLengthBytes - proto::kRequestHeaderBytes);
      std::string again;
      proto::EncodeRequest(&again, req->header, {View(req->payload)});
      KVD_FUZZ_CHECK(again == View(frame));
      (void)proto::OpcodeName(req->header.opcode);
    }
    FuzzPayloadDecoders(frame.subspan(proto::kLengthBytes + proto::kRequestHeaderBytes));
    // The same bytes read as a reply (the client's side).
    if (auto rh = proto::DecodeReplyHeader(frame)) {
      auto payload = proto::ReplyPayload(frame);
      std::string again;
      proto::EncodeReply(&again, *rh, {View(payload)});
      // Reply flags are always encoded as 0, so compare all but those 2 bytes.
      KVD_FUZZ_CHECK(again.size() == n);
      KVD_FUZZ_CHECK(again.substr(0, 10) == View(frame).substr(0, 10));
      KVD_FUZZ_CHECK(again.substr(12) == View(frame).substr(12));
      FuzzPayloadDecoders(payload);
    }
    buf = buf.subspan(n);
  }
  return 0;
}

}  // namespace kvd::fuzz
