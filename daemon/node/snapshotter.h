// Snapshotter: runs one snapshot at a time in a forked child.
//
// Start() forks; the child runs RunSnapshotChild over its copy-on-write
// image of the State (consistent: the State only changes on the loop thread,
// which is the thread that forks). The parent watches the result pipe with a
// uv_poll, reaps the child with wait4 (for its peak RSS) and reports through
// on_done. The caller installs the snapshot (Engine::SnapshotInstalled) and
// answers waiters. A failed child never harms earlier snapshots (the writer
// only renames a complete, fsynced file into place).
//
// Threading: loop thread only.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

#include "kvd/engine.h"
#include "kvd/fd.h"
#include "net/uv_handle.h"

namespace kvd::daemon {

struct SnapshotOutcome {
  Status status;  // OK: a snapshot at lsn is durable
  Lsn lsn = 0;
  uint64_t entries = 0;
  uint64_t bytes = 0;
  std::chrono::microseconds duration{0};    // start to reaped
  std::chrono::microseconds child_write{0}; // as measured by the child
  std::chrono::microseconds fork_time{0};
  uint64_t child_peak_rss_bytes = 0;
  std::string reason;  // what triggered it: "interval", "wal_bytes", "request"
};

class Snapshotter {
 public:
  using DoneFn = std::function<void(const SnapshotOutcome&)>;
  Snapshotter(uv_loop_t* loop, Engine* engine, Env* env, std::string dir, DoneFn on_done);
  ~Snapshotter();
  Snapshotter(const Snapshotter&) = delete;
  Snapshotter& operator=(const Snapshotter&) = delete;

  // Forks a child unless one runs (then returns OK: the running one will
  // report). A fork failure is returned and also reported through on_done.
  Status Start(std::string reason);
  bool running() const { return pid_ > 0; }
  Lsn running_lsn() const { return lsn_; }
  std::chrono::steady_clock::time_point started() const { return started_; }
  // Shutdown: kills and reaps a running child (its temp file is cleaned up
  // by the next snapshot's prune). on_done is not called.
  void Abort();

 private:
  static void OnReadable(uv_poll_t* h, int status, int events);
  static void OnReapTimer(uv_timer_t* t);
  void ReadResult();
  void TryReap();
  void Finish(int wait_status, const ::rusage& ru);

  uv_loop_t* loop_;
  Engine* engine_;
  Env* env_;
  std::string dir_;
  DoneFn on_done_;

  pid_t pid_ = -1;
  Lsn lsn_ = 0;
  std::string reason_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::microseconds fork_time_{0};
  Fd result_fd_;
  std::string result_;
  bool eof_ = false;
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_timer_t> reap_timer_;
};

}  // namespace kvd::daemon
