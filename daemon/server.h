// Server: the composition root of a serving kvd. It builds the rooms and
// wires them around one libuv loop; it holds no logic of its own beyond
// that wiring.
//
//   FrontEnd (listeners -> Connection -> Session + the protocol's Codec)
//     -> Dispatcher (neutral commands) -> Engine, owned by the NodeController
//   Engine committer -> CommitBridge (uv_async) -> Dispatcher (sink)
//     -> reply slots -> dirty connections -> flushed in the prepare phase
//   SnapshotScheduler (forked snapshots), Housekeeping (timers),
//   ConfigControl (CONFIG, SIGHUP), SignalWatcher, Shutdown.
//
// The prepare phase (once per loop turn, after every ready socket was read)
// starts the next commit with all writes read so far and sends the replies
// while it runs, like Redis's beforeSleep.
//
// Threading: loop thread only (the engine's notify is the one exception, and
// it only touches the bridge's uv_async).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cluster/coordinator.h"
#include "config/config_control.h"
#include "metrics/metrics_endpoint.h"
#include "node/housekeeping.h"
#include "node/node_controller.h"
#include "node/snapshot_scheduler.h"
#include "resp/resp_service.h"
#include "repl/replication.h"
#include "serve/dispatcher.h"
#include "serve/front_end.h"
#include "shutdown.h"
#include "sys/notify.h"
#include "sys/signals.h"

namespace kvd::daemon {

class Server : public DispatchHost {
 public:
  Server(uv_loop_t* loop, Config config, Env* env, Notifier* notifier);
  ~Server() override;

  // For EngineOptions.notify (valid before Start).
  std::function<void()> EngineNotify() { return node_.EngineNotify(); }
  // For EngineOptions.commit_observer: replication's feed, or nullptr when off.
  CommitObserver* EngineObserver() { return repl_.observer(); }
  Replication& replication() { return repl_; }
  // Takes the recovered engine, listens, starts timers and signals.
  Status Start(std::unique_ptr<Engine> engine, RecoveryReport recovery);
  // Shutdown as on SIGTERM (also used by tests and fatal errors).
  // A cluster node resigns its leader lease first (docs/cluster.md).
  void BeginShutdown(std::string_view why);
  // After uv_run returned: 0 clean, 3 when the final fdatasync failed.
  int exit_code() const { return shutdown_.exit_code(); }
  // Whether systemd passed the listening socket (kvd.socket, LISTEN_FDS).
  bool socket_from_systemd() const { return native_.socket_from_systemd(); }
  // The native protocol on TCP as well (not in kvd.toml yet: tests, and the
  // replication and RESP issues, use it). Port 0: ephemeral, see tcp_port().
  Status ListenTcp(const std::string& host, uint16_t port) { return native_.ListenTcp(host, port); }
  uint16_t tcp_port() const { return native_.tcp_port(); }
  // Start-up warnings about where the data lives (tmpfs, NFS ...), repeated
  // in STATUS as storage_warnings.
  void set_storage_warnings(std::vector<std::string> w) { storage_warnings_ = std::move(w); }

  // DispatchHost
  Session* FindSession(uint64_t id) override;
  void SessionReady(Session* s) override;
  std::string StatusJson() override;
  Result<std::string> ConfigGetJson(std::string_view name) override { return config_.GetJson(name); }
  Status ConfigSet(std::string_view name, std::string_view value, const Peer& who) override {
    return config_.Set(name, value, who.Describe());
  }
  void RequestSnapshot() override { snapshots_.Trigger("request"); }
  void OnWriteError(const Status& status) override { node_.OnWriteError(status); }
  Result<Epoch> Promote(bool force, Epoch epoch) override { return repl_.BecomePrimary(epoch, force); }
  Status Replicate(std::string_view primary) override;
  Status PrimaryGate(bool write) override { return cluster_ ? cluster_->PrimaryGate(write) : Status::Ok(); }
  std::optional<std::chrono::milliseconds> ReadBarrier() override {
    return read_barrier_ ? repl_.SyncReadWait() : std::nullopt;
  }
  Status ReadBarrierFailure() override { return repl_.SyncReadFailure(); }

 private:
  void OnConfigApplied(const Config& before, const Config& after);
  void StopHandles();
  // Every protocol's front end: the native one, then RESP when configured.
  std::vector<FrontEnd*> FrontEnds();
  // The metrics endpoint's copy of everything it shows (loop thread).
  void FillMetrics(MetricsSnapshot* s);
  // Read-your-writes: wakes parked reads and keeps lsn_wait_timer_ at the
  // earliest deadline (prepare phase).
  void WakeParkedReads();

  uv_loop_t* loop_;
  const std::chrono::steady_clock::time_point started_;
  ConfigControl config_;
  ServerCounters counters_;
  RequestLatency latency_;  // recorded by sessions only while metrics are on
  Dispatcher dispatcher_;
  NodeController node_;
  Replication repl_;
  uint64_t next_conn_id_ = 1;
  FrontEnd native_;
  Status resp_error_;                 // [resp] could not be set up: Start fails with it
  std::unique_ptr<RespService> resp_;  // nullptr unless [resp] is configured
  SnapshotScheduler snapshots_;
  Housekeeping housekeeping_;
  SignalWatcher signals_;
  Shutdown shutdown_;
  UvHandle<uv_prepare_t> prepare_;
  UvHandle<uv_timer_t> lsn_wait_timer_;  // the earliest parked read's deadline
  MetricsEndpoint metrics_;  // [metrics] listen; stopped in StopHandles
  std::vector<std::string> storage_warnings_;
  std::unique_ptr<Coordinator> cluster_;  // [cluster]: etcd decides the role; nullptr when off
  bool read_barrier_ = false;  // [replication] read_barrier, resolved at Start
};

}  // namespace kvd::daemon
