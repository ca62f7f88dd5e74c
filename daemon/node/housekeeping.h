// Housekeeping: the periodic checks of a serving kvd, on two timers.
//   housekeeping (every second, or half the idle timeout): close idle
//   clients, notice that disk space came back, start a snapshot when the
//   snapshot policy says one is due, send a STATUS= line to systemd every few ticks;
//   watchdog (half of WatchdogSec, if set): pet systemd's watchdog while the
//   loop turns and the committer makes progress when writes wait for it.
// What it needs from the serving side comes through Hooks, so this room
// knows no connection.
//
// Threading: loop thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

#include "config/config.h"
#include "kvd/engine.h"
#include "net/uv_handle.h"
#include "node/node_controller.h"
#include "node/snapshot_scheduler.h"
#include "sys/notify.h"

namespace kvd::daemon {

class Housekeeping {
 public:
  struct Hooks {
    // Closes clients idle since before now - timeout.
    std::function<void(std::chrono::steady_clock::time_point now, std::chrono::milliseconds timeout)> close_idle;
    std::function<size_t()> clients;        // connected clients
    std::function<bool()> serving;          // false once shutdown began
    std::function<bool()> requests_waiting; // replies wait for a commit (writes, FLUSH)
  };
  Housekeeping(const Config* config, Notifier* notifier, NodeController* node, SnapshotScheduler* snapshots,
               Hooks hooks);

  Status Start(uv_loop_t* loop);
  void Stop();

 private:
  void Tick();
  void WatchdogTick();

  const Config* config_;
  Notifier* notifier_;
  NodeController* node_;
  SnapshotScheduler* snapshots_;
  Hooks hooks_;
  UvHandle<uv_timer_t> timer_;
  UvHandle<uv_timer_t> watchdog_;
  uint64_t ticks_ = 0;
  Lsn watchdog_durable_ = 0;
  std::chrono::steady_clock::time_point watchdog_progress_;
};

}  // namespace kvd::daemon
