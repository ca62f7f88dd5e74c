// TlsFilter: TLS for one connection as a StreamFilter (net/stream_filter.h).
// OpenSSL never touches the socket: ciphertext read by libuv is fed into a
// memory BIO, the plain bytes SSL_read gives go to the connection's buffer,
// and what OpenSSL writes lands in another memory BIO that the owner drains
// with TakeOutput and hands to uv_write. Nothing here can block the loop.
//
// The side that accepted the TCP connection is the TLS server; the side that
// connected is the client and sends ClientHello at the first TakeOutput.
// Plain bytes written before the handshake finished are held and sent once
// it has. A failed handshake or a bad record makes OnRead / TakeOutput
// return OpenSSL's reason (with the certificate check's verdict when that
// is what failed); the alert for the peer is still in TakeOutput's bytes.
//
// Threading: loop thread only; one per connection.
#pragma once

#include <memory>
#include <string>

#include "net/stream_filter.h"
#include "net/tls_context.h"

typedef struct ssl_st SSL;

namespace kvd::daemon {

class TlsFilter final : public StreamFilter {
 public:
  enum class Side { kServer, kClient };
  static Result<std::unique_ptr<TlsFilter>> Create(const TlsContext& ctx, Side side);
  ~TlsFilter() override;
  TlsFilter(const TlsFilter&) = delete;
  TlsFilter& operator=(const TlsFilter&) = delete;

  std::span<char> ReadTarget(std::span<char> plain) override;
  Result<size_t> OnRead(std::span<char> plain, size_t n) override;
  std::string_view OnWrite(std::string_view plain) override;
  Status TakeOutput(std::string* wire) override;
  bool HasPendingPlain() const override { return more_plain_; }

  bool handshake_done() const { return handshake_done_; }

 private:
  explicit TlsFilter(SSL* ssl) : ssl_(ssl) {}
  // Advances the handshake; Ok while it is still under way.
  Status Handshake();
  // A failure from the SSL call that returned `ret`, with the reason.
  Status Failure(int ret, const char* during);

  SSL* ssl_;
  std::string cipher_in_ = std::string(64 * 1024, '\0');  // libuv reads ciphertext here
  std::string plain_out_;  // written before the handshake finished
  bool handshake_done_ = false;
  bool more_plain_ = false;
  Status failed_;  // sticky: a failed TLS session is never used again
};

}  // namespace kvd::daemon
