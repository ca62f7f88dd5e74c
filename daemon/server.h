// Server: the serving half of kvd, wired around one libuv loop.
//
//   Listener -> Connection (Session) -> Dispatcher -> Engine
//   Engine committer -> CommitBridge (uv_async) -> Dispatcher (sink)
//     -> reply slots -> dirty connections -> flushed in the prepare phase
//   timers: snapshot interval, housekeeping (idle clients, WAL-size trigger,
//   STATUS= line, disk-space recovery), watchdog; signals: stop, reload.
//
// Replies are written from the prepare phase (like Redis's beforeSleep): all
// replies a connection earned during one loop iteration leave in one write.
//
// Threading: loop thread only (the engine's notify is the one exception, and
// it only touches the bridge's uv_async).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/commit_bridge.h"
#include "serve/native_codec.h"
#include "config/config.h"
#include "serve/connection.h"
#include "serve/dispatcher.h"
#include "net/listener.h"
#include "sys/notify.h"
#include "sys/signals.h"
#include "node/snapshotter.h"
#include "node/status_report.h"

namespace kvd::daemon {

class Server : public DispatchHost, public ConnectionHost {
 public:
  Server(uv_loop_t* loop, Config config, Env* env, Notifier* notifier);
  ~Server() override;

  // For EngineOptions.notify (valid before Start).
  std::function<void()> EngineNotify() { return bridge_.NotifyFn(); }
  // Takes the recovered engine, listens, starts timers and signals.
  Status Start(std::unique_ptr<Engine> engine, RecoveryReport recovery);
  // Shutdown as on SIGTERM (also used by tests and fatal errors).
  void BeginShutdown(std::string_view why);
  // After uv_run returned: 0 clean, 3 when the final fdatasync failed.
  int exit_code() const { return exit_code_; }
  // Whether systemd passed the listening socket (kvd.socket, LISTEN_FDS).
  bool socket_from_systemd() const { return listener_.from_systemd(); }

  // DispatchHost
  Session* FindSession(uint64_t id) override;
  void SessionReady(Session* s) override;
  std::string StatusJson() override;
  Result<std::string> ConfigGetJson(std::string_view name) override;
  Status ConfigSet(std::string_view name, std::string_view value) override;
  void RequestSnapshot() override { StartSnapshot("request"); }
  void OnWriteError(const Status& status) override;

  // ConnectionHost
  void MarkDirty(Connection* c) override;
  void RequestClose(Connection* c) override;

 private:
  enum class Phase { kServing, kDraining, kFlushing, kDone };

  void OnAccept(uv_stream_t* server);
  void FlushDirty();
  void AfterPoll();
  void CheckFaults();
  void Housekeeping();
  void WatchdogTick();
  void Reload();
  void ApplyConfig(const Config& next);
  void RestartSnapshotTimer();
  void StartSnapshot(const char* reason);
  void OnSnapshotDone(const SnapshotOutcome& o);
  void ShutdownStep();
  void CloseAllConnections();
  void StopHandles();

  uv_loop_t* loop_;
  Config config_;
  Env* env_;
  Notifier* notifier_;
  const std::chrono::steady_clock::time_point started_;

  ServerCounters counters_;
  std::unique_ptr<Engine> engine_;
  RecoveryReport recovery_;
  Dispatcher dispatcher_;
  NativeProtocol protocol_;
  CommitBridge bridge_;
  Listener listener_;
  SignalWatcher signals_;
  std::unique_ptr<Snapshotter> snapshotter_;
  SnapshotHistory snapshots_;

  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::vector<uint64_t> dirty_;
  uint64_t next_conn_id_ = 1;

  UvHandle<uv_prepare_t> prepare_;
  UvHandle<uv_timer_t> housekeeping_;
  UvHandle<uv_timer_t> snapshot_timer_;
  UvHandle<uv_timer_t> watchdog_;
  UvHandle<uv_timer_t> shutdown_timer_;

  // Fault and progress tracking.
  bool refusal_logged_ = false;
  bool in_no_space_ = false;
  uint64_t last_groups_ = 0;
  std::chrono::steady_clock::time_point last_slow_log_{};
  uint64_t slow_syncs_unlogged_ = 0;
  Lsn watchdog_durable_ = 0;
  std::chrono::steady_clock::time_point watchdog_progress_;
  uint64_t wal_bytes_baseline_ = 0;
  Lsn last_snapshot_lsn_ = 0;
  std::chrono::steady_clock::time_point snapshot_retry_after_{};
  uint64_t housekeeping_ticks_ = 0;

  Phase phase_ = Phase::kServing;
  std::chrono::steady_clock::time_point shutdown_started_;
  int exit_code_ = 0;
};

}  // namespace kvd::daemon
