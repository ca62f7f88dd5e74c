#include "net/tls_context.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kvd::daemon {
namespace {

// A readable file, or why not in the system's words: OpenSSL's own message
// for a missing file is less clear than "No such file or directory".
Status Readable(const std::string& what, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::InvalidArgument(what + " " + path + ": " + std::strerror(errno));
  ::close(fd);
  return Status::Ok();
}

}  // namespace

std::string TakeOpenSslErrors(const std::string& fallback) {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? fallback : out;
}

Result<std::shared_ptr<TlsContext>> TlsContext::Create(const TlsFiles& files) {
  ERR_clear_error();
  KVD_RETURN_IF_ERROR(Readable("certificate", files.cert));
  KVD_RETURN_IF_ERROR(Readable("private key", files.key));
  KVD_RETURN_IF_ERROR(Readable("CA", files.ca));
  SSL_CTX* raw = SSL_CTX_new(TLS_method());
  if (raw == nullptr) return Status::Internal("SSL_CTX_new: " + TakeOpenSslErrors());
  std::shared_ptr<TlsContext> ctx(new TlsContext(raw));
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  // Replication links are long-lived: no session resumption to manage.
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(raw, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_use_certificate_chain_file(raw, files.cert.c_str()) != 1) {
    return Status::InvalidArgument("certificate " + files.cert + ": " + TakeOpenSslErrors("no certificate in it"));
  }
  if (SSL_CTX_use_PrivateKey_file(raw, files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL compares the key with the certificate as it loads it.
    const bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    return Status::InvalidArgument("private key " + files.key +
                                   (mismatch ? " does not match the certificate " + files.cert : std::string()) +
                                   ": " + TakeOpenSslErrors("no private key in it"));
  }
  if (SSL_CTX_check_private_key(raw) != 1) {
    return Status::InvalidArgument("private key " + files.key + " does not match the certificate " + files.cert +
                                   ": " + TakeOpenSslErrors());
  }
  if (SSL_CTX_load_verify_locations(raw, files.ca.c_str(), nullptr) != 1) {
    return Status::InvalidArgument("CA " + files.ca + ": " + TakeOpenSslErrors("no certificate in it"));
  }
  // FAIL_IF_NO_PEER_CERT applies to the accepting side only; a connecting
  // side always gets the server's certificate and checks it.
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

Status CheckCaFile(const std::string& path) {
  ERR_clear_error();
  KVD_RETURN_IF_ERROR(Readable("CA", path));
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr) return Status::Internal("X509_STORE_new: " + TakeOpenSslErrors());
  const int loaded = X509_STORE_load_file(store, path.c_str());
  X509_STORE_free(store);
  if (loaded != 1) return Status::InvalidArgument("CA " + path + ": " + TakeOpenSslErrors("no certificate in it"));
  return Status::Ok();
}

}  // namespace kvd::daemon
