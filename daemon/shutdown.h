// Shutdown: the sequence after SIGTERM/SIGINT (or a fatal error).
//   draining: no new clients (refused with ShuttingDown), no new requests
//     read; every request already read is still submitted and answered
//     (up to 5 s), snapshots are abandoned;
//   flushing: the engine is closed (everything appended made durable, its
//     verdict decides the exit code), waiters left get ShuttingDown, the
//     replies are sent (up to 10 s to clients that do not read);
//   done: connections closed, on_done closes the remaining handles so the
//     loop ends.
//
// Threading: loop thread only.
#pragma once

#include <chrono>
#include <functional>
#include <string_view>
#include <vector>

#include "net/uv_handle.h"
#include "node/node_controller.h"
#include "node/snapshot_scheduler.h"
#include "serve/dispatcher.h"
#include "serve/front_end.h"
#include "sys/notify.h"

namespace kvd::daemon {

class Shutdown {
 public:
  Shutdown(uv_loop_t* loop, Notifier* notifier, NodeController* node, Dispatcher* dispatcher,
           SnapshotScheduler* snapshots, std::vector<FrontEnd*> front_ends, std::function<void()> on_done);

  void Begin(std::string_view why);
  bool serving() const { return phase_ == Phase::kServing; }
  // 0 clean, 3 when the final fdatasync failed.
  int exit_code() const { return exit_code_; }
  void Close() { timer_.reset(); }

 private:
  enum class Phase { kServing, kDraining, kFlushing, kDone };
  void Step();
  size_t clients() const;

  uv_loop_t* loop_;
  Notifier* notifier_;
  NodeController* node_;
  Dispatcher* dispatcher_;
  SnapshotScheduler* snapshots_;
  std::vector<FrontEnd*> front_ends_;
  std::function<void()> on_done_;
  UvHandle<uv_timer_t> timer_;
  Phase phase_ = Phase::kServing;
  std::chrono::steady_clock::time_point started_;
  int exit_code_ = 0;
};

}  // namespace kvd::daemon
