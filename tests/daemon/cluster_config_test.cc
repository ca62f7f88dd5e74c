// [cluster] keys (docs/cluster.md): parsed and checked; not yet active.
#include <doctest/doctest.h>

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
      "ttl = \"3s\"\n",
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
           Bad{"etcd_endpoints = \"https://127.0.0.1:2379\"", "TLS to etcd is not built yet"},
           Bad{"etcd_endpoints = \"127.0.0.1:2379\"", "is not http://IP:PORT"},
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
