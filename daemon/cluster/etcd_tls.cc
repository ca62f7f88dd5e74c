#include "cluster/etcd_tls.h"

#include "net/tls_context.h"

namespace kvd::daemon {

Status CheckEtcdTlsFiles(const ClusterConfig& c) {
  if (!c.enabled() || c.etcd_ca_file.empty()) return Status::Ok();
  Status st = CheckCaFile(c.etcd_ca_file);
  if (!st.ok()) return Status::InvalidArgument("cluster.etcd_ca_file: " + st.message());
  if (c.etcd_cert_file.empty()) return Status::Ok();
  // The replication link's loader checks the same things of a certificate
  // and key (readable, PEM, the key matches); its errors name the file.
  auto ctx = TlsContext::Create({c.etcd_cert_file, c.etcd_key_file, c.etcd_ca_file});
  if (!ctx) return Status::InvalidArgument("cluster.etcd_cert_file/etcd_key_file: " + ctx.error().message());
  return Status::Ok();
}

CurlTls EtcdTlsOf(const ClusterConfig& c) {
  if (c.etcd_ca_file.empty()) return {};
  return CurlTls{c.etcd_ca_file, c.etcd_cert_file, c.etcd_key_file};
}

}  // namespace kvd::daemon
