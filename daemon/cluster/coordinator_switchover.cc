// Coordinator: planned switchover (docs/cluster.md §3.6). `kvctl switchover
// --to NODE` puts <prefix>/switchover = {"from","to"} on a short lease. The
// primary named in "from" fences writes, waits (at most kSwitchoverWait)
// until the target's durable LSN reaches its last LSN and (with a sync
// set) the target is a published member, then resigns; the target
// campaigns at once and deletes the key once it is primary; every other
// node holds back while the key exists. On timeout the primary deletes the
// key and lifts its fence.
#include <spdlog/fmt/fmt.h>

#include <nlohmann/json.hpp>

#include "cluster/coordinator.h"
#include "sys/log.h"

namespace kvd::daemon {
namespace {

constexpr auto kSwitchoverWait = std::chrono::seconds(5);
constexpr uint64_t kSwitchoverStepMs = 5;
constexpr uint64_t kReloadMs = 250;

}  // namespace

void Coordinator::LoadSwitchover() {
  const std::string key = cluster_.prefix + "/switchover";
  client_->Range(key, {}, [this, alive = std::weak_ptr<int>(life_), key](Result<EtcdRange> r) {
    if (alive.expired() || resigning_) return;
    if (!r) {
      uv_timer_start(
          switch_reload_timer_.get(), [](uv_timer_t* t) { static_cast<Coordinator*>(t->data)->LoadSwitchover(); },
          kReloadMs, 0);
      return;
    }
    OnSwitchover(r->kvs.empty() ? nullptr : &r->kvs[0]);
    switch_watch_ = client_->Watch(key, {}, r->revision + 1, [this](Result<EtcdWatchBatch> b) {
      if (!b) {
        if (b.error().code() == Code::kInvalidArgument) {
          // Compacted: read it again. Resetting the watch destroys this
          // very callback (and its captures), so nothing of it is touched
          // after the reset: `self` is a copy on the stack.
          Coordinator* self = this;
          self->switch_watch_.reset();
          self->LoadSwitchover();
        }
        return;
      }
      for (const EtcdWatchEvent& ev : b->events) {
        OnSwitchover(ev.type == EtcdWatchEvent::Type::kDelete ? nullptr : &ev.kv);
      }
    });
  });
}

void Coordinator::OnSwitchover(const EtcdKeyValue* kv) {
  if (kv == nullptr) {
    switchover_.reset();
    if (switching_) AbortSwitchover("the switchover key was deleted");
    return;
  }
  auto j = nlohmann::json::parse(kv->value, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("from") || !j.contains("to") || !j["from"].is_string() ||
      !j["to"].is_string()) {
    spdlog::error("cluster: {}/switchover is not {{\"from\",\"to\"}}: ignored", cluster_.prefix);
    switchover_.reset();
    if (switching_) AbortSwitchover("the switchover key no longer names a handover");
    return;
  }
  switchover_ = Switchover{j["from"].get<std::string>(), j["to"].get<std::string>()};
  if (switchover_->from == name_ && node_->role() == Role::kPrimary && lease_->IsLeaderNow()) {
    StartSwitchover(switchover_->to);
  }
}

void Coordinator::StartSwitchover(const std::string& to) {
  if (switching_) return;
  if (to == name_) {
    AbortSwitchover("the target is this primary already");
    return;
  }
  switching_ = true;
  switch_deadline_ = std::chrono::steady_clock::now() + kSwitchoverWait;
  (void)node_->SetWriteFence(
      Status::Fenced("a switchover to " + to + " is in progress: writes go to the new primary in a moment"));
  if (sync_) sync_->Prefer(to);
  LogEvent(spdlog::level::warn, Event::kReplication, node_->engine()->last_lsn(),
           fmt::format("cluster: switchover from {} to {}: writes fenced, waiting for {} to have LSN {}", name_, to,
                       to, node_->engine()->last_lsn()));
  uv_timer_start(
      switch_step_timer_.get(), [](uv_timer_t* t) { static_cast<Coordinator*>(t->data)->SwitchoverStep(); }, 0,
      kSwitchoverStepMs);
}

void Coordinator::SwitchoverStep() {
  if (!switching_ || !switchover_) return;
  if (std::chrono::steady_clock::now() > switch_deadline_) {
    AbortSwitchover(fmt::format("{} did not catch up within {} s", switchover_->to, kSwitchoverWait.count()));
    return;
  }
  if (!lease_->IsLeaderNow()) {
    AbortSwitchover("this node lost the leader lease");
    return;
  }
  const Engine* e = node_->engine();
  const Lsn last = e->last_lsn();
  Lsn durable = 0;
  for (const auto& r : repl_->ConnectedReplicas()) {
    if (r.name == switchover_->to) durable = std::max(durable, r.durable_lsn);
  }
  if (durable < last || e->durable_lsn() < last) return;
  if (sync_) {
    const SyncValue& v = sync_->published();
    if (v.epoch != sync_->epoch() ||
        std::find(v.members.begin(), v.members.end(), switchover_->to) == v.members.end()) {
      return;  // the target is published first, so that it may campaign
    }
  }
  uv_timer_stop(switch_step_timer_.get());
  switching_ = false;
  LogEvent(spdlog::level::warn, Event::kReplication, last,
           fmt::format("cluster: switchover: {} has LSN {}; {} resigns", switchover_->to, last, name_));
  // Done with the preference: were this node primary again later, a stale
  // one would swap a healthy sync member for the old target.
  if (sync_) sync_->Prefer({});
  lease_->Resign([this, alive = std::weak_ptr<int>(life_)](Status) {
    if (alive.expired() || resigning_) return;
    lease_->Campaign();  // held back while the key exists: it follows the target
  });
}

void Coordinator::AbortSwitchover(const std::string& why) {
  const bool was = switching_;
  switching_ = false;
  uv_timer_stop(switch_step_timer_.get());
  if (sync_) sync_->Prefer({});
  LogEvent(spdlog::level::err, Event::kReplication, 0, "cluster: switchover aborted: " + why);
  // Not when a newer epoch fenced this node meanwhile: that fence is for
  // good, and this node's acknowledgement gate is off (Replication).
  if (was && node_->role() == Role::kPrimary && lease_->IsLeaderNow() && !repl_->fenced_by_newer_epoch()) {
    node_->ClearWriteFence();
  }
  DeleteSwitchoverKey();
}

void Coordinator::DeleteSwitchoverKey() {
  client_->Delete(cluster_.prefix + "/switchover", {}, [](Result<int64_t>) {});
}

}  // namespace kvd::daemon
