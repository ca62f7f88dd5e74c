// LoopWaker: wakes the loop from another thread (the committer), like
// uv_async_t but without its busy wait.
//
// Why not uv_async_t: in libuv 1.44 uv_async_send marks the handle "sending",
// writes the loop's eventfd, then marks it "sent"; the loop, woken by that
// write, spins (pause x 997, then sched_yield) on every handle still marked
// "sending". When the loop thread and the sender share a CPU (the benchmark
// pins a node to one), the woken loop preempts the sender right after its
// write and spins until the scheduler lets the sender finish: tens of µs of
// CPU per wakeup, the largest single cost a replicated write added.
//
// Here the sender publishes its data, then sets an atomic flag and writes
// the eventfd only if the flag was clear; the loop drains the eventfd and
// clears the flag *before* running the callback, so data published after the
// clear comes with a new write (a spare wakeup at worst, never a lost one)
// and nothing ever waits for the other thread. Wakes coalesce as with uv_async.
//
// Threading: Wake() from any thread while the waker lives; everything else
// on the loop thread. Lifetime: as for uv_async_t, the waker must outlive
// every thread that may call Wake(); Close() before uv_loop_close.
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>

#include "net/uv_handle.h"

namespace kvd::daemon {

class LoopWaker {
 public:
  // on_wake runs on the loop after one or more Wake() calls. If the eventfd
  // cannot be made, ok() is false and Wake() does nothing.
  LoopWaker(uv_loop_t* loop, std::function<void()> on_wake);
  ~LoopWaker() { Close(); }
  LoopWaker(const LoopWaker&) = delete;
  LoopWaker& operator=(const LoopWaker&) = delete;

  bool ok() const { return static_cast<bool>(poll_); }
  // Thread-safe, non-blocking.
  void Wake();
  // Stops watching and closes the handle (the eventfd after its close callback).
  void Close();

 private:
  static void OnReadable(uv_poll_t* p, int status, int events);

  std::function<void()> on_wake_;
  std::atomic<bool> pending_{false};
  int fd_ = -1;  // the eventfd; set before and cleared after any Wake()
  UvHandle<uv_poll_t> poll_;
};

}  // namespace kvd::daemon
