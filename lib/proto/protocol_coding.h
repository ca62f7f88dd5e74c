// Internal to kvd_proto (not installed): the little-endian reading and
// writing helpers the wire codec's files share. Reader is a bounds-checked
// cursor over hostile input (a failed read consumes nothing and returns
// false); the Put* helpers append fixed-width fields and length-prefixed
// bytes; Truncated/Trailing build the codec's two framing errors. The
// layouts they serve are specified in docs/wire_protocol.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "kvd/status.h"

namespace kvd::proto::coding {

// Reads little-endian fields from a byte span, bounds-checked.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> data) : data_(data) {}

  size_t remaining() const { return data_.size() - pos_; }
  bool done() const { return pos_ == data_.size(); }

  bool U8(uint8_t* v) {
    if (remaining() < 1) return false;
    *v = static_cast<uint8_t>(data_[pos_++]);
    return true;
  }
  bool U16(uint16_t* v) { return Fixed(v); }
  bool U32(uint32_t* v) { return Fixed(v); }
  bool U64(uint64_t* v) { return Fixed(v); }
  // n bytes as a view into the input.
  bool Bytes(size_t n, std::string_view* v) {
    if (n > remaining()) return false;
    *v = std::string_view(reinterpret_cast<const char*>(data_.data()) + pos_, n);
    pos_ += n;
    return true;
  }
  std::string_view Rest() {
    std::string_view v;
    Bytes(remaining(), &v);
    return v;
  }

 private:
  template <typename T>
  bool Fixed(T* v) {
    if (remaining() < sizeof(T)) return false;
    T x = 0;
    for (size_t i = 0; i < sizeof(T); i++) {
      x |= static_cast<T>(static_cast<T>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i));
    }
    pos_ += sizeof(T);
    *v = x;
    return true;
  }

  std::span<const std::byte> data_;
  size_t pos_ = 0;
};

template <typename T>
void PutFixed(std::string* out, T v) {
  char b[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); i++) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out->append(b, sizeof(T));
}

inline void PutLengthPrefixed(std::string* out, std::string_view s) {
  PutFixed<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

inline Status Truncated(std::string_view what) {
  return Status::InvalidArgument(std::string(what) + ": truncated payload");
}
inline Status Trailing(std::string_view what) {
  return Status::InvalidArgument(std::string(what) + ": trailing bytes after payload");
}

}  // namespace kvd::proto::coding
