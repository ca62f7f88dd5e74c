// TlsContext: one node's OpenSSL configuration for mutual TLS — its
// certificate and key, the CA a peer's certificate must chain to, TLS 1.2 or
// later — loaded once at start-up and shared by every connection (a
// TlsFilter per connection, net/tls_filter.h).
//
// Both ends verify: an accepting side requires a client certificate
// (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT), a connecting side
// checks the server's. The check is "signed by the CA" (like PostgreSQL's
// verify-ca): a dedicated CA for the replica set is the trust boundary; the
// peer's host name or address is not matched against the certificate.
//
// Errors name the file and say what is wrong with it (missing, not PEM, key
// not matching the certificate), with OpenSSL's own words.
//
// Threading: created on any thread; afterwards read-only, used on the loop.
#pragma once

#include <memory>
#include <string>

#include "kvd/status.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace kvd::daemon {

struct TlsFiles {
  std::string cert;  // PEM certificate, optionally followed by its chain
  std::string key;   // PEM private key of cert
  std::string ca;    // PEM CA certificate(s) peers must be signed by
};

class TlsContext {
 public:
  // Errors are kInvalidArgument "<what> <file>: why" (what: "certificate",
  // "private key", "CA").
  static Result<std::shared_ptr<TlsContext>> Create(const TlsFiles& files);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// A PEM file with at least one CA certificate, readable now: OK, or
// kInvalidArgument "CA <file>: why" (for keys that name a CA alone, without a
// certificate of this node's: [cluster] etcd_ca_file).
Status CheckCaFile(const std::string& path);

// OpenSSL's queued errors for this thread as one line ("a; b"), cleared;
// `fallback` if there are none.
std::string TakeOpenSslErrors(const std::string& fallback = "unknown error");

}  // namespace kvd::daemon
