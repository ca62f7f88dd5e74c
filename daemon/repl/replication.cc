#include "repl/replication.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

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
      feed_(loop) {}

Replication::~Replication() { Stop(); }

Status Replication::Start(Engine* engine, NodeController* node) {
  if (!enabled()) return Status::Ok();
  engine_ = engine;
  node_ = node;
  if (config_.role == "replica") {
    KVD_ASSIGN_OR_RETURN(HostPort primary, ParseHostPort(config_.primary));
    node->set_role(Role::kReplica);
    KVD_RETURN_IF_ERROR(node->SetWriteFence(Status::NotPrimary(
        "this node is a replica; send writes to the primary at " + primary.ToString())));
    feed_.Start(engine->last_lsn(), engine->durable_lsn(), nullptr);
    StartReceiver(primary);
    return Status::Ok();
  }
  primary_ = std::make_unique<repl::ReplPrimary>(loop_, config_, name_, wal_dir_);
  primary_->set_on_newer_epoch([this](Epoch e, const std::string& why) { FenceForNewerEpoch(e, why); });
  feed_.Start(engine->last_lsn(), engine->durable_lsn(), [this] { primary_->OnFeedUpdate(); });
  return primary_->Start(engine, &feed_);
}

void Replication::Stop() {
  if (primary_) primary_->Stop();
  if (receiver_) receiver_->Stop();
  feed_.Close();
}

std::string Replication::StatusJson() const {
  if (!enabled()) return {};
  nlohmann::json j;
  j["name"] = name_;
  j["role"] = node_ != nullptr ? std::string(RoleName(node_->role())) : config_.role;
  j["sync_replicas"] = config_.sync_replicas;
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
