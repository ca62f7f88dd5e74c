// When automatic snapshots are due: WAL growth relative to the data size with
// a floor, an absolute WAL growth, the interval, and the back-off after a
// failure, on a fake clock (the scheduler reads Env::Now()).
#include <doctest/doctest.h>

#include "config/config.h"
#include "kvd/fake_clock_env.h"
#include "node/snapshot_policy.h"

namespace kvd::daemon {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr uint64_t kMiB = 1ull << 20;

SnapshotTriggers Defaults() {
  const Config c;  // what kvd uses when kvd.toml names no [snapshot] key
  return {c.snapshot_interval, c.snapshot_wal_bytes, c.snapshot_wal_growth_percent, c.snapshot_wal_min_bytes};
}

TEST_CASE("the defaults are on: 100% growth over a 64 MiB floor, and hourly") {
  const SnapshotTriggers t = Defaults();
  CHECK(t.wal_growth_percent == 100);
  CHECK(t.wal_min_bytes == 64 * kMiB);
  CHECK(t.interval == hours(1));
  CHECK(t.wal_bytes == 0);
}

TEST_CASE("wal_growth: the WAL grew by the data size, and by at least the floor") {
  FakeClockEnv clock(Env::Default());
  const SnapshotTriggers t = Defaults();
  // No snapshot yet (data size 0): the floor alone decides.
  SnapshotPolicy p(clock.Now(), 0, 0, 0);
  CHECK(p.GrowthThreshold(t) == 64 * kMiB);
  CHECK(p.Due(t, {64 * kMiB - 1, 10}, clock.Now()) == nullptr);
  CHECK(std::string(p.Due(t, {64 * kMiB, 10}, clock.Now())) == "wal_growth");

  // A snapshot of 200 MiB: now the WAL may grow by 200 MiB.
  p.Started({64 * kMiB, 10}, clock.Now());
  p.Succeeded(200 * kMiB);
  CHECK(p.data_bytes() == 200 * kMiB);
  CHECK(p.GrowthThreshold(t) == 200 * kMiB);
  CHECK(p.Grown({64 * kMiB, 10}) == 0);
  CHECK(p.Due(t, {64 * kMiB + 199 * kMiB, 20}, clock.Now()) == nullptr);
  CHECK(std::string(p.Due(t, {64 * kMiB + 200 * kMiB, 20}, clock.Now())) == "wal_growth");

  // 50%: half of it.
  SnapshotTriggers half = t;
  half.wal_growth_percent = 50;
  CHECK(p.GrowthThreshold(half) == 100 * kMiB);
  CHECK(std::string(p.Due(half, {64 * kMiB + 100 * kMiB, 20}, clock.Now())) == "wal_growth");
  // Off.
  SnapshotTriggers off = t;
  off.wal_growth_percent = 0;
  off.interval = std::chrono::milliseconds(0);
  CHECK(p.GrowthThreshold(off) == 0);
  CHECK(p.Due(off, {64 * kMiB + 500 * kMiB, 20}, clock.Now()) == nullptr);
}

TEST_CASE("WAL replayed at start-up counts as growth") {
  FakeClockEnv clock(Env::Default());
  const SnapshotTriggers t = Defaults();
  // Recovery started from a 10 MiB snapshot at LSN 100 and replayed 70 MiB.
  SnapshotPolicy p(clock.Now(), 100, 10 * kMiB, 70 * kMiB);
  CHECK(p.Grown({0, 100}) == 70 * kMiB);
  CHECK(std::string(p.Due(t, {1, 101}, clock.Now())) == "wal_growth");
}

TEST_CASE("interval: due once it passed since the last snapshot, only if anything was written") {
  FakeClockEnv clock(Env::Default());
  const SnapshotTriggers t = Defaults();
  SnapshotPolicy p(clock.Now(), 5, 4096, 0);
  clock.Advance(hours(2));
  CHECK(p.Due(t, {0, 5}, clock.Now()) == nullptr);  // nothing new
  CHECK(std::string(p.Due(t, {100, 6}, clock.Now())) == "interval");

  p.Started({100, 6}, clock.Now());
  p.Succeeded(4096);
  clock.Advance(minutes(59));
  CHECK(p.Due(t, {200, 7}, clock.Now()) == nullptr);
  clock.Advance(minutes(1));
  CHECK(std::string(p.Due(t, {200, 7}, clock.Now())) == "interval");
}

TEST_CASE("wal_bytes: an absolute growth bound, whatever the data size") {
  FakeClockEnv clock(Env::Default());
  SnapshotTriggers t = Defaults();
  t.wal_bytes = 1 * kMiB;
  SnapshotPolicy p(clock.Now(), 0, 0, 0);
  p.Started({0, 1}, clock.Now());
  p.Succeeded(1024 * kMiB);
  CHECK(p.Due(t, {kMiB - 1, 2}, clock.Now()) == nullptr);
  CHECK(std::string(p.Due(t, {kMiB, 2}, clock.Now())) == "wal_bytes");
}

TEST_CASE("growth during a snapshot counts toward the next; a failure keeps the baseline and backs off") {
  FakeClockEnv clock(Env::Default());
  SnapshotTriggers t = Defaults();
  t.wal_min_bytes = kMiB;
  SnapshotPolicy p(clock.Now(), 0, 0, 0);
  p.Started({kMiB, 10}, clock.Now());
  // 3 MiB written while the child runs; it succeeds with a 1 MiB snapshot.
  p.Succeeded(kMiB);
  CHECK(p.Grown({4 * kMiB, 30}) == 3 * kMiB);
  CHECK(std::string(p.Due(t, {4 * kMiB, 30}, clock.Now())) == "wal_growth");

  // It fails: the growth stays counted from the last good snapshot, but no
  // automatic trigger for a few seconds.
  p.Started({4 * kMiB, 30}, clock.Now());
  p.Failed(clock.Now());
  CHECK(p.Grown({4 * kMiB, 30}) == 3 * kMiB);
  CHECK(p.Due(t, {4 * kMiB, 30}, clock.Now()) == nullptr);
  clock.Advance(SnapshotPolicy::kRetryDelay - seconds(1));
  CHECK(p.Due(t, {4 * kMiB, 30}, clock.Now()) == nullptr);
  clock.Advance(seconds(1));
  CHECK(std::string(p.Due(t, {4 * kMiB, 30}, clock.Now())) == "wal_growth");
}

}  // namespace
}  // namespace kvd::daemon
