// StreamFilter: the place between the socket and a connection's buffers
// where TLS goes (decrypt what was read into the input buffer, encrypt what
// is written). The pass-through filter is what plain connections use: reads
// land in the input buffer and writes leave from the output buffer with no
// copy. net/tls_filter.h is the TLS one (replication links).
//
// A filter that transforms bytes also speaks on its own (handshake
// messages, alerts) and may decrypt more than the offered space holds, so
// its owner, after Start, after each OnRead and after each OnWrite:
//   - writes what TakeOutput appends (the wire bytes, owned by the caller);
//   - while HasPendingPlain(), makes room and calls OnRead(plain, 0).
// The pass-through filter never has either, so owners that use only it
// (the client front ends) need not call them.
//
// Threading: the loop thread only. A filter with state (TLS) belongs to one
// connection; the pass-through filter is stateless and shared.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "kvd/status.h"

namespace kvd::daemon {

class StreamFilter {
 public:
  virtual ~StreamFilter() = default;
  // Where the socket's next read lands. `plain` is the free space the
  // connection offers for plain bytes (its input buffer); a pass-through
  // returns it, a TLS filter its own buffer for the ciphertext.
  virtual std::span<char> ReadTarget(std::span<char> plain) = 0;
  // n bytes landed in ReadTarget(plain). Returns how many plain bytes are
  // now at the start of `plain`; an error closes the connection.
  virtual Result<size_t> OnRead(std::span<char> plain, size_t n) = 0;
  // The bytes to put on the wire for `plain`, valid until the write
  // completes (pass-through: plain itself). A filter that keeps `plain` to
  // transform it returns nothing here and hands the result to TakeOutput.
  virtual std::string_view OnWrite(std::string_view plain) = 0;
  // Appends the bytes the filter wants on the wire now to *wire. An error
  // (a failed handshake) closes the connection, after *wire (an alert for
  // the peer) was written.
  virtual Status TakeOutput(std::string* /*wire*/) { return Status::Ok(); }
  // Plain bytes are ready without another read (they did not fit).
  virtual bool HasPendingPlain() const { return false; }
};

class PassThroughFilter final : public StreamFilter {
 public:
  std::span<char> ReadTarget(std::span<char> plain) override { return plain; }
  Result<size_t> OnRead(std::span<char>, size_t n) override { return n; }
  std::string_view OnWrite(std::string_view plain) override { return plain; }

  // One stateless instance serves every connection.
  static PassThroughFilter* Shared() {
    static PassThroughFilter f;
    return &f;
  }
};

}  // namespace kvd::daemon
