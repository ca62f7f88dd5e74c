// FakeClockEnv: an Env whose clock stands still until a test moves it.
//
// Forwards every file operation to the wrapped Env (Env::Default(), or a
// FaultEnv to combine a fake clock with injected faults) and answers Now()
// with a time the test sets, so time-based policy (batch mode's
// flush_interval, later leases and timeouts) is tested without sleeping and
// without depending on how fast the machine is.
//
// Thread safety: Now() may be called from any thread while the test advances
// the time from another.
#pragma once

#include <atomic>
#include <chrono>

#include "kvd/env.h"

namespace kvd {

class FakeClockEnv : public EnvWrapper {
 public:
  // Starts far from the clock's epoch, so "time_point{}" (the engine's
  // "unknown") is never mistaken for a real reading.
  explicit FakeClockEnv(Env* target, Clock::time_point start = Clock::time_point{} + std::chrono::hours(24))
      : EnvWrapper(target), now_(start.time_since_epoch().count()) {}

  Clock::time_point Now() override { return Clock::time_point(Clock::duration(now_.load(std::memory_order_acquire))); }

  void Advance(Clock::duration d) { now_.fetch_add(d.count(), std::memory_order_acq_rel); }
  void Set(Clock::time_point t) { now_.store(t.time_since_epoch().count(), std::memory_order_release); }

 private:
  std::atomic<Clock::rep> now_;
};

}  // namespace kvd
