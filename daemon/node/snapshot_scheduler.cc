#include "node/snapshot_scheduler.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>

#include "sys/log.h"

namespace kvd::daemon {
namespace {

using std::chrono::steady_clock;

}  // namespace

SnapshotScheduler::SnapshotScheduler(uv_loop_t* loop, Env* env, const Config* config, DoneFn on_done)
    : loop_(loop), env_(env), config_(config), on_done_(std::move(on_done)) {}

Status SnapshotScheduler::Start(Engine* engine, const RecoveryReport& recovery) {
  engine_ = engine;
  uint64_t snapshot_bytes = 0;
  if (!recovery.snapshot_path.empty()) {
    auto size = env_->FileSize(recovery.snapshot_path);
    if (size) snapshot_bytes = *size;
  }
  policy_ = std::make_unique<SnapshotPolicy>(env_->Now(), recovery.snapshot_lsn, snapshot_bytes,
                                             recovery.wal.bytes_replayed);
  snapshotter_ = std::make_unique<Snapshotter>(loop_, engine_, env_, config_->snapshot_path,
                                               [this](const SnapshotOutcome& o) { OnDone(o); });
  if (!InitTimer(loop_, &timer_, this)) return Status::Internal("uv_timer_init failed");
  RestartTimer();
  return Status::Ok();
}

void SnapshotScheduler::RestartTimer() {
  if (!timer_) return;
  uv_timer_stop(timer_.get());
  const auto ms = static_cast<uint64_t>(config_->snapshot_interval.count());
  if (ms == 0 || stopped_) return;
  // Housekeeping checks every second as well; this keeps short intervals on time.
  uv_timer_start(timer_.get(), [](uv_timer_t* t) {
    auto* self = static_cast<SnapshotScheduler*>(t->data);
    if (self->engine_) self->Check(self->engine_->stats());
  }, ms, ms);
}

SnapshotTriggers SnapshotScheduler::Triggers() const {
  return {config_->snapshot_interval, config_->snapshot_wal_bytes, config_->snapshot_wal_growth_percent,
          config_->snapshot_wal_min_bytes};
}

WalProgress SnapshotScheduler::Progress(const EngineStats& stats) const {
  return {stats.wal.appended_bytes, engine_->SnapshotLsn()};
}

void SnapshotScheduler::Trigger(const char* reason) {
  if (!snapshotter_ || snapshotter_->running() || stopped_) return;
  spdlog::debug("snapshot: starting ({}) at LSN {}", reason, engine_->SnapshotLsn());
  policy_->Started(Progress(engine_->stats()), env_->Now());
  (void)snapshotter_->Start(reason);  // failures arrive through OnDone
}

void SnapshotScheduler::Check(const EngineStats& stats) {
  if (stopped_ || !policy_ || running()) return;
  if (const char* reason = policy_->Due(Triggers(), Progress(stats), env_->Now())) Trigger(reason);
}

void SnapshotScheduler::OnDone(const SnapshotOutcome& o) {
  Status st = o.status;
  if (st.ok()) {
    Status installed = engine_->SnapshotInstalled(o.lsn);
    if (!installed.ok()) {
      // The snapshot itself is durable; only pruning failed. Still a success.
      spdlog::error("snapshot at LSN {} written, but cleaning up after it failed: {}", o.lsn, installed.ToString());
    }
    ++history_.succeeded;
    history_.have_last = true;
    history_.last = o;
    history_.last_at = steady_clock::now();
    history_.last_error.clear();
    history_.duration_ms.Add(static_cast<uint64_t>(std::max<int64_t>(0, o.duration.count() / 1000)));
    policy_->Succeeded(o.bytes);
    LogEvent(spdlog::level::info, Event::kSnapshot, o.lsn,
             fmt::format("snapshot at LSN {} ({}): {} keys, {} bytes, took {:.1f} ms (child wrote in {:.1f} ms), "
                         "fork {} us, child peak RSS {:.1f} MiB",
                         o.lsn, o.reason, o.entries, o.bytes, static_cast<double>(o.duration.count()) / 1000.0,
                         static_cast<double>(o.child_write.count()) / 1000.0, o.fork_time.count(),
                         static_cast<double>(o.child_peak_rss_bytes) / (1024.0 * 1024.0)));
  } else {
    ++history_.failed;
    history_.last_error = st.ToString();
    policy_->Failed(env_->Now());
    LogEvent(spdlog::level::err, Event::kSnapshotFailed, o.lsn,
             fmt::format("snapshot at LSN {} ({}) failed: {}; the previous snapshot is intact; retrying at the "
                         "next trigger",
                         o.lsn, o.reason, st.ToString()));
  }
  on_done_(st, o.lsn);
}

void SnapshotScheduler::Stop() {
  stopped_ = true;
  if (snapshotter_ && snapshotter_->running()) {
    snapshotter_->Abort();
    spdlog::info("snapshot in progress abandoned for shutdown (the previous snapshot is intact)");
  }
  if (timer_) uv_timer_stop(timer_.get());
}

void SnapshotScheduler::Close() {
  timer_.reset();
  if (snapshotter_) snapshotter_->Abort();
}

}  // namespace kvd::daemon
