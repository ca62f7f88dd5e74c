// EtcdClient and LeaderLease against a real 3-member etcd cluster.
//
// Not a ctest of its own: tests/cluster/test_etcd_client.py starts the
// cluster (etcd_cluster.py), runs one case per process with
// KVD_ETCD_ENDPOINTS (comma-separated URLs) and KVD_ETCD_PIDS (their pids,
// same order, so a case may kill members the harness started), and restarts
// what a case killed before the next one.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cluster/etcd_client.h"
#include "cluster/etcd_watch.h"
#include "cluster/leader_lease.h"

using namespace kvd;
using namespace kvd::daemon;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

std::vector<std::string> Split(const char* s) {
  std::vector<std::string> out;
  std::stringstream ss(s != nullptr ? s : "");
  for (std::string part; std::getline(ss, part, ',');) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

std::vector<std::string> Endpoints() {
  auto eps = Split(std::getenv("KVD_ETCD_ENDPOINTS"));
  REQUIRE_MESSAGE(eps.size() == 3, "run through tests/cluster/test_etcd_client.py");
  return eps;
}

pid_t Pid(size_t i) {
  auto pids = Split(std::getenv("KVD_ETCD_PIDS"));
  REQUIRE(pids.size() > i);
  return static_cast<pid_t>(std::stol(pids[i]));
}

// SIGKILLs a harness-started etcd and returns once its client port refuses
// connections (the last of its threads closed the socket; the process
// leader alone turning zombie is not enough). Polls: a process that is not
// our child offers no event to wait for.
void KillAndWait(pid_t pid, const std::string& url) {
  REQUIRE(::kill(pid, SIGKILL) == 0);
  const auto colon = url.rfind(':');
  const int port = std::stoi(url.substr(colon + 1));
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    const int err = errno;
    ::close(fd);
    if (rc != 0 && err == ECONNREFUSED) return;
    ::usleep(2000);
  }
  FAIL("etcd pid " << pid << " still accepts on " << url << " after SIGKILL");
}

// Keys of each case live under their own prefix.
std::string Prefix(const char* name) { return std::string("/kvd-test/") + name + "/" + std::to_string(::getpid()); }

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// A loop with a ticking timer so RunUntil can check its predicate.
class Loop {
 public:
  Loop() {
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, &tick_);
    uv_timer_start(&tick_, [](uv_timer_t*) {}, 5, 5);
  }
  ~Loop() {
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);  // let the closed handles' callbacks run
    uv_loop_close(&loop_);
  }
  uv_loop_t* get() { return &loop_; }
  // Runs the loop until pred() holds; false if `limit` passed first.
  bool RunUntil(const std::function<bool()>& pred, milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (!pred()) {
      if (Clock::now() > deadline) return false;
      uv_run(&loop_, UV_RUN_ONCE);
    }
    return true;
  }
  void RunFor(milliseconds d) {
    const auto until = Clock::now() + d;
    RunUntil([&] { return Clock::now() >= until; }, d + milliseconds(1000));
  }
  template <typename T>
  Result<T> Await(const std::function<void(EtcdClient::Callback<T>)>& op, milliseconds limit = milliseconds(10000)) {
    std::optional<Result<T>> out;
    op([&](Result<T> r) { out.emplace(std::move(r)); });
    REQUIRE_MESSAGE(RunUntil([&] { return out.has_value(); }, limit), "no answer from etcd in time");
    return std::move(*out);
  }

 private:
  uv_loop_t loop_;
  uv_timer_t tick_;
};

std::unique_ptr<EtcdClient> MakeClient(Loop& loop, std::vector<std::string> eps = Endpoints()) {
  EtcdClientOptions o;
  o.endpoints = std::move(eps);
  o.request_timeout = milliseconds(2000);
  auto c = EtcdClient::Create(loop.get(), o);
  REQUIRE(c.has_value());
  return std::move(*c);
}

// A loopback port that accepts connections (the kernel completes the
// handshake) and never answers: a member cut off by a partition.
struct Blackhole {
  int fd = -1;
  std::string url;
  Blackhole() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 64) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  ~Blackhole() { ::close(fd); }
};

// Records a LeaderLease's events with their times.
struct Campaigner {
  std::string name;
  std::unique_ptr<LeaderLease> lease;
  std::vector<std::pair<LeaseEvent, Clock::time_point>> events;

  Campaigner(Loop& loop, EtcdClient* client, const std::string& prefix, std::string n, milliseconds ttl)
      : name(std::move(n)) {
    LeaderLeaseOptions o;
    o.prefix = prefix;
    o.name = name;
    o.ttl = ttl;
    auto l = LeaderLease::Create(loop.get(), client, o, [this](const LeaseEvent& ev) {
      events.emplace_back(ev, Clock::now());
      MESSAGE(name << ": " << std::string(LeaseRoleName(ev.role)) << " epoch=" << ev.epoch << " leader=" << ev.leader << " "
                   << ev.reason);
    });
    REQUIRE(l.has_value());
    lease = std::move(*l);
  }
  LeaseRole role() const { return lease->role(); }
  std::optional<Clock::time_point> When(LeaseRole r, size_t from = 0) const {
    for (size_t i = from; i < events.size(); i++) {
      if (events[i].first.role == r) return events[i].second;
    }
    return std::nullopt;
  }
};

// Two campaigners with their own clients; returns once one leads and the
// other follows it.
void ElectOne(Loop& loop, Campaigner& a, Campaigner& b) {
  a.lease->Campaign();
  b.lease->Campaign();
  REQUIRE(loop.RunUntil(
      [&] {
        return (a.role() == LeaseRole::kLeader && b.role() == LeaseRole::kFollower && b.lease->leader() == a.name) ||
               (b.role() == LeaseRole::kLeader && a.role() == LeaseRole::kFollower && a.lease->leader() == b.name);
      },
      milliseconds(10000)));
}

}  // namespace

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

namespace {

// Index of the etcd leader among the endpoints, by asking each member.
size_t FindEtcdLeader(Loop& loop, EtcdClient* c) {
  std::vector<uint64_t> ids;
  uint64_t leader = 0;
  for (size_t i = 0; i < c->endpoints().size(); i++) {
    auto st = loop.Await<EtcdMemberStatus>([&](auto cb) { c->MemberStatus(i, cb); });
    REQUIRE(st.has_value());
    ids.push_back(st->member_id);
    leader = st->leader;
  }
  for (size_t i = 0; i < ids.size(); i++) {
    if (ids[i] == leader) return i;
  }
  FAIL("no etcd leader among the members");
  return 0;
}

}  // namespace

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

TEST_CASE("leader lease: of two campaigners exactly one wins; the epoch is the key's create revision") {
  Loop loop;
  auto ca = MakeClient(loop), cb = MakeClient(loop);
  const std::string p = Prefix("elect");
  Campaigner a(loop, ca.get(), p, "node-a", milliseconds(2000));
  Campaigner b(loop, cb.get(), p, "node-b", milliseconds(2000));
  ElectOne(loop, a, b);
  Campaigner& winner = a.role() == LeaseRole::kLeader ? a : b;
  Campaigner& loser = a.role() == LeaseRole::kLeader ? b : a;
  CHECK(winner.lease->IsLeaderNow());
  CHECK_FALSE(loser.lease->IsLeaderNow());
  auto key = loop.Await<EtcdRange>([&](auto cb2) { ca->Range(p + "/leader", {}, cb2); });
  REQUIRE(key->kvs.size() == 1);
  CHECK(key->kvs[0].value == winner.name);
  CHECK(winner.lease->epoch() == key->kvs[0].create_revision);
  // Renewals keep it: three TTLs later nothing changed.
  loop.RunFor(milliseconds(6000));
  CHECK(winner.role() == LeaseRole::kLeader);
  CHECK(winner.lease->stats().keepalives_ok >= 6);
  CHECK(loser.role() == LeaseRole::kFollower);
  CHECK(winner.events.size() == 1);
  CHECK(loser.events.size() == 1);

  // Switchover: the winner resigns, the other takes over well inside the TTL.
  std::optional<Status> resigned;
  const auto t0 = Clock::now();
  winner.lease->Resign([&](Status s) { resigned = s; });
  CHECK_FALSE(winner.lease->IsLeaderNow());
  REQUIRE(loop.RunUntil([&] { return loser.role() == LeaseRole::kLeader; }, milliseconds(5000)));
  const double took = Seconds(Clock::now() - t0);
  MESSAGE("switchover by resign: " << took << " s");
  CHECK(took < 1.0);
  REQUIRE(resigned.has_value());
  CHECK(resigned->ok());
  CHECK(loser.lease->epoch() > key->kvs[0].create_revision);
  CHECK(winner.events.back().first.role == LeaseRole::kLost);
  // The new leader went follower(winner) -> leader, never follower(itself).
  REQUIRE(loser.events.size() == 2);
  CHECK(loser.events[1].first.role == LeaseRole::kLeader);
}

// a campaigns and leads, then b campaigns and follows.
void LeaderThenFollower(Loop& loop, Campaigner& a, Campaigner& b) {
  a.lease->Campaign();
  REQUIRE(loop.RunUntil([&] { return a.role() == LeaseRole::kLeader; }, milliseconds(5000)));
  b.lease->Campaign();
  REQUIRE(loop.RunUntil([&] { return b.role() == LeaseRole::kFollower; }, milliseconds(5000)));
}

// When the leader's last successful renewal was sent (its lease runs a ttl from there).
LeaderLease::Clock::time_point LastRenewal(const Campaigner& a) {
  return a.lease->valid_until() + a.lease->options().stop_margin - a.lease->options().ttl;
}

TEST_CASE("leader lease: a leader cut off from etcd reports lost before the other side acquires") {
  Loop loop;
  auto ca = MakeClient(loop), cb = MakeClient(loop);
  const std::string p = Prefix("cutoff");
  Campaigner a(loop, ca.get(), p, "node-a", milliseconds(2000));
  Campaigner b(loop, cb.get(), p, "node-b", milliseconds(2000));
  LeaderThenFollower(loop, a, b);
  const int64_t old_epoch = a.lease->epoch();

  // Partition a from etcd: its renewals now hang until they time out.
  Blackhole hole;
  REQUIRE(ca->SetEndpoints({hole.url}).ok());
  const auto cut = Clock::now();
  REQUIRE(loop.RunUntil([&] { return a.When(LeaseRole::kLost).has_value() && b.role() == LeaseRole::kLeader; },
                        milliseconds(10000)));
  const auto lost = *a.When(LeaseRole::kLost);
  const auto acquired = *b.When(LeaseRole::kLeader);
  MESSAGE("cut at 0, a lost at " << Seconds(lost - cut) << " s, b leader at " << Seconds(acquired - cut)
                                 << " s (ttl 2 s, stop margin " << a.lease->options().stop_margin.count() << " ms)");
  CHECK(lost < acquired);
  // At least the stop margin lies between the two (minus scheduling noise).
  CHECK(Seconds(acquired - lost) >= 0.3);
  CHECK(b.lease->epoch() > old_epoch);
  CHECK_FALSE(a.lease->IsLeaderNow());
}

TEST_CASE("etcd leader kill: the leader lease (ttl 5 s) rides it out without a failover") {
  Loop loop;
  auto ca = MakeClient(loop), cb = MakeClient(loop);
  const std::string p = Prefix("etcd-leader-kill");
  Campaigner a(loop, ca.get(), p, "node-a", milliseconds(5000));
  Campaigner b(loop, cb.get(), p, "node-b", milliseconds(5000));
  LeaderThenFollower(loop, a, b);
  loop.RunFor(milliseconds(2000));  // a few renewals before the fault
  const size_t victim = FindEtcdLeader(loop, ca.get());
  KillAndWait(Pid(victim), Endpoints()[victim]);
  const auto killed = Clock::now();
  const auto ok_before = a.lease->stats().keepalives_ok;
  // Two TTLs: long enough for any expiry to show.
  loop.RunFor(milliseconds(10000));
  MESSAGE("etcd leader (member " << victim << ") killed: longest renewal gap "
                                 << a.lease->stats().max_renewal_gap.count() << " ms, "
                                 << a.lease->stats().keepalives_failed << " renewals failed");
  CHECK(a.role() == LeaseRole::kLeader);
  CHECK(a.events.size() == 1);
  CHECK(b.role() == LeaseRole::kFollower);
  CHECK(b.events.size() == 1);
  CHECK(a.lease->stats().keepalives_ok > ok_before);
  CHECK(a.lease->IsLeaderNow());
  (void)killed;
}

TEST_CASE("etcd leader kill together with the lease holder: takeover time") {
  Loop loop;
  auto ca = MakeClient(loop), cb = MakeClient(loop);
  const std::string p = Prefix("takeover");
  Campaigner b(loop, cb.get(), p, "node-b", milliseconds(5000));
  std::optional<Campaigner> a;
  a.emplace(loop, ca.get(), p, "node-a", milliseconds(5000));
  LeaderThenFollower(loop, *a, b);
  loop.RunFor(milliseconds(1000));
  const size_t victim = FindEtcdLeader(loop, cb.get());
  // kill -9 of the primary: its lease object goes without revoking anything.
  const auto renewed = LastRenewal(*a);
  a.reset();
  KillAndWait(Pid(victim), Endpoints()[victim]);
  const auto killed = Clock::now();
  REQUIRE(loop.RunUntil([&] { return b.role() == LeaseRole::kLeader; }, milliseconds(15000)));
  const double takeover = Seconds(Clock::now() - killed);
  const double since_renewal = std::chrono::duration<double>(LeaderLease::Clock::now() - renewed).count();
  MESSAGE("TAKEOVER after killing the etcd leader and the lease holder: " << takeover << " s (" << since_renewal
                                                                          << " s after its last renewal; ttl 5 s)");
  std::printf("takeover_seconds=%.3f since_last_renewal=%.3f\n", takeover, since_renewal);
  // The lease must have run out first (no early takeover), and not much later.
  // etcd's new leader refreshes every lease (TTL + its election timeout),
  // so the takeover is about election + ttl + 1 s + the 500 ms expiry scan.
  CHECK(since_renewal >= 5.0);
  CHECK(takeover <= 11.0);
}

TEST_CASE("holder killed (no etcd fault): takeover time") {
  Loop loop;
  auto ca = MakeClient(loop), cb = MakeClient(loop);
  const std::string p = Prefix("holder-kill");
  Campaigner b(loop, cb.get(), p, "node-b", milliseconds(5000));
  std::optional<Campaigner> a;
  a.emplace(loop, ca.get(), p, "node-a", milliseconds(5000));
  LeaderThenFollower(loop, *a, b);
  loop.RunFor(milliseconds(2500));  // a renewal or so, so the kill lands at some phase of the interval
  // kill -9 of the holder: its lease object goes without revoking anything.
  const auto renewed = LastRenewal(*a);
  a.reset();
  const auto killed = Clock::now();
  REQUIRE(loop.RunUntil([&] { return b.role() == LeaseRole::kLeader; }, milliseconds(10000)));
  const double takeover = Seconds(Clock::now() - killed);
  const double since_renewal = std::chrono::duration<double>(LeaderLease::Clock::now() - renewed).count();
  MESSAGE("TAKEOVER after the lease holder died: " << takeover << " s (" << since_renewal
                                                   << " s after its last renewal; ttl 5 s)");
  std::printf("takeover_seconds=%.3f since_last_renewal=%.3f\n", takeover, since_renewal);
  // Never before the lease ran out; at most ttl + etcd's 500 ms expiry scan + slack.
  CHECK(since_renewal >= 5.0);
  CHECK(takeover <= 6.5);
}
