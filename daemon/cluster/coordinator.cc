#include "cluster/coordinator.h"

#include <spdlog/fmt/fmt.h>

#include "config/config.h"
#include "sys/log.h"

namespace kvd::daemon {
namespace {

constexpr auto kPublishInterval = std::chrono::milliseconds(1000);
constexpr auto kFollowRetry = std::chrono::milliseconds(200);

}  // namespace

Coordinator::Coordinator(uv_loop_t* loop, const Config& config, Replication* repl, NodeController* node)
    : loop_(loop),
      cluster_(config.cluster),
      name_(config.replication.name),
      client_address_(config.socket),
      repl_address_(config.replication.listen),
      repl_(repl),
      node_(node) {}

Coordinator::~Coordinator() = default;

Result<std::unique_ptr<Coordinator>> Coordinator::Create(uv_loop_t* loop, const Config& config, Replication* repl,
                                                         NodeController* node) {
  if (!config.cluster.enabled()) return std::unique_ptr<Coordinator>();
  std::unique_ptr<Coordinator> c(new Coordinator(loop, config, repl, node));
  KVD_ASSIGN_OR_RETURN(std::vector<std::string> endpoints, ParseEtcdEndpoints(config.cluster.etcd_endpoints));
  EtcdClientOptions co;
  co.endpoints = std::move(endpoints);
  KVD_ASSIGN_OR_RETURN(c->client_, EtcdClient::Create(loop, std::move(co)));
  Coordinator* self = c.get();
  if (config.replication.sync_replicas > 0) {
    KVD_ASSIGN_OR_RETURN(c->sync_, SyncSet::Create(loop, c->client_.get(), config.cluster.prefix, c->name_,
                                                   config.replication.sync_replicas, repl,
                                                   [node]() -> const Engine* { return node->engine(); }));
  }
  LeaderLeaseOptions lo;
  lo.prefix = config.cluster.prefix;
  lo.name = c->name_;
  lo.ttl = config.cluster.ttl;
  if (c->sync_) lo.may_campaign = [self](std::vector<EtcdCompare>* extra) { return self->sync_->MayCampaign(extra); };
  KVD_ASSIGN_OR_RETURN(c->lease_, LeaderLease::Create(loop, c->client_.get(), std::move(lo),
                                                      [self](const LeaseEvent& ev) { self->OnLease(ev); }));
  KVD_ASSIGN_OR_RETURN(c->publisher_,
                       MemberPublisher::Create(loop, c->client_.get(), config.cluster.prefix + "/members/" + c->name_,
                                               config.cluster.ttl, kPublishInterval, [self] { return self->Facts(); }));
  if (!InitTimer(loop, &c->follow_timer_, self)) return Status::Internal("coordinator: uv_timer_init failed");
  return c;
}

void Coordinator::Start() {
  spdlog::info("cluster: {} joins {} at {} (ttl {} s)", name_, cluster_.prefix, cluster_.etcd_endpoints,
               cluster_.ttl.count() / 1000);
  publisher_->Start();
  if (sync_) sync_->Start();
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
  if (lease_->IsLeaderNow() || (!write && node_->role() != Role::kPrimary)) return Status::Ok();
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
    lease_->Resign([this, alive = std::weak_ptr<int>(life_)](Status) {
      if (alive.expired() || resigning_) return;
      uv_timer_start(
          follow_timer_.get(), [](uv_timer_t* t) { static_cast<Coordinator*>(t->data)->lease_->Campaign(); },
          static_cast<uint64_t>(cluster_.ttl.count()), 0);
    });
    return;
  }
  following_.clear();
  if (sync_) sync_->BeginPrimary(epoch);
  spdlog::warn("cluster: {} is the primary in epoch {}", name_, *begun);
  publisher_->PublishNow();
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

void Coordinator::Resign(std::function<void()> done) {
  if (resigning_) {
    done();
    return;
  }
  resigning_ = true;
  uv_timer_stop(follow_timer_.get());
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
