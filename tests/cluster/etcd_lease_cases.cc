// LeaderLease against a real 3-member etcd cluster: election between two
// campaigners, a leader cut off from etcd, an etcd leader kill with and
// without the lease holder, and the holder's own kill (takeover times). Run
// by tests/cluster/test_etcd_client.py like etcd_client_cases.cc, whose
// program (etcd_cases) it is part of; shared helpers are in etcd_cases.h.
#include <doctest/doctest.h>

#include "etcd_cases.h"

using namespace etcd_cases;

namespace {

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
