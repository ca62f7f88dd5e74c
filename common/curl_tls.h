// TLS to etcd through libcurl, shared by kvd (daemon/cluster/) and kvctl
// (ctl/etcd_gateway): the same certificate rules on both sides, and the
// same reading of a failed handshake, each in its own option names.
// docs/cluster.md "TLS to etcd".
#pragma once

#include <curl/curl.h>

#include <string>
#include <string_view>

namespace kvd {

// Paths to PEM files, read by curl whenever it opens a connection. etcd's
// certificate must chain to ca_file (never the system store) and name the
// URL's address; cert_file/key_file, when set, are the client certificate.
struct CurlTls {
  std::string ca_file;    // "" = no TLS options set (plain http)
  std::string cert_file;  // "" = no client certificate
  std::string key_file;
  bool any() const { return !ca_file.empty() || !cert_file.empty() || !key_file.empty(); }
};

// How the user named the three files (config keys or command-line options),
// for the hints.
struct CurlTlsNames {
  std::string_view ca_file;
  std::string_view cert_file;
  std::string_view key_file;
};

// Sets verification against ca_file only, TLS 1.2 or newer, and the client
// certificate. Nothing when ca_file is empty.
void SetCurlTlsOptions(CURL* easy, const CurlTls& tls);

// What a failed transfer's TLS error most likely means, naming the files as
// `names` does; "" when it is not a TLS failure we can explain.
std::string CurlTlsHint(CURLcode result, std::string_view error, const CurlTlsNames& names);

}  // namespace kvd
