// [cluster] keys (docs/cluster.md): parsed and checked, with the [replication]
// keys a cluster node needs.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "config/config.h"

using kvd::daemon::ClusterConfig;
using kvd::daemon::ParseConfig;

TEST_CASE("[cluster] is off by default with a 5 s ttl") {
  auto c = ParseConfig("", "t.toml");
  REQUIRE(c.has_value());
  CHECK_FALSE(c->cluster.enabled());
  CHECK(c->cluster.prefix == "/kvd/default");
  CHECK(c->cluster.ttl == std::chrono::seconds(5));
}

TEST_CASE("[cluster] accepts IP endpoints, a prefix and whole-second ttls") {
  auto c = ParseConfig(
      "[cluster]\netcd_endpoints = \"http://127.0.0.1:2379, http://[::1]:22379/\"\nprefix = \"/kvd/main\"\n"
      "ttl = \"3s\"\n[replication]\nname = \"a\"\nlisten = \"127.0.0.1:7001\"\n",
      "t.toml");
  REQUIRE_MESSAGE(c.has_value(), c.error().ToString());
  CHECK(c->cluster.enabled());
  CHECK(c->cluster.prefix == "/kvd/main");
  CHECK(c->cluster.ttl == std::chrono::seconds(3));
  auto eps = kvd::daemon::ParseEtcdEndpoints(c->cluster.etcd_endpoints);
  REQUIRE(eps.has_value());
  REQUIRE(eps->size() == 2);
  CHECK((*eps)[0] == "http://127.0.0.1:2379");
  CHECK((*eps)[1] == "http://[::1]:22379");
}

TEST_CASE("[cluster] refuses what it cannot use, naming the key") {
  struct Bad {
    const char* toml;
    const char* says;
  };
  for (const Bad& b : {
           Bad{"etcd_endpoints = \"127.0.0.1:2379\"", "is not http://IP:PORT or https://IP:PORT"},
           Bad{"etcd_endpoints = \"http://etcd.example:2379\"", "cluster.etcd_endpoints"},
           Bad{"etcd_endpoints = \"http://127.0.0.1:2379,,http://127.0.0.1:2380\"", "an empty entry"},
           Bad{"prefix = \"kvd\"", "must start with '/'"},
           Bad{"prefix = \"/kvd/\"", "not end with one"},
           Bad{"prefix = \"/kvd main\"", "no spaces"},
           Bad{"ttl = \"2500ms\"", "whole seconds"},
           Bad{"ttl = \"1s\"", "cluster.ttl"},
           Bad{"ttl = \"2m\"", "cluster.ttl"},
       }) {
    auto c = ParseConfig(std::string("[cluster]\n") + b.toml + "\n", "t.toml");
    REQUIRE_MESSAGE(!c.has_value(), b.toml);
    CHECK_MESSAGE(c.error().message().find(b.says) != std::string::npos, b.toml, " -> ", c.error().message());
  }
}

TEST_CASE("[cluster] needs [replication] name and a fixed listen port, and refuses a configured role") {
  const std::string cluster = "[cluster]\netcd_endpoints = \"http://127.0.0.1:2379\"\n[replication]\n";
  struct Case {
    const char* repl;
    const char* says;  // nullptr: accepted
  };
  for (const Case& k : {
           Case{"name = \"a\"\nlisten = \"127.0.0.1:7001\"\n", nullptr},
           Case{"listen = \"127.0.0.1:7001\"\n", "replication.name"},
           Case{"name = \"a\"\n", "replication.listen"},
           Case{"name = \"a\"\nlisten = \"127.0.0.1:0\"\n", "fixed port"},
           Case{"name = \"a\"\nlisten = \"127.0.0.1:7001\"\nrole = \"replica\"\nprimary = \"127.0.0.1:7002\"\n",
                "etcd decides"},
       }) {
    auto c = ParseConfig(cluster + k.repl, "t.toml");
    if (k.says == nullptr) {
      CHECK_MESSAGE(c.has_value(), k.repl, " -> ", c.has_value() ? "" : c.error().message());
      continue;
    }
    REQUIRE_MESSAGE(!c.has_value(), k.repl);
    CHECK_MESSAGE(c.error().message().find(k.says) != std::string::npos, k.repl, " -> ", c.error().message());
  }
}

TEST_CASE("[cluster] TLS to etcd: https endpoints with a CA, a client certificate as a pair, no mix") {
  const std::string repl = "[replication]\nname = \"a\"\nlisten = \"127.0.0.1:7001\"\n";
  auto ok = ParseConfig(
      "[cluster]\netcd_endpoints = \"https://127.0.0.1:2379,https://127.0.0.1:22379/\"\n"
      "etcd_ca_file = \"/etc/kvd/ca.pem\"\netcd_cert_file = \"c.pem\"\netcd_key_file = \"c.key\"\n" + repl,
      "t.toml");
  REQUIRE_MESSAGE(ok.has_value(), ok.error().ToString());
  CHECK(ok->cluster.etcd_ca_file == "/etc/kvd/ca.pem");
  CHECK(ok->cluster.etcd_cert_file == "c.pem");
  CHECK(ok->cluster.etcd_key_file == "c.key");
  auto eps = kvd::daemon::ParseEtcdEndpoints(ok->cluster.etcd_endpoints);
  REQUIRE(eps.has_value());
  CHECK(*eps == std::vector<std::string>{"https://127.0.0.1:2379", "https://127.0.0.1:22379"});
  // A CA alone: etcd without --client-cert-auth.
  auto ca_only = ParseConfig(
      "[cluster]\netcd_endpoints = \"https://127.0.0.1:2379\"\netcd_ca_file = \"ca.pem\"\n" + repl, "t.toml");
  const std::string why = ca_only.has_value() ? "" : ca_only.error().message();
  CHECK_MESSAGE(ca_only.has_value(), why);

  struct Bad {
    const char* cluster;
    const char* says;
  };
  for (const Bad& b : {
           Bad{"etcd_endpoints = \"https://127.0.0.1:2379\"", "cluster.etcd_ca_file: required with https://"},
           Bad{"etcd_endpoints = \"https://127.0.0.1:2379\"\netcd_ca_file = \"ca.pem\"\netcd_cert_file = \"c.pem\"",
               "set both"},
           Bad{"etcd_endpoints = \"https://127.0.0.1:2379\"\netcd_ca_file = \"ca.pem\"\netcd_key_file = \"c.key\"",
               "set both"},
           Bad{"etcd_endpoints = \"https://127.0.0.1:2379,http://127.0.0.1:22379\"\netcd_ca_file = \"ca.pem\"",
               "http:// and https:// mixed"},
           Bad{"etcd_endpoints = \"http://127.0.0.1:2379,https://127.0.0.1:22379\"", "http:// and https:// mixed"},
           Bad{"etcd_endpoints = \"http://127.0.0.1:2379\"\netcd_ca_file = \"ca.pem\"", "only with https://"},
           Bad{"etcd_endpoints = \"https://etcd.example:2379\"\netcd_ca_file = \"ca.pem\"", "cluster.etcd_endpoints"},
       }) {
    auto c = ParseConfig(std::string("[cluster]\n") + b.cluster + "\n" + repl, "t.toml");
    REQUIRE_MESSAGE(!c.has_value(), b.cluster);
    CHECK_MESSAGE(c.error().message().find(b.says) != std::string::npos, b.cluster, " -> ", c.error().message());
  }
  // The TLS keys are restart-only, like every [cluster] key.
  for (const char* key : {"cluster.etcd_ca_file", "cluster.etcd_cert_file", "cluster.etcd_key_file"}) {
    CHECK_FALSE(kvd::daemon::IsRuntimeKey(key));
  }
}
