// TLS to etcd ([cluster] etcd_ca_file, etcd_cert_file, etcd_key_file;
// docs/cluster.md "TLS to etcd"): which keys go together is checked with
// the config (CheckClusterConfig); the files themselves here, at start-up and
// by kvd --check-config, so a missing or wrong file stops kvd with a clear
// message instead of failing every etcd request later.
#pragma once

#include "cluster/curl_uv.h"
#include "config/config.h"
#include "kvd/status.h"

namespace kvd::daemon {

// OK when [cluster] is off or its endpoints are http://. Else each file is
// readable and holds what it should (a CA certificate; a certificate and
// the private key that matches it). Errors are kInvalidArgument naming the
// key and the file: "cluster.etcd_ca_file: CA /x/ca.pem: No such file or directory".
Status CheckEtcdTlsFiles(const ClusterConfig& c);

// The curl options of c's TLS keys (empty when the endpoints are http://).
CurlTls EtcdTlsOf(const ClusterConfig& c);

}  // namespace kvd::daemon
