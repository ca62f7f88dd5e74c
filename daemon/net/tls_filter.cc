#include "net/tls_filter.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>

namespace kvd::daemon {

Result<std::unique_ptr<TlsFilter>> TlsFilter::Create(const TlsContext& ctx, Side side) {
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx.get());
  if (ssl == nullptr) return Status::Internal("SSL_new: " + TakeOpenSslErrors());
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  if (in == nullptr || out == nullptr) {
    BIO_free(in);
    BIO_free(out);
    SSL_free(ssl);
    return Status::Internal("BIO_new: " + TakeOpenSslErrors());
  }
  // An empty memory BIO means "nothing yet" (retry), not end of file.
  BIO_set_mem_eof_return(in, -1);
  SSL_set_bio(ssl, in, out);  // ssl owns both now
  if (side == Side::kServer) {
    SSL_set_accept_state(ssl);
  } else {
    SSL_set_connect_state(ssl);
  }
  return std::unique_ptr<TlsFilter>(new TlsFilter(ssl));
}

TlsFilter::~TlsFilter() { SSL_free(ssl_); }

std::span<char> TlsFilter::ReadTarget(std::span<char>) { return {cipher_in_.data(), cipher_in_.size()}; }

Status TlsFilter::Failure(int ret, const char* during) {
  const int err = SSL_get_error(ssl_, ret);
  std::string why;
  if (err == SSL_ERROR_ZERO_RETURN) {
    why = "the peer closed the TLS session";
  } else {
    why = TakeOpenSslErrors(err == SSL_ERROR_SYSCALL ? "unexpected end of the TLS stream"
                                                     : "SSL error " + std::to_string(err));
  }
  // The certificate check's own verdict says more than "certificate verify failed".
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) why += " (peer certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
  failed_ = Status::IOError(std::string("TLS ") + during + " failed: " + why);
  return failed_;
}

Status TlsFilter::Handshake() {
  if (handshake_done_) return Status::Ok();
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    handshake_done_ = true;
    return Status::Ok();
  }
  const int err = SSL_get_error(ssl_, r);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::Ok();
  return Failure(r, "handshake");
}

Result<size_t> TlsFilter::OnRead(std::span<char> plain, size_t n) {
  if (!failed_.ok()) return failed_;
  if (n > 0) {
    // A memory BIO takes everything (it grows): never a short write.
    if (BIO_write(SSL_get_rbio(ssl_), cipher_in_.data(), static_cast<int>(n)) != static_cast<int>(n)) {
      return failed_ = Status::Internal("BIO_write: " + TakeOpenSslErrors());
    }
  }
  KVD_RETURN_IF_ERROR(Handshake());
  more_plain_ = false;
  if (!handshake_done_) return size_t{0};
  size_t got = 0;
  while (got < plain.size()) {
    size_t k = 0;
    ERR_clear_error();
    const int r = SSL_read_ex(ssl_, plain.data() + got, plain.size() - got, &k);
    if (r == 1) {
      got += k;
      continue;
    }
    const int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ) return got;  // the rest of a record has not arrived
    Status st = Failure(r, "read");
    // Hand over what was decrypted before the failure; the failure comes
    // with the next call.
    more_plain_ = got > 0;
    if (got > 0) return got;
    return st;
  }
  // Out of room: more may be decrypted without another socket read.
  more_plain_ = SSL_pending(ssl_) > 0 || BIO_ctrl_pending(SSL_get_rbio(ssl_)) > 0;
  return got;
}

std::string_view TlsFilter::OnWrite(std::string_view plain) {
  if (handshake_done_ && plain_out_.empty() && failed_.ok()) {
    // The common case: encrypt straight from the caller's buffer (no copy);
    // a failure is sticky and reported by TakeOutput.
    ERR_clear_error();
    size_t k = 0;
    if (const int r = SSL_write_ex(ssl_, plain.data(), plain.size(), &k); r != 1) (void)Failure(r, "write");
    return {};
  }
  plain_out_.append(plain);
  return {};
}

Status TlsFilter::TakeOutput(std::string* wire) {
  Status st = failed_;
  if (st.ok() && !handshake_done_) st = Handshake();
  if (st.ok() && handshake_done_ && !plain_out_.empty()) {
    ERR_clear_error();
    size_t k = 0;
    // Into a memory BIO the whole buffer is written at once (as records).
    const int r = SSL_write_ex(ssl_, plain_out_.data(), plain_out_.size(), &k);
    if (r == 1) {
      plain_out_.clear();
    } else {
      st = Failure(r, "write");
    }
  }
  // Whatever OpenSSL produced goes out, an alert after a failure included.
  BIO* out = SSL_get_wbio(ssl_);
  const size_t pending = BIO_ctrl_pending(out);
  if (pending > 0) {
    const size_t at = wire->size();
    wire->resize(at + pending);
    const int r = BIO_read(out, wire->data() + at, static_cast<int>(pending));
    wire->resize(at + static_cast<size_t>(std::max(r, 0)));
  }
  return st;
}

}  // namespace kvd::daemon
