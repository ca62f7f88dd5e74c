#include "shutdown.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>

#include "sys/log.h"

namespace kvd::daemon {
namespace {

constexpr auto kDrainDeadline = std::chrono::seconds(5);   // then Close the engine anyway
constexpr auto kFlushDeadline = std::chrono::seconds(10);  // then drop unsent replies

}  // namespace

Shutdown::Shutdown(uv_loop_t* loop, Notifier* notifier, NodeController* node, Dispatcher* dispatcher,
                   SnapshotScheduler* snapshots, std::vector<FrontEnd*> front_ends, std::function<void()> on_done)
    : loop_(loop),
      notifier_(notifier),
      node_(node),
      dispatcher_(dispatcher),
      snapshots_(snapshots),
      front_ends_(std::move(front_ends)),
      on_done_(std::move(on_done)) {}

size_t Shutdown::clients() const {
  size_t n = 0;
  for (const FrontEnd* f : front_ends_) n += f->size();
  return n;
}

void Shutdown::Begin(std::string_view why) {
  if (phase_ != Phase::kServing) {
    spdlog::info("{} during shutdown: already stopping", why);
    return;
  }
  phase_ = Phase::kDraining;
  started_ = std::chrono::steady_clock::now();
  notifier_->Stopping();
  Engine* engine = node_->engine();
  LogEvent(spdlog::level::info, Event::kShutdown, engine != nullptr ? engine->last_lsn() : 0,
           fmt::format("{}: stopping: no new clients; answering {} connected clients' requests", why, clients()));
  for (FrontEnd* f : front_ends_) f->BeginDrain();
  snapshots_->Stop();
  dispatcher_->OnSnapshotDone(Status::ShuttingDown("kvd is shutting down"), 0);
  dispatcher_->EndParkedReads();  // a read waiting for its LSN does not hold the drain
  if (InitTimer(loop_, &timer_, this)) {
    uv_timer_start(timer_.get(), [](uv_timer_t* t) { static_cast<Shutdown*>(t->data)->Step(); }, 0, 5);
  }
}

void Shutdown::Step() {
  const auto elapsed = std::chrono::steady_clock::now() - started_;
  if (phase_ == Phase::kDraining) {
    // Wait until every request already read has been submitted and
    // answered, so writes pipelined behind a read are not refused.
    const bool busy = !std::all_of(front_ends_.begin(), front_ends_.end(), [](FrontEnd* f) { return f->AllIdle(); });
    if (busy && elapsed < kDrainDeadline) return;
    Status st = node_->CloseEngine(dispatcher_);
    dispatcher_->BeginShutdown();
    const Lsn durable = node_->engine()->durable_lsn();
    if (st.ok()) {
      LogEvent(spdlog::level::info, Event::kShutdown, durable,
               fmt::format("WAL closed: everything up to LSN {} is durable", durable));
    } else {
      exit_code_ = 3;
      LogEvent(spdlog::level::critical, Event::kFsyncFailure, durable,
               "closing the WAL failed: " + st.ToString() + "; data after LSN " + std::to_string(durable) +
                   " may be lost");
    }
    phase_ = Phase::kFlushing;
    for (FrontEnd* f : front_ends_) f->MarkAllDirty();
    return;
  }
  if (phase_ == Phase::kFlushing) {
    const bool busy =
        !std::all_of(front_ends_.begin(), front_ends_.end(), [](FrontEnd* f) { return f->AllQuiescent(); });
    if (busy && elapsed < kFlushDeadline) return;
    if (busy) spdlog::warn("shutdown: dropping replies to clients that do not read them");
    phase_ = Phase::kDone;
    for (FrontEnd* f : front_ends_) f->CloseAll();
    on_done_();
    LogEvent(spdlog::level::info, Event::kShutdown, node_->engine()->durable_lsn(), "kvd stopped");
  }
}

}  // namespace kvd::daemon
