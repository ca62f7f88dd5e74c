// NodeController: what this node is and what its engine may do. It owns
// the engine (and the bridge that drives its commits on the loop), the
// recovery report, the node's role and the write fence, and watches the
// engine's faults (a sticky write refusal after a failed fdatasync, disk
// full, slow fdatasyncs) to log and report their transitions.
//
// Role and fence: the role is the primary unless [replication] makes this
// node a replica, or a role change (repl/replication_roles.cc: PROMOTE,
// REPLICATE) moves it. The fence is the
// engine's (Engine::SetWriteFence with kNotPrimary / kFenced: reversible,
// unlike the refusal after a failed fdatasync); the replication and failover
// parts raise and lift it through here, so every change is logged once.
//
// Threading: loop thread only (the engine's notify only touches the
// bridge's uv_async).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string_view>

#include "config/config.h"
#include "kvd/engine.h"
#include "node/commit_bridge.h"
#include "sys/notify.h"

namespace kvd::daemon {

enum class Role : uint8_t { kPrimary, kReplica };
std::string_view RoleName(Role role);  // "primary", "replica"

class NodeController {
 public:
  // sink: where engine completions go (the dispatcher). config: the live
  // configuration (slow_sync_warning is read at each commit).
  NodeController(uv_loop_t* loop, CompletionSink* sink, const Config* config, Notifier* notifier);
  ~NodeController();
  NodeController(const NodeController&) = delete;
  NodeController& operator=(const NodeController&) = delete;

  // For EngineOptions.notify (valid before Adopt).
  std::function<void()> EngineNotify() { return bridge_.NotifyFn(); }
  // Takes the recovered engine.
  void Adopt(std::unique_ptr<Engine> engine, RecoveryReport recovery);
  // Starts driving its commits (Poll once now, then on notify and timer).
  void Run();
  Engine* engine() const { return engine_.get(); }
  const RecoveryReport& recovery() const { return recovery_; }
  CommitBridge& bridge() { return bridge_; }

  Role role() const { return role_; }
  // Replication (repl/replication.h) makes a configured replica kReplica at start.
  // A change is logged (journald KVD_EVENT=replication).
  void set_role(Role role);
  // OK while writes are allowed; kNotPrimary / kFenced while fenced.
  Status write_fence() const;
  // Writes fail with `why` (kNotPrimary or kFenced) until ClearWriteFence.
  // Reads go on. Logged at warning with the reason.
  Status SetWriteFence(Status why);
  void ClearWriteFence();

  // A write failed (disk full, refused ...): log the transition once.
  void OnWriteError(const Status& status);
  // Housekeeping: notices that disk space came back.
  void CheckNoSpaceCleared(const EngineStats& stats);
  // Closes the engine (everything appended is made durable, waiters are
  // answered through sink) and stops the bridge. Returns the engine's
  // verdict; the engine stays readable.
  Status CloseEngine(CompletionSink* sink);
  // Shutdown, after CloseEngine: closes the bridge's handles.
  void CloseHandles() { bridge_.Close(); }

 private:
  void AfterPoll();
  void CheckFaults();

  const Config* config_;
  Notifier* notifier_;
  std::unique_ptr<Engine> engine_;
  RecoveryReport recovery_;
  CommitBridge bridge_;
  Role role_ = Role::kPrimary;
  bool closed_ = false;

  // Fault and progress tracking.
  bool refusal_logged_ = false;
  bool in_no_space_ = false;
  uint64_t last_groups_ = 0;
  std::chrono::steady_clock::time_point last_slow_log_{};
  uint64_t slow_syncs_unlogged_ = 0;
};

}  // namespace kvd::daemon
