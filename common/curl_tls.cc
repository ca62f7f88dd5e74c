#include "curl_tls.h"

namespace kvd {

void SetCurlTlsOptions(CURL* easy, const CurlTls& tls) {
  if (tls.ca_file.empty()) return;
  curl_easy_setopt(easy, CURLOPT_CAINFO, tls.ca_file.c_str());
  curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);  // only ca_file, not the system directory
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(easy, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  if (!tls.cert_file.empty()) {
    curl_easy_setopt(easy, CURLOPT_SSLCERT, tls.cert_file.c_str());
    curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(easy, CURLOPT_SSLKEY, tls.key_file.c_str());
    curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
  }
}

std::string CurlTlsHint(CURLcode result, std::string_view error, const CurlTlsNames& names) {
  // A TLS alert about certificates from etcd: with --client-cert-auth it
  // refuses a missing client certificate or one its CA did not sign (TLS
  // 1.3 reports that only on the first read, as a receive error).
  const bool cert_alert = error.find("alert") != std::string_view::npos &&
                          (error.find("certificate") != std::string_view::npos ||
                           error.find("unknown ca") != std::string_view::npos);
  switch (result) {
    case CURLE_PEER_FAILED_VERIFICATION:
      return "TLS: certificate verification failed: etcd's certificate is not signed by " +
             std::string(names.ca_file) + ", or does not name this endpoint's address";
    case CURLE_SSL_CACERT_BADFILE: return "TLS: cannot use " + std::string(names.ca_file);
    case CURLE_SSL_CERTPROBLEM:
      return "TLS: cannot use " + std::string(names.cert_file) + "/" + std::string(names.key_file);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
      if (cert_alert) {
        return "TLS: etcd refused this client: it wants a client certificate signed by a CA it trusts (" +
               std::string(names.cert_file) + ", " + std::string(names.key_file) + ")";
      }
      return result == CURLE_SSL_CONNECT_ERROR ? "TLS handshake failed" : "";
    default: return "";
  }
}

}  // namespace kvd
