// CommitBridge: connects the engine's committer thread to the loop.
//
// EngineOptions.notify runs on the committer thread after each commit; it
// only wakes the loop (net/loop_waker.h: thread-safe, coalescing). The wake, on
// the loop thread, calls Engine::Poll, which applies the group and reports
// every completed write to the sink. A timer calls Engine::Tick at
// flush_interval/2 for the time-based policy (batch mode's bound, none
// mode's background writes).
//
// Lifetime: the waker must outlive the engine's committer thread, so
// the bridge is created before Engine::Open and destroyed after the engine.
#pragma once

#include <chrono>
#include <functional>

#include "kvd/engine.h"
#include "net/loop_waker.h"
#include "net/uv_handle.h"

namespace kvd::daemon {

class CommitBridge {
 public:
  // after_poll runs on the loop after each Poll/Tick (fault checks, stats).
  CommitBridge(uv_loop_t* loop, CompletionSink* sink, std::function<void()> after_poll);
  // For EngineOptions.notify. Safe from any thread while the bridge lives.
  std::function<void()> NotifyFn();
  // Starts driving engine (Poll once now, then on notify and on the timer).
  void Attach(Engine* engine, std::chrono::microseconds flush_interval);
  void SetFlushInterval(std::chrono::microseconds flush_interval);
  // Runs on each notification before Engine::Poll (replication's WalFeed:
  // the committer's fdatasync report then rides on this wake instead of one
  // of its own). nullptr: none.
  void set_before_poll(std::function<void()> fn) { before_poll_ = std::move(fn); }
  // Stops the timer and ignores further notifications (shutdown, after Close).
  void Detach();
  // Closes the handles. Only after Engine::Close: the committer must not
  // notify any more.
  void Close() {
    Detach();
    waker_.Close();
    tick_.reset();
  }
  // Steady time of the last notification from the committer.
  std::chrono::steady_clock::time_point last_notify() const { return last_notify_; }

 private:
  void OnWake();
  static void OnTick(uv_timer_t* t);

  CompletionSink* sink_;
  std::function<void()> after_poll_;
  std::function<void()> before_poll_;
  Engine* engine_ = nullptr;
  LoopWaker waker_;
  UvHandle<uv_timer_t> tick_;
  std::chrono::steady_clock::time_point last_notify_;
};

}  // namespace kvd::daemon
