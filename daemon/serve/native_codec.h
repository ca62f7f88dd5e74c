// The native codec: kvd's binary protocol (docs/wire_protocol.md, framed and
// decoded by lib/proto) behind the Codec seam. A request frame decodes into
// a Command whose views point into the frame; replies are encoded straight
// into the output buffer.
//
// Errors keep the wire protocol's rules: a frame that cannot be split or
// whose header is bad breaks the stream (kBroken, the reply echoes the
// request id and opcode when they were readable); a payload that does not
// decode is a fatal problem of its command, except a key or value over its
// limit, which fails only that request (kTooLarge).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kvd/protocol.h"
#include "serve/codec.h"

namespace kvd::daemon {

class NativeCodec : public Codec {
 public:
  struct Limits {
    uint32_t max_frame_bytes = proto::kDefaultMaxFrameBytes;
    uint32_t max_key_bytes = kMaxKeyBytes;
    uint32_t max_value_bytes = kMaxValueBytes;
  };
  // batch_scratch: where BATCH operations are decoded; may be shared by the
  // codecs of one loop (a BATCH is submitted before the next request is
  // decoded), so a large batch's memory is kept once, not per connection.
  // nullptr: a scratch of its own.
  explicit NativeCodec(Limits limits, std::vector<BatchOp>* batch_scratch = nullptr)
      : limits_(limits), batch_(batch_scratch != nullptr ? batch_scratch : &own_batch_) {}

  DecodeResult Decode(std::span<const std::byte> data, uint64_t seq, Command* cmd) override;
  bool HasRequest(std::span<const std::byte> data) const override;
  void EncodeReply(const Reply& reply, std::string* out) override;

 private:
  void DecodePayload(proto::Opcode opcode, std::span<const std::byte> payload, Command* cmd);

  Limits limits_;
  std::vector<BatchOp> own_batch_;
  std::vector<BatchOp>* batch_;
};

class NativeProtocol : public Protocol {
 public:
  explicit NativeProtocol(NativeCodec::Limits limits) : limits_(limits) {}
  std::string_view name() const override { return "native"; }
  std::unique_ptr<Codec> NewCodec() override { return std::make_unique<NativeCodec>(limits_, &batch_scratch_); }
  void EncodeRefusal(Code code, std::string_view message, std::string* out) const override;

 private:
  NativeCodec::Limits limits_;
  std::vector<BatchOp> batch_scratch_;
};

// The wire opcode of op and back (the two enums list the same operations).
proto::Opcode ToOpcode(Op op);
Op ToOp(proto::Opcode opcode);

// Appends a SCAN reply payload (docs/wire_protocol.md) for r.
void AppendScanPayload(const ScanResult& r, std::string* out);

}  // namespace kvd::daemon
