#include "cluster/coordinator.h"

#include <spdlog/fmt/fmt.h>

#include "cluster/cluster_faults.h"
#include "cluster/etcd_tls.h"
#include "config/config.h"
#include "repl/lag.h"
#include "sys/log.h"

namespace kvd::daemon {
namespace {

constexpr auto kPublishInterval = std::chrono::milliseconds(1000);
constexpr auto kFollowRetry = std::chrono::milliseconds(200);
// docs/cluster.md §3.5. A replica's ACK promises not to take part in a
// takeover until kReadLease after it last heard the primary; the primary
// serves reads until (the send time of the newest heartbeat every sync
// member echoed) + kReadLease - kReadMargin. A member takes over after
// kTakeoverSilence without a frame (heartbeats come every 200 ms).
constexpr auto kReadLease = std::chrono::milliseconds(1000);
constexpr auto kReadMargin = std::chrono::milliseconds(200);
constexpr auto kTakeoverSilence = std::chrono::milliseconds(1000);
constexpr uint64_t kTakeoverCheckMs = 50;
// A longer gap between two takeover checks: this process did not run.
constexpr auto kOwnStall = std::chrono::milliseconds(500);

}  // namespace

Coordinator::Coordinator(uv_loop_t* loop, const Config& config, Replication* repl, NodeController* node)
    : loop_(loop),
      cluster_(config.cluster),
      name_(config.replication.name),
      client_address_(config.socket),
      repl_address_(config.replication.listen),
      repl_(repl),
      node_(node) {}

Coordinator::~Coordinator() {
  if (repl_ != nullptr) repl_->SetOnFencedByNewerEpoch(nullptr);  // Replication outlives this (server.h)
}

Result<std::unique_ptr<Coordinator>> Coordinator::Create(uv_loop_t* loop, const Config& config, Replication* repl,
                                                         NodeController* node) {
  if (!config.cluster.enabled()) return std::unique_ptr<Coordinator>();
  std::unique_ptr<Coordinator> c(new Coordinator(loop, config, repl, node));
  KVD_ASSIGN_OR_RETURN(std::vector<std::string> endpoints, ParseEtcdEndpoints(config.cluster.etcd_endpoints));
  EtcdClientOptions co;
  co.endpoints = std::move(endpoints);
  co.tls = EtcdTlsOf(config.cluster);
  KVD_ASSIGN_OR_RETURN(c->client_, EtcdClient::Create(loop, std::move(co)));
  Coordinator* self = c.get();
  if (config.replication.sync_replicas > 0) {
    KVD_ASSIGN_OR_RETURN(c->sync_, SyncSet::Create(loop, c->client_.get(), config.cluster.prefix, c->name_,
                                                   config.replication.sync_replicas,
                                                   config.replication.sync_timeout, repl,
                                                   [node]() -> const Engine* { return node->engine(); }));
    // Members republish as soon as they see the leader key go, so a
    // candidate waits for their fresh durable LSNs no longer than a round trip.
    KVD_ASSIGN_OR_RETURN(c->rank_, CandidateRank::Create(loop, c->client_.get(), config.cluster.prefix,
                                                         config.cluster.ttl, [self] { self->publisher_->PublishNow(); }));
  }
  LeaderLeaseOptions lo;
  lo.prefix = config.cluster.prefix;
  lo.name = c->name_;
  lo.ttl = config.cluster.ttl;
  lo.may_campaign = [self](std::vector<EtcdCompare>* extra) { return self->MayCampaign(extra); };
  KVD_ASSIGN_OR_RETURN(c->lease_, LeaderLease::Create(loop, c->client_.get(), std::move(lo),
                                                      [self](const LeaseEvent& ev) { self->OnLease(ev); }));
  KVD_ASSIGN_OR_RETURN(c->publisher_,
                       MemberPublisher::Create(loop, c->client_.get(), config.cluster.prefix + "/members/" + c->name_,
                                               config.cluster.ttl, kPublishInterval, [self] { return self->Facts(); }));
  if (!InitTimer(loop, &c->follow_timer_, self) || !InitTimer(loop, &c->takeover_timer_, self) ||
      !InitTimer(loop, &c->switch_step_timer_, self) || !InitTimer(loop, &c->switch_reload_timer_, self) ||
      !InitTimer(loop, &c->fenced_timer_, self)) {
    return Status::Internal("coordinator: uv_timer_init failed");
  }
  return c;
}

void Coordinator::Start() {
  spdlog::info("cluster: {} joins {} at {} (ttl {} s)", name_, cluster_.prefix, cluster_.etcd_endpoints,
               cluster_.ttl.count() / 1000);
  publisher_->Start();
  if (sync_) {
    sync_->Start();
    rank_->Start();
    uv_timer_start(
        takeover_timer_.get(), [](uv_timer_t* t) { static_cast<Coordinator*>(t->data)->CheckTakeover(); },
        kTakeoverCheckMs, kTakeoverCheckMs);
  }
  LoadSwitchover();
  repl_->SetOnFencedByNewerEpoch([this](Epoch newer) { OnFencedByNewerEpoch(newer); });
  lease_->Campaign();
}

MemberFacts Coordinator::Facts() const {
  MemberFacts f;
  f.name = name_;
  f.address = client_address_;
  f.repl_address = repl_address_;
  f.role = std::string(RoleName(node_->role()));
  if (const Engine* e = node_->engine()) {
    f.epoch = e->current_epoch();
    f.durable_lsn = e->durable_lsn();
    f.applied_lsn = e->applied_lsn();
  }
  return f;
}

Status Coordinator::PrimaryGate(bool write) const {
  if (!write && node_->role() != Role::kPrimary) return Status::Ok();  // a replica's reads
  if (lease_->IsLeaderNow()) {
    if (write || !sync_) return Status::Ok();
    // Reads: also under the read lease of every published sync member (a
    // member may take over once it has not heard us for kReadLease).
    std::vector<std::string> members;
    for (const std::string& m : sync_->published().members) {
      if (m != name_) members.push_back(m);
    }
    if (members.empty()) return Status::Ok();
    const uint64_t echo = repl_->OldestEcho(members);
    const auto lease_us = static_cast<uint64_t>(std::chrono::microseconds(kReadLease - kReadMargin).count());
    if (echo != 0 && repl::PrimaryClockUs() < echo + lease_us) return Status::Ok();
    return Status::Fenced(fmt::format(
        "this primary ({}) has no current read lease from its synchronous replicas (not heard within {} ms): "
        "one of them may be taking over; retry shortly",
        name_, (kReadLease - kReadMargin).count()));
  }
  return Status::Fenced(fmt::format(
      "this node ({}) is not the primary now: its leader lease in etcd is past its deadline (no renewal answered "
      "within ttl - stop_margin) or lost; another node may be primary: retry on the primary",
      name_));
}

void Coordinator::OnLease(const LeaseEvent& ev) {
  if (resigning_) return;
  uv_timer_stop(follow_timer_.get());
  if (sync_ && ev.role != LeaseRole::kLeader) sync_->EndPrimary();
  switch (ev.role) {
    case LeaseRole::kLeader:
      leader_.clear();
      Lead(ev.epoch);
      break;
    case LeaseRole::kFollower:
      if (ev.leader != leader_) leader_since_ = std::chrono::steady_clock::now();
      leader_ = ev.leader;
      Follow();
      break;
    case LeaseRole::kLost:
      leader_.clear();
      following_.clear();
      repl_->StepDown(Status::Fenced("this node lost the primary's leader lease in etcd (" + ev.reason +
                                     "): it takes no writes until the cluster makes it a replica"));
      publisher_->PublishNow();
      break;
    case LeaseRole::kNone:
      break;
  }
}

void Coordinator::Lead(int64_t epoch) {
  auto begun = repl_->BecomePrimary(static_cast<Epoch>(epoch), /*force=*/true);
  if (!begun) {
    // Not primary after all (an epoch not newer than one seen here, a
    // listener that cannot open): give the key back so another node wins.
    LogEvent(spdlog::level::err, Event::kReplication, 0,
             fmt::format("cluster: {} won the leader key (epoch {}) but cannot become primary: {}; resigning", name_,
                         epoch, begun.error().message()));
    ResignAndCampaignLater();
    return;
  }
  following_.clear();
  if (sync_) sync_->BeginPrimary(epoch);
  if (switchover_ && switchover_->to == name_) {
    spdlog::warn("cluster: switchover from {} to {} done", switchover_->from, name_);
    DeleteSwitchoverKey();
  }
  spdlog::warn("cluster: {} is the primary in epoch {}", name_, *begun);
  publisher_->PublishNow();
}

void Coordinator::ResignAndCampaignLater() {
  lease_->Resign([this, alive = std::weak_ptr<int>(life_)](Status) {
    if (alive.expired() || resigning_) return;
    uv_timer_start(
        follow_timer_.get(), [](uv_timer_t* t) { static_cast<Coordinator*>(t->data)->lease_->Campaign(); },
        static_cast<uint64_t>(cluster_.ttl.count()), 0);
  });
}

void Coordinator::OnFencedByNewerEpoch(Epoch newer) {
  // Fenced while holding the leader key: nobody takes writes until the key
  // goes, and this process would renew it for ever. A genuine newer primary
  // means the key is gone already (the lease reports it); a member's fence
  // from a takeover whose delete never applied means it is not, and only
  // giving it back starts the election that ends this (docs/cluster.md §3.5).
  if (resigning_ || lease_->role() != LeaseRole::kLeader) return;
  LogEvent(spdlog::level::warn, Event::kReplication, 0,
           fmt::format("cluster: {} was fenced by a newer epoch {} while its lease says leader: reading the leader "
                       "key",
                       name_, newer));
  // Not from inside the link callback that reported it: the step-down the
  // resignation causes closes that link.
  uv_timer_start(
      fenced_timer_.get(), [](uv_timer_t* t) { static_cast<Coordinator*>(t->data)->ResignIfKeyStillOurs(); }, 0, 0);
}

void Coordinator::ResignIfKeyStillOurs() {
  if (resigning_ || lease_->role() != LeaseRole::kLeader) return;
  const int64_t epoch = lease_->epoch();
  // Only a key that is still this node's: a genuine newer primary deleted it
  // already, and the lease's watch will say so without a resignation (which
  // would keep this node from following anyone for a ttl).
  client_->Range(lease_->key(), {}, [this, alive = std::weak_ptr<int>(life_), epoch](Result<EtcdRange> r) {
    if (alive.expired() || resigning_ || lease_->role() != LeaseRole::kLeader || lease_->epoch() != epoch) return;
    if (!r || r->kvs.empty() || r->kvs[0].value != name_ || r->kvs[0].create_revision != epoch) return;
    LogEvent(spdlog::level::err, Event::kReplication, 0,
             fmt::format("cluster: {} still holds the leader key of epoch {} while fenced: resigning it so that a "
                         "writable primary is elected",
                         name_, epoch));
    ResignAndCampaignLater();
  });
}

void Coordinator::Follow() {
  if (leader_.empty()) return;
  const std::string leader = leader_;
  client_->Range(cluster_.prefix + "/members/" + leader, {},
                 [this, alive = std::weak_ptr<int>(life_), leader](Result<EtcdRange> r) {
                   if (alive.expired() || resigning_ || leader != leader_) return;
                   Result<MemberFacts> m = Status::NotFound("no member key");
                   if (r && !r->kvs.empty()) m = ParseMemberJson(r->kvs[0].value);
                   auto hp = m ? ParseHostPort(m->repl_address) : Result<HostPort>(m.error());
                   if (!hp) {
                     // The leader has not published yet (it just started) or etcd failed.
                     uv_timer_start(
                         follow_timer_.get(), [](uv_timer_t* t) { static_cast<Coordinator*>(t->data)->Follow(); },
                         static_cast<uint64_t>(kFollowRetry.count()), 0);
                     return;
                   }
                   const std::string fence = "this node is a replica; send writes to the primary " + leader +
                                             " primary_address=" + m->address;
                   if (following_ != hp->ToString() || node_->role() == Role::kPrimary) {
                     if (Status st = repl_->BecomeReplica(*hp); !st.ok()) {
                       spdlog::error("cluster: {} cannot replicate from {} ({}): {}", name_, leader, hp->ToString(),
                                     st.ToString());
                       return;
                     }
                     following_ = hp->ToString();
                     publisher_->PublishNow();
                   }
                   // The client-facing refusal names the primary's socket (kvctl follows it).
                   (void)node_->SetWriteFence(Status::NotPrimary(fence));
                 });
}

bool Coordinator::MayCampaign(std::vector<EtcdCompare>* extra) const {
  // A switchover in progress: only its target campaigns, and at once (the
  // old primary fenced itself and stopped serving as primary before it
  // resigned, so the read-lease promise is not needed).
  if (switchover_ && switchover_->to != name_) return false;
  const bool target = switchover_ && switchover_->to == name_;
  if (!sync_) return true;
  if (!target && !PromiseKept()) return false;
  if (!target && sync_->exists() && sync_->MayCampaign(nullptr)) {
    // Among the published members the highest durable LSN campaigns
    // (docs/cluster.md §3.2). The switchover target is exempt: the old
    // primary waited until it had every write.
    const Engine* e = node_->engine();
    std::string why;
    const auto verdict = rank_->Decide(sync_->published().members, name_, e != nullptr ? e->durable_lsn() : 0, &why);
    if (verdict != CandidateRank::Verdict::kGo) {
      if (why != rank_why_) spdlog::info("cluster: {} holds its campaign back: {}", name_, why);
      rank_why_ = why;
      return false;
    }
    rank_why_.clear();
  }
  return sync_->MayCampaign(extra);
}

bool Coordinator::PromiseKept() const {
  const auto silence = repl_->PrimarySilence();
  return !silence || *silence >= kReadLease;
}

bool Coordinator::HeardLongEnough() const {
  // The silence counts against the leader followed now: a node that wakes
  // (SIGCONT) to find a new leader has not heard it yet, but not for long.
  // Nor from before this process last stalled: the primary's frames may
  // still wait unread in the socket (timers run before the loop reads).
  return std::chrono::steady_clock::now() - std::max(leader_since_, awake_since_) >= kTakeoverSilence;
}

void Coordinator::CheckTakeover() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_takeover_check_ > kOwnStall) awake_since_ = now;  // SIGSTOP, a paused VM
  last_takeover_check_ = now;
  if (resigning_ || taking_over_ || leader_.empty() || lease_->role() != LeaseRole::kFollower) return;
  if (now < takeover_retry_after_) return;  // the last attempt was refused
  const auto silence = repl_->PrimarySilence();
  if (!silence || *silence < std::max(kTakeoverSilence, kReadLease)) return;
  if (!HeardLongEnough()) return;
  std::vector<EtcdCompare> guard;
  if (!sync_->MayCampaign(&guard)) return;  // only a published member may
  taking_over_ = true;
  const std::string key = cluster_.prefix + "/leader";
  client_->Range(key, {}, [this, alive = std::weak_ptr<int>(life_), key, guard](Result<EtcdRange> r) {
    if (alive.expired()) return;
    taking_over_ = false;
    if (!r || r->kvs.empty() || resigning_) return;
    const EtcdKeyValue& kv = r->kvs[0];
    if (kv.value != leader_ || kv.create_revision <= fenced_epoch_) return;
    const auto quiet = repl_->PrimarySilence();
    if (!quiet || *quiet < std::max(kTakeoverSilence, kReadLease)) return;
    if (!HeardLongEnough()) return;  // a leader just followed, or this node just woke
    // Refuse the old epoch first: from now on the old primary cannot
    // gather this member's ACKs, so it cannot acknowledge anything more.
    fenced_epoch_ = kv.create_revision;
    repl_->FenceEpoch(static_cast<Epoch>(kv.create_revision));
    LogEvent(spdlog::level::warn, Event::kReplication, 0,
             fmt::format("cluster: {} heard nothing from the primary {} for {} ms: fenced its epoch {} and deletes "
                         "its leader key to take over",
                         name_, leader_, quiet->count(), kv.create_revision));
    EtcdTxnRequest txn;
    txn.compare = guard;  // the sync set is still the one that names us
    txn.compare.push_back({key, EtcdCompare::Target::kCreate, EtcdCompare::Op::kEqual, kv.create_revision, {}});
    if (TestClusterFaults().takeover_compare_fails || TestClusterFaults().takeover_answer_lost) {
      txn.compare.push_back({key, EtcdCompare::Target::kCreate, EtcdCompare::Op::kEqual, 0, {}});
    }
    txn.success.push_back(EtcdOp::Delete(key));
    txn.failure.push_back(EtcdOp::Get(key));  // read in the same revision as the failed compare
    client_->Txn(std::move(txn), [this, alive, epoch = kv.create_revision](Result<EtcdTxnResult> t) {
      if (alive.expired()) return;
      if (TestClusterFaults().takeover_answer_lost) t = Status::TimedOut("--fault-cluster: the answer was dropped");
      if (t && !t->succeeded) return OnTakeoverRefused(epoch, *t);
      repl_->ConfirmEpochFence(static_cast<Epoch>(epoch));  // deleted, or perhaps: the fence stays
      if (!t) {
        // Unknown whether the delete applied: the fence stays (the lease, or
        // the key's deletion, decides). See docs/cluster.md §3.5.
        spdlog::warn("cluster: {}: the takeover's delete may not have applied ({}); the lease decides", name_,
                     t.error().ToString());
      }
    });
  });
}

void Coordinator::OnTakeoverRefused(int64_t epoch, const EtcdTxnResult& t) {
  // The compare failed: nothing was deleted. If the failure branch still
  // read epoch's key, its primary keeps the lease and no newer epoch exists,
  // so this node's fence would only refuse a live primary (docs/cluster.md
  // §3.5). Gone or replaced: a takeover is under way, the fence stays.
  const bool kept = !t.ranges.empty() && !t.ranges[0].kvs.empty() &&
                    t.ranges[0].kvs[0].create_revision == epoch;
  takeover_retry_after_ = std::chrono::steady_clock::now() + kTakeoverSilence;
  if (!kept) {
    repl_->ConfirmEpochFence(static_cast<Epoch>(epoch));
    spdlog::warn("cluster: {}: the takeover's delete did not apply: the leader key of epoch {} is gone or "
                 "replaced; the lease decides",
                 name_, epoch);
    return;
  }
  spdlog::warn("cluster: {}: the takeover's delete did not apply (the sync set changed); the primary of epoch {} "
               "still holds the leader key",
               name_, epoch);
  const Result<bool> lifted = repl_->LiftEpochFence(static_cast<Epoch>(epoch));
  if (lifted && *lifted) {
    if (fenced_epoch_ == epoch) fenced_epoch_ = 0;  // that epoch may be taken over again, later
    return;
  }
  repl_->ConfirmEpochFence(static_cast<Epoch>(epoch));  // it stays: announce it
  if (lifted) {
    // A newer epoch was seen since the fence: it stays, and so does the
    // record that this epoch was fenced (no second takeover of it).
    spdlog::warn("cluster: {}: the fence of epoch {} stays: this node has seen epoch {} since", name_, epoch,
                 repl_->highest_epoch_seen());
  }
}

bool Coordinator::ApplySync(uint32_t sync_replicas, std::chrono::milliseconds sync_timeout) {
  if (!sync_ && sync_replicas == 0) return false;  // asynchronous before and after: nothing published
  if (!sync_ || sync_replicas == 0) {
    // The strict set (and who may campaign) is decided at start: between
    // 0 and >= 1 a restart is needed. Keep the current count, take the timeout.
    const uint32_t keep = sync_ ? sync_->target() : 0;
    spdlog::error("cluster: replication.sync_replicas {} -> {} is not applied at run time with [cluster] (0 and "
                  ">= 1 are different modes): restart the nodes; keeping {}",
                  keep, sync_replicas, keep);
    if (sync_) {
      sync_->SetTarget(keep, sync_timeout);
    } else if (Status st = repl_->SetSync(0, sync_timeout); !st.ok()) {
      spdlog::error("applying replication.sync_timeout: {}", st.ToString());
    }
    return true;
  }
  sync_->SetTarget(sync_replicas, sync_timeout);
  return true;
}

void Coordinator::Resign(std::function<void()> done) {
  if (resigning_) {
    done();
    return;
  }
  resigning_ = true;
  uv_timer_stop(follow_timer_.get());
  uv_timer_stop(takeover_timer_.get());
  uv_timer_stop(switch_step_timer_.get());
  uv_timer_stop(switch_reload_timer_.get());
  switching_ = false;
  if (node_->role() == Role::kPrimary) {
    repl_->StepDown(Status::Fenced("this node is shutting down and resigned the primary role"));
  }
  if (sync_) sync_->EndPrimary();
  publisher_->Stop();
  lease_->Resign([alive = std::weak_ptr<int>(life_), done = std::move(done)](Status st) {
    if (alive.expired()) return;
    if (!st.ok()) spdlog::warn("cluster: revoking the leader lease failed: {}", st.ToString());
    done();
  });
}

}  // namespace kvd::daemon
