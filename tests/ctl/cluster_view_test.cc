// Decoding the cluster's etcd keys (docs/cluster.md §2) and rendering
// `kvctl cluster status`.
#include "cluster_view.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cluster_status.h"

using namespace kvctl;

namespace {

etcd::KeyValue Kv(std::string key, std::string value, int64_t create = 1) {
  etcd::KeyValue kv;
  kv.key = std::move(key);
  kv.value = std::move(value);
  kv.create_revision = create;
  kv.mod_revision = create;
  return kv;
}

etcd::RangeResult ThreeNodes() {
  etcd::RangeResult r;
  r.revision = 90;
  r.kvs = {
      Kv("/kvd/t/leader", "a", 41),
      Kv("/kvd/t/members/a", R"({"name":"a","address":"/run/a.sock","repl_address":"127.0.0.1:7001",)"
                             R"("role":"primary","epoch":41,"durable_lsn":1000,"applied_lsn":1000,"updated_ms":5000})"),
      Kv("/kvd/t/members/b", R"({"name":"b","address":"/run/b.sock","repl_address":"127.0.0.1:7002",)"
                             R"("role":"replica","epoch":41,"durable_lsn":990,"applied_lsn":985,"updated_ms":4500})"),
      Kv("/kvd/t/members/c", "{broken"),
      Kv("/kvd/t/sync", R"({"epoch":41,"members":["b"],"sync_replicas":1})"),
      Kv("/kvd/t/switchover", R"({"from":"a","to":"b"})"),
      Kv("/kvd/tother/leader", "z", 3),  // another cluster's prefix shares the bytes "/kvd/t"
  };
  return r;
}

}  // namespace

TEST_CASE("the view decodes leader, epoch, members, sync set and switchover") {
  const ClusterView v = BuildClusterView("/kvd/t", ThreeNodes());
  CHECK(v.revision == 90);
  REQUIRE(v.leader.has_value());
  CHECK(*v.leader == "a");
  CHECK(v.epoch == 41);
  REQUIRE(v.members.size() == 3);
  const ClusterMember* b = v.Member("b");
  REQUIRE(b != nullptr);
  CHECK(b->address == "/run/b.sock");
  CHECK(b->repl_address == "127.0.0.1:7002");
  CHECK(b->role == "replica");
  CHECK(b->durable_lsn == 990);
  CHECK(b->applied_lsn == 985);
  CHECK(b->updated_ms == 4500);
  // A member whose value does not decode is kept, with the reason.
  const ClusterMember* c = v.Member("c");
  REQUIRE(c != nullptr);
  CHECK_FALSE(c->error.empty());
  REQUIRE(v.Primary() != nullptr);
  CHECK(v.Primary()->name == "a");
  REQUIRE(v.sync.has_value());
  CHECK(v.sync->members == std::vector<std::string>{"b"});
  CHECK(v.sync->sync_replicas == 1);
  REQUIRE(v.switchover.has_value());
  CHECK(v.switchover->to == "b");
  CHECK(LagOf(v, *b) == 10u);
  CHECK(LagOf(v, *v.Primary()) == 0u);
  CHECK_FALSE(LagOf(v, *c).has_value());
}

TEST_CASE("no leader: no primary and no lag") {
  etcd::RangeResult r = ThreeNodes();
  r.kvs.erase(r.kvs.begin());
  const ClusterView v = BuildClusterView("/kvd/t", r);
  CHECK_FALSE(v.leader.has_value());
  CHECK(v.Primary() == nullptr);
  CHECK_FALSE(LagOf(v, *v.Member("b")).has_value());
}

TEST_CASE("member fields: int64s may come as strings; wrong types are refused") {
  auto m = ParseMember("x", R"({"durable_lsn":"18446744073709551","epoch":2})");
  REQUIRE(m.has_value());
  CHECK(m->durable_lsn == 18446744073709551ull);
  CHECK_FALSE(ParseMember("x", R"({"durable_lsn":-1})").has_value());
  CHECK_FALSE(ParseMember("x", R"({"address":7})").has_value());
  CHECK_FALSE(ParseSync(R"({"members":"b"})").has_value());
  CHECK(NormalizePrefix("/kvd/main/").value() == "/kvd/main");
  CHECK_FALSE(NormalizePrefix("/").has_value());
}

TEST_CASE("cluster status JSON: the documented members") {
  ClusterStatus s;
  s.view = BuildClusterView("/kvd/t", ThreeNodes());
  s.now_ms = 6000;
  EtcdEndpointHealth up;
  up.endpoint = "http://127.0.0.1:1";
  up.reachable = true;
  up.status = {"11", "11", 4, 20480, "3.4.23"};
  EtcdEndpointHealth down;
  down.endpoint = "http://127.0.0.1:2";
  down.error = "Couldn't connect to server";
  s.etcd = {up, down};
  const auto j = nlohmann::json::parse(RenderClusterStatusJson(s));
  CHECK(j["prefix"] == "/kvd/t");
  CHECK(j["leader"]["name"] == "a");
  CHECK(j["leader"]["epoch"] == 41);
  REQUIRE(j["members"].size() == 3);
  const auto& b = j["members"][1];
  CHECK(b["name"] == "b");
  CHECK(b["role"] == "replica");
  CHECK(b["lag_lsn"] == 10);
  CHECK(b["age_ms"] == 1500);
  CHECK(b["in_sync_set"] == true);
  CHECK(b["is_leader"] == false);
  CHECK(j["members"][0]["is_leader"] == true);
  CHECK(j["members"][2]["error"].is_string());
  CHECK(j["sync"]["members"][0] == "b");
  CHECK(j["switchover"]["to"] == "b");
  CHECK(j["etcd"][0]["reachable"] == true);
  CHECK(j["etcd"][0]["is_leader"] == true);
  CHECK(j["etcd"][0]["raft_term"] == 4);
  CHECK(j["etcd"][0]["db_size"] == 20480);
  CHECK(j["etcd"][1]["reachable"] == false);
  CHECK(j["etcd"][1]["error"] == "Couldn't connect to server");

  const std::string text = RenderClusterStatusText(s);
  CHECK(text.find("primary: a  epoch 41\n") != std::string::npos);
  CHECK(text.find("sync set: [b]  sync_replicas 1") != std::string::npos);
  CHECK(text.find("switchover requested: a -> b") != std::string::npos);
  CHECK(text.find("a*") != std::string::npos);
  CHECK(text.find("unreachable: Couldn't connect") != std::string::npos);
  CHECK(text.find("ok (leader)") != std::string::npos);
}
