// Pre-encoded bench requests: the load generator's way to send a frame
// without building it (and without the codec's per-call temporaries).
//
// A template is one frame made by proto::EncodeRequest at set-up. Each send
// appends it to the connection's output buffer and patches, in place, the
// two fields that vary: the request id (u64 LE at a fixed offset of the
// header, see protocol.h) and the key bytes (located by decoding the
// template). bench_test checks the result is byte-identical to the codec's.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "kvd/protocol.h"

namespace kvctl {

class RequestTemplate {
 public:
  // request_id is the 8 bytes after magic, version, opcode, flags, reserved.
  static constexpr size_t kIdOffset = kvd::proto::kLengthBytes + 8;

  // A PUT of (key, value) or a GET of key; key's bytes are placeholders.
  static RequestTemplate Put(std::string_view key, std::string_view value, uint16_t flags) {
    const uint32_t n = static_cast<uint32_t>(key.size());
    const char len_le[4] = {static_cast<char>(n), static_cast<char>(n >> 8), static_cast<char>(n >> 16),
                            static_cast<char>(n >> 24)};
    RequestTemplate t;
    kvd::proto::EncodeRequest(&t.frame_, {kvd::proto::Opcode::kPut, flags, 0},
                              {std::string_view(len_le, 4), key, value});
    t.key_offset_ = t.frame_.size() - value.size() - key.size();
    t.key_size_ = key.size();
    return t;
  }
  static RequestTemplate Get(std::string_view key) {
    RequestTemplate t;
    kvd::proto::EncodeRequest(&t.frame_, {kvd::proto::Opcode::kGet, 0, 0}, {key});
    t.key_offset_ = t.frame_.size() - key.size();
    t.key_size_ = key.size();
    return t;
  }

  // Appends the frame with this id and key (key_size() bytes) to out; no
  // allocation once out has the capacity.
  void AppendTo(std::string* out, uint64_t request_id, const char* key) const {
    const size_t at = out->size();
    out->append(frame_);
    char* p = out->data() + at;
    for (int i = 0; i < 8; ++i) p[kIdOffset + i] = static_cast<char>(request_id >> (8 * i));
    std::memcpy(p + key_offset_, key, key_size_);
  }

  size_t size() const { return frame_.size(); }
  size_t key_size() const { return key_size_; }

 private:
  std::string frame_;
  size_t key_offset_ = 0;
  size_t key_size_ = 0;
};

}  // namespace kvctl
