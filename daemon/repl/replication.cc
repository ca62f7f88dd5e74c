#include "repl/replication.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "kvd/epoch_history.h"
#include "repl/repl_tls.h"

namespace kvd::daemon {
namespace {

std::string HostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "kvd";
  return buf;
}

}  // namespace

Replication::Replication(uv_loop_t* loop, const Config& config)
    : loop_(loop),
      config_(config.replication),
      wal_dir_(config.wal_path),
      name_(config.replication.name.empty() ? HostName() : config.replication.name),
      snapshot_dir_(config.snapshot_path),
      feed_(loop),
      cluster_(config.cluster.enabled()) {}

Replication::~Replication() { Stop(); }

Status Replication::Start(Engine* engine, NodeController* node) {
  if (!enabled()) return Status::Ok();
  engine_ = engine;
  node_ = node;
  // The committer notifies the bridge after every job, each fdatasync's
  // included: the feed takes its durable LSN on that wake (wal_feed.h).
  node->bridge().set_before_poll([this] { feed_.Drain(); });
  feed_.set_wake_on_durable(false);
  KVD_ASSIGN_OR_RETURN(tls_, MakeReplicationTls(config_));
  KVD_ASSIGN_OR_RETURN(seen_epoch_, LoadSeenEpoch(env_ != nullptr ? env_ : Env::Default(), wal_dir_));
  if (cluster_) {
    // etcd decides (cluster/coordinator.h): a fenced replica of nobody until then.
    node->set_role(Role::kReplica);
    KVD_RETURN_IF_ERROR(node->SetWriteFence(
        Status::NotPrimary("this node is a replica; no primary is elected yet (the cluster is electing one)")));
    feed_.Start(engine->last_lsn(), engine->durable_lsn(), nullptr);
    return Status::Ok();
  }
  if (config_.role == "replica") {
    KVD_ASSIGN_OR_RETURN(HostPort primary, ParseHostPort(config_.primary));
    node->set_role(Role::kReplica);
    KVD_RETURN_IF_ERROR(node->SetWriteFence(Status::NotPrimary(
        "this node is a replica; send writes to the primary at " + primary.ToString())));
    feed_.Start(engine->last_lsn(), engine->durable_lsn(), nullptr);
    StartReceiver(primary);
    return Status::Ok();
  }
  feed_.Start(engine->last_lsn(), engine->durable_lsn(), nullptr);
  KVD_ASSIGN_OR_RETURN(primary_, StartPrimary());
  feed_.set_on_update([this] { primary_->OnFeedUpdate(); });
  if (seen_epoch_ > engine->current_epoch()) {
    // Fenced before this restart (or a replica that heard of a newer epoch
    // restarted as a primary): still an old primary.
    FenceForNewerEpoch(seen_epoch_, "seen before this restart");
  }
  return Status::Ok();
}

Status Replication::SetSync(uint32_t sync_replicas, std::chrono::milliseconds timeout) {
  config_.sync_replicas = sync_replicas;
  config_.sync_timeout = timeout;
  // A primary fenced by a newer epoch keeps its gate off (FenceForNewerEpoch):
  // the new settings apply once it is primary again.
  return primary_ && !fenced_by_newer_epoch() ? primary_->ConfigureSync(sync_replicas, timeout) : Status::Ok();
}

void Replication::SetOnAcksChanged(std::function<void()> fn) { on_acks_changed_ = std::move(fn); }

void Replication::Stop() {
  if (node_ != nullptr) node_->bridge().set_before_poll(nullptr);
  if (primary_) primary_->Stop();
  if (receiver_) receiver_->Stop();
  feed_.Close();
}

void Replication::FillMetrics(ReplicationMetrics* m) const {
  m->enabled = enabled();
  if (primary_) primary_->FillMetrics(m);
  if (receiver_) receiver_->FillMetrics(m);
}

std::string Replication::StatusJson() const {
  if (!enabled()) return {};
  nlohmann::json j;
  j["name"] = name_;
  j["role"] = node_ != nullptr ? std::string(RoleName(node_->role())) : config_.role;
  j["sync_replicas"] = config_.sync_replicas;
  j["tls"] = config_.tls();
  if (engine_ != nullptr) {
    j["epoch"] = engine_->current_epoch();
    j["highest_epoch_seen"] = highest_epoch_seen();
    nlohmann::json h = nlohmann::json::array();
    const EpochHistory history = engine_->epoch_history();  // by value: keep it alive for the loop
    for (const EpochStart& e : history.entries()) {
      h.push_back({{"epoch", e.epoch}, {"first_lsn", e.first_lsn}});
    }
    j["epoch_history"] = h;
    const Status fence = engine_->write_fence();
    if (fence.code() == Code::kFenced) j["fenced"] = fence.message();
  }
  if (primary_) {
    j["primary"] = name_;
    j.update(primary_->StatusJson());  // listen, port, replicas[], disconnected[], retention_floor
  }
  if (receiver_) {
    j["receiver"] = receiver_->StatusJson();
    j["primary"] = primary_addr_;
  }
  return j.dump();
}

}  // namespace kvd::daemon
