// The clock behind the Env seam: the POSIX Env's is monotonic, wrappers
// forward it, and FakeClockEnv stands still until the test moves it.
#include <doctest/doctest.h>

#include "kvd/env.h"
#include "kvd/fake_clock_env.h"
#include "kvd/fault_env.h"

namespace kvd {
namespace {

TEST_CASE("the default Env's clock is the steady clock") {
  const Clock::time_point before = Clock::now();
  const Clock::time_point t = Env::Default()->Now();
  const Clock::time_point after = Clock::now();
  CHECK(t >= before);
  CHECK(t <= after);
  CHECK(Env::Default()->Now() >= t);
}

TEST_CASE("FakeClockEnv: time moves only when the test moves it; files still reach the wrapped Env") {
  FakeClockEnv env(Env::Default());
  const Clock::time_point t0 = env.Now();
  CHECK(t0 != Clock::time_point{});
  CHECK(env.Now() == t0);
  env.Advance(std::chrono::milliseconds(1500));
  CHECK(env.Now() - t0 == std::chrono::milliseconds(1500));
  env.Set(t0 + std::chrono::hours(2));
  CHECK(env.Now() == t0 + std::chrono::hours(2));
  CHECK(env.target() == Env::Default());
  CHECK(env.FileExists("/"));
}

TEST_CASE("an EnvWrapper forwards Now() to the Env it wraps") {
  FakeClockEnv fake(Env::Default());
  EnvWrapper outer(&fake);
  fake.Advance(std::chrono::seconds(42));
  CHECK(outer.Now() == fake.Now());
  // A fake clock over a fault-injecting Env: both seams at once.
  FaultEnv faults(Env::Default());
  FakeClockEnv both(&faults);
  const Clock::time_point t = both.Now();
  both.Advance(std::chrono::seconds(1));
  CHECK(both.Now() - t == std::chrono::seconds(1));
}

}  // namespace
}  // namespace kvd
