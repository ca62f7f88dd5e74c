// TLS to etcd, the daemon's side without etcd: the [cluster] TLS files
// checked at start-up (CheckEtcdTlsFiles), and the hints a failed transfer's
// error gets (CurlMulti::TlsHint). The handshake itself is exercised against
// a real etcd by tests/cluster/test_cluster_etcd_tls.py. Certificates come
// from tests/util/make_test_certs.sh (a throw-away CA, the openssl CLI).
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "cluster/etcd_tls.h"
#include "util/temp_dir.h"

namespace kvd::daemon {
namespace {

struct Certs {
  test::TempDir dir{"etcdtls"};
  Certs() {
    const std::string cmd =
        std::string("sh ") + KVD_SOURCE_DIR + "/tests/util/make_test_certs.sh " + dir.path() + " >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  ClusterConfig Cluster(const std::string& ca, const std::string& cert = "", const std::string& key = "") const {
    ClusterConfig c;
    c.etcd_endpoints = "https://127.0.0.1:2379";
    c.etcd_ca_file = ca.empty() ? "" : dir / ca;
    c.etcd_cert_file = cert.empty() ? "" : dir / cert;
    c.etcd_key_file = key.empty() ? "" : dir / key;
    return c;
  }
};

std::string ErrorOf(const ClusterConfig& c) {
  const Status st = CheckEtcdTlsFiles(c);
  return st.ok() ? "" : st.message();
}

}  // namespace

TEST_CASE("CheckEtcdTlsFiles: good files pass; off or http needs none") {
  Certs certs;
  CHECK(CheckEtcdTlsFiles(certs.Cluster("ca.crt")).ok());
  CHECK(CheckEtcdTlsFiles(certs.Cluster("ca.crt", "p.crt", "p.key")).ok());
  ClusterConfig off;
  CHECK(CheckEtcdTlsFiles(off).ok());
  ClusterConfig http;
  http.etcd_endpoints = "http://127.0.0.1:2379";
  CHECK(CheckEtcdTlsFiles(http).ok());

  const CurlTls tls = EtcdTlsOf(certs.Cluster("ca.crt", "p.crt", "p.key"));
  CHECK(tls.ca_file == certs.dir / "ca.crt");
  CHECK(tls.cert_file == certs.dir / "p.crt");
  CHECK(tls.key_file == certs.dir / "p.key");
  CHECK(EtcdTlsOf(http).ca_file.empty());
}

TEST_CASE("CheckEtcdTlsFiles: a missing CA, a CA file without a certificate, a key of another certificate") {
  Certs certs;
  std::string e = ErrorOf(certs.Cluster("nope.crt"));
  CHECK_MESSAGE(e.find("cluster.etcd_ca_file: CA " + certs.dir / "nope.crt" + ": No such file") == 0, e);

  std::ofstream(certs.dir / "junk.pem") << "not a certificate\n";
  e = ErrorOf(certs.Cluster("junk.pem"));
  CHECK_MESSAGE(e.find("cluster.etcd_ca_file: CA " + certs.dir / "junk.pem") == 0, e);

  e = ErrorOf(certs.Cluster("ca.crt", "nope.crt", "p.key"));
  CHECK_MESSAGE(e.find("cluster.etcd_cert_file/etcd_key_file: certificate " + certs.dir / "nope.crt") == 0, e);

  e = ErrorOf(certs.Cluster("ca.crt", "p.crt", "r1.key"));
  CHECK_MESSAGE(e.find("private key " + certs.dir / "r1.key" + " does not match the certificate") != std::string::npos,
                e);
}

TEST_CASE("CurlMulti::TlsHint names what TLS refused, and nothing for other failures") {
  CHECK(CurlMulti::TlsHint(CURLE_PEER_FAILED_VERIFICATION, "SSL certificate problem: unable to get local issuer")
            .find("certificate verification failed") != std::string::npos);
  // etcd --client-cert-auth refusing: TLS 1.3 reports it on the first read.
  const std::string refused = CurlMulti::TlsHint(
      CURLE_RECV_ERROR, "OpenSSL SSL_read: error:0A000412:SSL routines::sslv3 alert bad certificate, errno 0");
  CHECK(refused.find("client certificate") != std::string::npos);
  CHECK(CurlMulti::TlsHint(CURLE_SSL_CONNECT_ERROR, "alert certificate required").find("client certificate") !=
        std::string::npos);
  CHECK(CurlMulti::TlsHint(CURLE_SSL_CONNECT_ERROR, "wrong version number") == "TLS handshake failed");
  CHECK(CurlMulti::TlsHint(CURLE_RECV_ERROR, "Connection reset by peer").empty());
  CHECK(CurlMulti::TlsHint(CURLE_COULDNT_CONNECT, "Connection refused").empty());
  CHECK(CurlMulti::TlsHint(CURLE_OPERATION_TIMEDOUT, "").empty());
  CHECK(CurlMulti::TlsHint(CURLE_SSL_CERTPROBLEM, "") ==
        "TLS: cannot use cluster.etcd_cert_file/cluster.etcd_key_file");
}

TEST_CASE("kvctl's hints name its own options (the rules are shared with kvd)") {
  const CurlTlsNames kvctl{"--etcd-cacert", "--etcd-cert", "--etcd-key"};
  CHECK(CurlTlsHint(CURLE_SSL_CACERT_BADFILE, "", kvctl) == "TLS: cannot use --etcd-cacert");
  CHECK(CurlTlsHint(CURLE_SSL_CERTPROBLEM, "", kvctl) == "TLS: cannot use --etcd-cert/--etcd-key");
  const std::string refused = CurlTlsHint(CURLE_SSL_CONNECT_ERROR, "tlsv13 alert certificate required", kvctl);
  CHECK_MESSAGE(refused.find("(--etcd-cert, --etcd-key)") != std::string::npos, refused);
}

}  // namespace kvd::daemon
