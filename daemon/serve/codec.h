// The codec seam (as Envoy keeps its HTTP codecs apart from the connection
// manager): a Protocol is one front end's wire format; it makes one Codec
// per connection, which turns bytes into Commands and Replies into bytes.
// Session (the ordering rules) and Dispatcher (the engine calls) see only
// the neutral types of serve/command.h.
//
// The native protocol (docs/wire_protocol.md) is serve/native_codec.h. A
// RESP codec fits the same shape: its Decode parses inline and multibulk
// commands (a pipeline is just more requests in the buffer), maps commands
// onto Ops (MSET -> kBatch), takes the session's sequence number as the
// request id (RESP has none), answers an unknown command with a non-fatal
// problem, and its EncodeReply picks RESP types from (op, code, tag).
//
// Threading: the loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "kvd/status.h"
#include "serve/command.h"

namespace kvd::daemon {

struct DecodeResult {
  enum Kind : uint8_t {
    kNeedMore,  // no whole request yet: read more bytes
    kCommand,   // *cmd holds the first request, `consumed` bytes long
    kBroken,    // the stream cannot be read on: answer `error` for `ref`, then close
    kClose,     // the client asked to end (RESP's QUIT): answer `ref` (OK), then close
  };
  Kind kind = kNeedMore;
  size_t consumed = 0;
  Status error;    // kBroken
  RequestRef ref;  // kBroken: as much of the request as was readable; kClose: the request
};

class Codec {
 public:
  virtual ~Codec() = default;
  // Decodes the first request in data. `seq` counts the requests this
  // connection consumed before it: the id for protocols that carry none.
  // Must be repeatable: a barrier that has to wait is left in the buffer and
  // decoded again later, to the same command. Views in *cmd stay valid until
  // the next Decode (they point into data or the codec's scratch). The session
  // passes the same *cmd every time: a kCommand result must set every field
  // (a field left alone would keep the previous request's value).
  virtual DecodeResult Decode(std::span<const std::byte> data, uint64_t seq, Command* cmd) = 0;
  // False only when data is the incomplete start of a request (more bytes
  // are needed); true for a whole request or a broken one.
  virtual bool HasRequest(std::span<const std::byte> data) const = 0;
  // Appends the encoded reply to *out.
  virtual void EncodeReply(const Reply& reply, std::string* out) = 0;
};

class Protocol {
 public:
  virtual ~Protocol() = default;
  virtual std::string_view name() const = 0;
  virtual std::unique_ptr<Codec> NewCodec() = 0;
  // The one reply sent to a connection refused right after accept (too many
  // clients, shutting down), which never gets a codec of its own.
  virtual void EncodeRefusal(Code code, std::string_view message, std::string* out) const = 0;
};

}  // namespace kvd::daemon
