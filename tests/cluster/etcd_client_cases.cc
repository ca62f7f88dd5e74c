// EtcdClient against a real 3-member etcd cluster: key/value and txn,
// leases, watches, failover to another member, fork safety and request
// timeouts. The leader-lease cases of the same program are in
// etcd_lease_cases.cc, the helpers both use in etcd_cases.h.
//
// Not a ctest of its own: tests/cluster/test_etcd_client.py starts the
// cluster (etcd_cluster.py), runs one case per process with
// KVD_ETCD_ENDPOINTS (comma-separated URLs) and KVD_ETCD_PIDS (their pids,
// same order, so a case may kill members the harness started), and restarts
// what a case killed before the next one.
#include <doctest/doctest.h>

#include "etcd_cases.h"

using namespace etcd_cases;

TEST_CASE("kv: put, range, prefix, delete and txn compare-and-swap") {
  Loop loop;
  auto c = MakeClient(loop);
  const std::string p = Prefix("kv");
  auto put = loop.Await<int64_t>([&](auto cb) { c->Put(p + "/k", "v1", 0, cb); });
  REQUIRE(put.has_value());
  auto got = loop.Await<EtcdRange>([&](auto cb) { c->Range(p + "/k", {}, cb); });
  REQUIRE(got.has_value());
  REQUIRE(got->kvs.size() == 1);
  CHECK(got->kvs[0].value == "v1");
  CHECK(got->kvs[0].mod_revision == *put);

  // CAS on the value: the wrong expectation fails and reads the current value.
  EtcdTxnRequest wrong;
  wrong.compare.push_back({p + "/k", EtcdCompare::Target::kValue, EtcdCompare::Op::kEqual, 0, "nope"});
  wrong.success.push_back(EtcdOp::Put(p + "/k", "bad"));
  wrong.failure.push_back(EtcdOp::Get(p + "/k"));
  auto t1 = loop.Await<EtcdTxnResult>([&](auto cb) { c->Txn(wrong, cb); });
  REQUIRE(t1.has_value());
  CHECK_FALSE(t1->succeeded);
  REQUIRE(t1->ranges.size() == 1);
  CHECK(t1->ranges[0].kvs.at(0).value == "v1");
  // CAS on mod_revision: succeeds once, a replay with the same revision fails.
  EtcdTxnRequest cas;
  cas.compare.push_back({p + "/k", EtcdCompare::Target::kMod, EtcdCompare::Op::kEqual, *put, {}});
  cas.success.push_back(EtcdOp::Put(p + "/k", "v2"));
  auto t2 = loop.Await<EtcdTxnResult>([&](auto cb) { c->Txn(cas, cb); });
  REQUIRE(t2.has_value());
  CHECK(t2->succeeded);
  CHECK(t2->revision > *put);
  auto t3 = loop.Await<EtcdTxnResult>([&](auto cb) { c->Txn(cas, cb); });
  REQUIRE(t3.has_value());
  CHECK_FALSE(t3->succeeded);
  got = loop.Await<EtcdRange>([&](auto cb) { c->Range(p + "/k", {}, cb); });
  CHECK(got->kvs.at(0).value == "v2");

  // create_revision == 0: only the first creator wins (the leader-key primitive).
  EtcdTxnRequest create;
  create.compare.push_back({p + "/leader", EtcdCompare::Target::kCreate, EtcdCompare::Op::kEqual, 0, {}});
  create.success.push_back(EtcdOp::Put(p + "/leader", "first"));
  create.failure.push_back(EtcdOp::Get(p + "/leader"));
  auto c1 = loop.Await<EtcdTxnResult>([&](auto cb) { c->Txn(create, cb); });
  create.success[0].value = "second";
  auto c2 = loop.Await<EtcdTxnResult>([&](auto cb) { c->Txn(create, cb); });
  REQUIRE(c1.has_value());
  REQUIRE(c2.has_value());
  CHECK(c1->succeeded);
  CHECK_FALSE(c2->succeeded);
  CHECK(c2->ranges.at(0).kvs.at(0).value == "first");
  CHECK(c2->ranges.at(0).kvs.at(0).create_revision == c1->revision);

  for (const char* k : {"/a", "/b"}) REQUIRE(loop.Await<int64_t>([&](auto cb) { c->Put(p + k, k, 0, cb); }));
  auto all = loop.Await<EtcdRange>([&](auto cb) { c->RangePrefix(p + "/", cb); });
  REQUIRE(all.has_value());
  REQUIRE(all->kvs.size() == 4);  // /a /b /k /leader, in key order
  CHECK(all->kvs[0].key == p + "/a");
  CHECK(all->kvs[3].key == p + "/leader");
  REQUIRE(loop.Await<int64_t>([&](auto cb) { c->Delete(p + "/", EtcdPrefixEnd(p + "/"), cb); }));
  all = loop.Await<EtcdRange>([&](auto cb) { c->RangePrefix(p + "/", cb); });
  CHECK(all->kvs.empty());
}

TEST_CASE("lease: a key on an unrenewed lease disappears after the TTL; keepalive holds it; revoke drops it") {
  Loop loop;
  auto c = MakeClient(loop);
  const std::string p = Prefix("lease");
  auto lease = loop.Await<EtcdLease>([&](auto cb) { c->LeaseGrant(2, cb); });
  REQUIRE(lease.has_value());
  CHECK(lease->ttl_seconds == 2);
  const auto granted = Clock::now();
  REQUIRE(loop.Await<int64_t>([&](auto cb) { c->Put(p + "/eph", "x", lease->id, cb); }));
  auto got = loop.Await<EtcdRange>([&](auto cb) { c->Range(p + "/eph", {}, cb); });
  REQUIRE(got->kvs.size() == 1);
  CHECK(got->kvs[0].lease == lease->id);
  // The DELETE arrives through a watch: no polling.
  std::optional<Clock::time_point> deleted;
  auto w = c->Watch(p + "/eph", {}, 0, [&](Result<EtcdWatchBatch> b) {
    if (!b) return;
    for (auto& ev : b->events) {
      if (ev.type == EtcdWatchEvent::Type::kDelete) deleted = Clock::now();
    }
  });
  REQUIRE(loop.RunUntil([&] { return deleted.has_value(); }, milliseconds(8000)));
  const double after = Seconds(*deleted - granted);
  MESSAGE("key on a 2 s lease disappeared after " << after << " s");
  CHECK(after >= 1.9);
  CHECK(after <= 4.0);
  auto gone = loop.Await<EtcdLease>([&](auto cb) { c->LeaseKeepAlive(lease->id, {}, cb); });
  REQUIRE(gone.has_value());
  CHECK(gone->ttl_seconds == 0);

  // Renewed every 500 ms for 4 s (twice the TTL), the key stays.
  auto held = loop.Await<EtcdLease>([&](auto cb) { c->LeaseGrant(2, cb); });
  REQUIRE(loop.Await<int64_t>([&](auto cb) { c->Put(p + "/held", "y", held->id, cb); }));
  for (int i = 0; i < 8; i++) {
    loop.RunFor(milliseconds(500));
    auto ka = loop.Await<EtcdLease>([&](auto cb) { c->LeaseKeepAlive(held->id, {}, cb); });
    REQUIRE(ka.has_value());
    CHECK(ka->ttl_seconds == 2);
  }
  got = loop.Await<EtcdRange>([&](auto cb) { c->Range(p + "/held", {}, cb); });
  CHECK(got->kvs.size() == 1);
  REQUIRE(loop.Await<int64_t>([&](auto cb) { c->LeaseRevoke(held->id, cb); }));
  got = loop.Await<EtcdRange>([&](auto cb) { c->Range(p + "/held", {}, cb); });
  CHECK(got->kvs.empty());
}

TEST_CASE("watch: puts and deletes under a prefix arrive in order; a start revision replays history") {
  Loop loop;
  auto c = MakeClient(loop);
  const std::string p = Prefix("watch");
  std::vector<EtcdWatchEvent> seen;
  auto w = c->Watch(p + "/", EtcdPrefixEnd(p + "/"), 0, [&](Result<EtcdWatchBatch> b) {
    if (b) seen.insert(seen.end(), b->events.begin(), b->events.end());
  });
  // The watch is "from now" once etcd confirmed it.
  REQUIRE(loop.RunUntil([&] { return w->next_revision() > 0; }, milliseconds(5000)));
  auto first = loop.Await<int64_t>([&](auto cb) { c->Put(p + "/1", "one", 0, cb); });
  REQUIRE(first.has_value());
  REQUIRE(loop.Await<int64_t>([&](auto cb) { c->Put(p + "/2", "two", 0, cb); }));
  REQUIRE(loop.Await<int64_t>([&](auto cb) { c->Put("/kvd-test/outside", "no", 0, cb); }));
  REQUIRE(loop.Await<int64_t>([&](auto cb) { c->Delete(p + "/1", {}, cb); }));
  REQUIRE(loop.RunUntil([&] { return seen.size() >= 3; }, milliseconds(5000)));
  loop.RunFor(milliseconds(200));  // nothing else may come
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].kv.key == p + "/1");
  CHECK(seen[0].kv.value == "one");
  CHECK(seen[1].kv.value == "two");
  CHECK(seen[2].type == EtcdWatchEvent::Type::kDelete);
  CHECK(seen[2].kv.key == p + "/1");

  std::vector<EtcdWatchEvent> replay;
  auto w2 = c->Watch(p + "/", EtcdPrefixEnd(p + "/"), *first, [&](Result<EtcdWatchBatch> b) {
    if (b) replay.insert(replay.end(), b->events.begin(), b->events.end());
  });
  REQUIRE(loop.RunUntil([&] { return replay.size() >= 3; }, milliseconds(5000)));
  CHECK(replay[0].kv.mod_revision == *first);
  CHECK(replay[2].type == EtcdWatchEvent::Type::kDelete);
}

TEST_CASE("failover: with the first member killed, requests and a watch move to the others") {
  Loop loop;
  // The victim is an etcd follower, listed first: this case is about the
  // client moving on, not about an etcd election (the etcd leader kill cases).
  size_t victim = 0;
  {
    auto probe = MakeClient(loop);
    victim = (FindEtcdLeader(loop, probe.get()) + 1) % 3;
  }
  std::vector<std::string> eps;
  for (size_t i = 0; i < 3; i++) eps.push_back(Endpoints()[(victim + i) % 3]);
  auto c = MakeClient(loop, eps);
  const std::string p = Prefix("failover");
  REQUIRE(c->current_endpoint() == eps[0]);
  MESSAGE("victim " << eps[0] << ", then " << eps[1] << ", " << eps[2]);
  std::vector<EtcdWatchEvent> seen;
  std::vector<std::string> errors;
  auto w = c->Watch(p + "/", EtcdPrefixEnd(p + "/"), 0, [&](Result<EtcdWatchBatch> b) {
    if (!b) {
      errors.push_back(b.error().ToString());
      return;
    }
    seen.insert(seen.end(), b->events.begin(), b->events.end());
  });
  REQUIRE(loop.RunUntil([&] { return w->next_revision() > 0; }, milliseconds(5000)));
  KillAndWait(Pid(victim), eps[0]);  // the member the client and the watch use
  auto put = loop.Await<int64_t>([&](auto cb) { c->Put(p + "/after-kill", "v", 0, cb); });
  REQUIRE_MESSAGE(put.has_value(), put.error().ToString());
  CHECK(c->current_endpoint() != eps[0]);
  REQUIRE(loop.RunUntil([&] { return !seen.empty(); }, milliseconds(10000)));
  CHECK(seen[0].kv.value == "v");
  CHECK(w->reconnects() >= 1);
  REQUIRE_FALSE(errors.empty());
  MESSAGE("watch errors while failing over: " << errors.front());
  // Only the dead member: a clear error naming it.
  auto dead = MakeClient(loop, {eps[0]});
  auto r = loop.Await<int64_t>([&](auto cb) { dead->Put(p + "/x", "v", 0, cb); });
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == Code::kIOError);
  CHECK(r.error().message().find(eps[0]) != std::string::npos);
  MESSAGE("with no member reachable: " << r.error().ToString());
}

TEST_CASE("fork: a child that closes its descriptors and exits leaves the parent's connections working") {
  // The snapshot child's shape (node/snapshot_child.cc): fork with transfers
  // open, close every inherited descriptor, _exit; never touch curl.
  Loop loop;
  auto c = MakeClient(loop);
  const std::string p = Prefix("fork");
  std::vector<EtcdWatchEvent> seen;
  auto w = c->Watch(p + "/", EtcdPrefixEnd(p + "/"), 0, [&](Result<EtcdWatchBatch> b) {
    if (b) seen.insert(seen.end(), b->events.begin(), b->events.end());
  });
  REQUIRE(loop.RunUntil([&] { return w->next_revision() > 0; }, milliseconds(5000)));
  REQUIRE(loop.Await<int64_t>([&](auto cb) { c->Put(p + "/before", "1", 0, cb); }));  // a pooled connection
  std::optional<Result<int64_t>> in_flight;
  c->Put(p + "/during", "2", 0, [&](Result<int64_t> r) { in_flight.emplace(std::move(r)); });
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    for (int fd = 3; fd < 1024; fd++) ::close(fd);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  REQUIRE(loop.RunUntil([&] { return in_flight.has_value(); }, milliseconds(5000)));
  CHECK(in_flight->has_value());
  REQUIRE(loop.Await<int64_t>([&](auto cb) { c->Put(p + "/after", "3", 0, cb); }));
  REQUIRE(loop.RunUntil([&] { return seen.size() >= 3; }, milliseconds(5000)));
  CHECK(seen[2].kv.value == "3");
  CHECK(w->reconnects() == 0);  // the stream survived the child
}

TEST_CASE("timeout: a member that accepts and never answers fails the request in time") {
  Loop loop;
  Blackhole hole;
  EtcdClientOptions o;
  o.endpoints = {hole.url};
  o.request_timeout = milliseconds(300);
  auto c = EtcdClient::Create(loop.get(), o);
  REQUIRE(c.has_value());
  const auto t0 = Clock::now();
  auto r = loop.Await<EtcdRange>([&](auto cb) { (*c)->Range("k", {}, cb); });
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message().find("outcome is unknown") != std::string::npos);
  CHECK(Seconds(Clock::now() - t0) < 1.5);
}
