// SnapshotScheduler: when snapshots are taken and what came of them. It
// starts one on request (SNAPSHOT) and whenever the SnapshotPolicy says an
// automatic one is due (WAL growth relative to the data size, an absolute
// WAL growth, or the interval when anything is new; checked by housekeeping
// and the interval timer, on the Env's clock); runs it through the
// Snapshotter (a forked child); installs a finished one in the engine (which
// then drops the WAL segments it covers); keeps the history STATUS reports;
// and tells on_done so waiting SNAPSHOT requests are answered. Automatic
// triggers back off for a few seconds after a failure.
//
// Threading: loop thread only.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "config/config.h"
#include "kvd/engine.h"
#include "kvd/log2_histogram.h"
#include "node/snapshot_policy.h"
#include "node/snapshotter.h"

namespace kvd::daemon {

struct SnapshotHistory {
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  bool have_last = false;
  SnapshotOutcome last;  // last successful one
  std::chrono::steady_clock::time_point last_at;
  std::string last_error;  // of the last failure, if the last attempt failed
  // Durations of the successful ones in milliseconds (metrics): 1 ms .. 17 min.
  Log2Histogram<0, 20> duration_ms;
};

class SnapshotScheduler {
 public:
  // on_done(status, lsn): a requested or automatic snapshot finished.
  using DoneFn = std::function<void(const Status& status, Lsn lsn)>;
  SnapshotScheduler(uv_loop_t* loop, Env* env, const Config* config, DoneFn on_done);

  // Starts scheduling for engine; `recovery` says which snapshot recovery
  // started from and how much WAL it replayed after it (growth that counts).
  Status Start(Engine* engine, const RecoveryReport& recovery);
  // "request" (or any reason for the log). Ignored while one runs (it will
  // report) or once stopped.
  void Trigger(const char* reason);
  // Housekeeping: starts an automatic snapshot if the policy says one is due.
  void Check(const EngineStats& stats);
  // After a configuration change of snapshot.interval.
  void RestartTimer();
  // Shutdown: no more snapshots; a running child is abandoned (the previous
  // snapshot is intact).
  void Stop();
  // Closes the handles.
  void Close();

  const SnapshotHistory& history() const { return history_; }
  // For STATUS: WAL growth since the last snapshot (what a restart would
  // replay) and the growth that triggers wal_growth (0: off).
  uint64_t wal_grown(const EngineStats& stats) const { return policy_ ? policy_->Grown(Progress(stats)) : 0; }
  uint64_t wal_growth_threshold() const { return policy_ ? policy_->GrowthThreshold(Triggers()) : 0; }
  bool running() const { return snapshotter_ && snapshotter_->running(); }
  Lsn running_lsn() const { return snapshotter_ ? snapshotter_->running_lsn() : 0; }
  std::chrono::steady_clock::time_point running_since() const {
    return snapshotter_ ? snapshotter_->started() : std::chrono::steady_clock::time_point{};
  }

 private:
  void OnDone(const SnapshotOutcome& o);
  SnapshotTriggers Triggers() const;
  WalProgress Progress(const EngineStats& stats) const;

  uv_loop_t* loop_;
  Env* env_;
  const Config* config_;
  DoneFn on_done_;
  Engine* engine_ = nullptr;
  std::unique_ptr<Snapshotter> snapshotter_;
  UvHandle<uv_timer_t> timer_;
  SnapshotHistory history_;
  bool stopped_ = false;
  std::unique_ptr<SnapshotPolicy> policy_;  // from Start
};

}  // namespace kvd::daemon
