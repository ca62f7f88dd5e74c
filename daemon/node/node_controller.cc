#include "node/node_controller.h"

#include <spdlog/fmt/fmt.h>

#include "sys/log.h"

namespace kvd::daemon {

using std::chrono::duration_cast;
using std::chrono::steady_clock;

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kPrimary: return "primary";
    case Role::kReplica: return "replica";
  }
  return "unknown";
}

NodeController::NodeController(uv_loop_t* loop, CompletionSink* sink, const Config* config, Notifier* notifier)
    : config_(config), notifier_(notifier), bridge_(loop, sink, [this] { AfterPoll(); }) {}

// The owner closes the engine (CloseEngine) before this runs: the committer
// thread may notify until then, and the bridge's async handle goes first.
NodeController::~NodeController() = default;

void NodeController::Adopt(std::unique_ptr<Engine> engine, RecoveryReport recovery) {
  engine_ = std::move(engine);
  recovery_ = std::move(recovery);
}

void NodeController::Run() {
  bridge_.Attach(engine_.get(), engine_->durability().flush_interval);
  CheckFaults();
}

Status NodeController::CloseEngine(CompletionSink* sink) {
  if (!engine_ || closed_) return Status::Ok();
  closed_ = true;
  Status st = engine_->Close(sink);
  bridge_.Detach();
  return st;
}

void NodeController::AfterPoll() {
  CheckFaults();
  if (!engine_) return;
  const EngineStats st = engine_->stats();
  if (st.groups == last_groups_) return;
  last_groups_ = st.groups;
  const auto slow_us =
      static_cast<uint64_t>(duration_cast<std::chrono::microseconds>(config_->slow_sync_warning).count());
  if (slow_us > 0 && st.last_sync_us > slow_us) {
    // At most one line per 10 s, counting the ones folded into it.
    const auto now = steady_clock::now();
    ++slow_syncs_unlogged_;
    if (now - last_slow_log_ > std::chrono::seconds(10)) {
      LogEvent(spdlog::level::warn, Event::kSlowSync, st.durable_lsn,
               fmt::format("slow fdatasync: {:.1f} ms (threshold {} ms; {} slow since last report; p99 {:.1f} ms)",
                           static_cast<double>(st.last_sync_us) / 1000.0, config_->slow_sync_warning.count(),
                           slow_syncs_unlogged_, static_cast<double>(st.sync_p99_us) / 1000.0));
      last_slow_log_ = now;
      slow_syncs_unlogged_ = 0;
    }
  }
}

void NodeController::CheckFaults() {
  if (!engine_ || refusal_logged_) return;
  Status refusal = engine_->write_refusal();
  if (refusal.ok()) return;
  refusal_logged_ = true;
  LogEvent(spdlog::level::critical, Event::kFsyncFailure, engine_->durable_lsn(),
           fmt::format("writes refused from now on ({}); reads keep working; acknowledged data is safe up to "
                       "LSN {}; restart kvd to recover",
                       refusal.ToString(), engine_->durable_lsn()));
  notifier_->Status("writes refused: " + refusal.message());
}

void NodeController::set_role(Role role) {
  if (role == role_) return;
  LogNotice(Event::kReplication, fmt::format("role: {} -> {}", RoleName(role_), RoleName(role)));
  role_ = role;
}

Status NodeController::write_fence() const {
  return engine_ ? engine_->write_fence() : Status::Ok();
}

Status NodeController::SetWriteFence(Status why) {
  if (!engine_) return Status::Internal("no engine to fence");
  const bool was_fenced = !engine_->write_fence().ok();
  const std::string reason = why.ToString();
  Status st = engine_->SetWriteFence(std::move(why));
  if (!st.ok()) return st;
  if (!was_fenced) {
    LogEvent(spdlog::level::warn, Event::kWriteFence, engine_->durable_lsn(),
             fmt::format("writes fenced ({}); reads keep working", reason));
    notifier_->Status("writes fenced: " + reason);
  }
  return Status::Ok();
}

void NodeController::ClearWriteFence() {
  if (!engine_ || engine_->write_fence().ok()) return;
  engine_->ClearWriteFence();
  LogEvent(spdlog::level::info, Event::kWriteFence, engine_->durable_lsn(), "write fence lifted; writes accepted");
  notifier_->Status("serving");
}

void NodeController::OnWriteError(const Status& status) {
  if (status.IsNoSpace()) {
    if (!in_no_space_) {
      in_no_space_ = true;
      LogEvent(spdlog::level::err, Event::kNoSpace, engine_->durable_lsn(),
               "out of disk space: writes fail until space is freed (" + status.message() + ")");
    }
    return;
  }
  CheckFaults();
}

void NodeController::CheckNoSpaceCleared(const EngineStats& stats) {
  if (in_no_space_ && stats.no_space.empty()) {
    in_no_space_ = false;
    LogEvent(spdlog::level::info, Event::kNoSpace, stats.durable_lsn, "disk space available again: writes accepted");
  }
}

}  // namespace kvd::daemon
