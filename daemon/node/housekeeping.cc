#include "node/housekeeping.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace kvd::daemon {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int kStatusLineEvery = 5;  // housekeeping ticks between STATUS= lines

}  // namespace

Housekeeping::Housekeeping(const Config* config, Notifier* notifier, NodeController* node,
                           SnapshotScheduler* snapshots, Hooks hooks)
    : config_(config),
      notifier_(notifier),
      node_(node),
      snapshots_(snapshots),
      hooks_(std::move(hooks)),
      watchdog_progress_(steady_clock::now()) {}

Status Housekeeping::Start(uv_loop_t* loop) {
  if (!InitTimer(loop, &timer_, this)) return Status::Internal("uv_timer_init failed");
  uint64_t ms = 1000;
  if (config_->idle_timeout.count() > 0) {
    ms = std::clamp<uint64_t>(static_cast<uint64_t>(config_->idle_timeout.count()) / 2, 10, 1000);
  }
  uv_timer_start(timer_.get(), [](uv_timer_t* t) { static_cast<Housekeeping*>(t->data)->Tick(); }, ms, ms);

  const auto wd = notifier_->watchdog_interval();
  if (wd.count() > 0) {
    if (!InitTimer(loop, &watchdog_, this)) return Status::Internal("uv_timer_init failed");
    const uint64_t wd_ms = std::max<uint64_t>(1, static_cast<uint64_t>(wd.count() / 1000));
    uv_timer_start(watchdog_.get(), [](uv_timer_t* t) { static_cast<Housekeeping*>(t->data)->WatchdogTick(); },
                   wd_ms, wd_ms);
    notifier_->Watchdog();
  }
  return Status::Ok();
}

void Housekeeping::Stop() {
  timer_.reset();
  watchdog_.reset();
}

void Housekeeping::Tick() {
  Engine* engine = node_->engine();
  if (engine == nullptr) return;
  const bool serving = hooks_.serving();
  if (config_->idle_timeout.count() > 0 && serving) {
    hooks_.close_idle(steady_clock::now(), config_->idle_timeout);
  }
  const EngineStats st = engine->stats();
  node_->CheckNoSpaceCleared(st);
  if (serving) snapshots_->Check(st);
  if (++ticks_ % kStatusLineEvery == 0 && serving) {
    std::string line = fmt::format("serving: {} keys, durable LSN {}, {} clients", engine->state().size(),
                                   st.durable_lsn, hooks_.clients());
    if (!st.write_refusal.empty()) line += "; writes refused: " + st.write_refusal;
    if (!st.no_space.empty()) line += "; out of disk space";
    notifier_->Status(line);
  }
}

void Housekeeping::WatchdogTick() {
  Engine* engine = node_->engine();
  if (engine == nullptr) return;
  // Healthy when the loop turns (this timer fired) and the committer is not
  // stuck: nothing is waiting for a commit, or durability advanced lately.
  const auto now = steady_clock::now();
  const EngineStats st = engine->stats();
  const bool waiting = hooks_.requests_waiting() ||
                       (engine->durability().mode != DurabilityMode::kNone && st.pending_records > 0);
  if (!waiting || st.durable_lsn != watchdog_durable_ || !st.write_refusal.empty()) {
    watchdog_durable_ = st.durable_lsn;
    watchdog_progress_ = now;
  }
  const auto stuck = now - watchdog_progress_;
  if (stuck < notifier_->watchdog_interval() * 3 / 2) {
    notifier_->Watchdog();
  } else {
    spdlog::warn("watchdog: no commit progress for {} ms with writes pending; not petting the watchdog",
                 duration_cast<milliseconds>(stuck).count());
  }
}

}  // namespace kvd::daemon
