// RESP2 for `kvctl bench --resp`: the two requests the load generator sends
// (SET key value, GET key) as pre-encoded templates, and a decoder for the
// replies they get (+OK, $<n> bulk, $-1 null, -error). The native mode's
// counterpart is request_template.h + kvd/protocol.h's reply decoder.
//
// RESP has no request id: replies come back in request order on a
// connection, which the load driver's in-flight ring already assumes.
#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace kvctl {

// One multibulk command (kvd::resp::EncodeCommand's bytes) whose key is
// patched in place per send; no allocation once the output buffer has grown.
class RespRequestTemplate {
 public:
  static RespRequestTemplate Set(std::string_view key, std::string_view value);
  static RespRequestTemplate Get(std::string_view key);

  // Appends the command with this key (key_size() bytes) to out.
  void AppendTo(std::string* out, const char* key) const {
    const size_t at = out->size();
    out->append(frame_);
    std::memcpy(out->data() + at + key_offset_, key, key_size_);
  }

  const std::string& bytes() const { return frame_; }
  size_t key_size() const { return key_size_; }

 private:
  std::string frame_;
  size_t key_offset_ = 0;
  size_t key_size_ = 0;
};

struct RespReply {
  enum Kind {
    kNeedMore,  // the input holds only part of a reply
    kSimple,    // +text
    kBulk,      // $n: a value
    kNull,      // $-1 (RESP2 GET miss) or _ (RESP3 null)
    kError,     // -text: a failed request
    kInteger,   // :n
    kBad,       // not a reply the bench can get: the stream is lost
  };
  Kind kind = kNeedMore;
  size_t consumed = 0;    // bytes of the reply (not for kNeedMore / kBad)
  std::string_view text;  // kSimple/kError: the line; kBulk: the value; kBad: why
};

// Decodes the first reply in `in`. Arrays, maps and other aggregates are kBad:
// SET and GET never answer with them.
RespReply DecodeRespReply(std::string_view in, size_t max_bulk_bytes);

}  // namespace kvctl
