// The engine's time-based policy reads the Env's clock: a fake clock drives
// batch mode's flush_interval and none mode's write interval, no sleeps.
// The intervals are hours long, so real time can never be what triggers.
#include <doctest/doctest.h>

#include "kvd/fake_clock_env.h"
#include "kvd/fault_env.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::BasicOptions;
using testing::MustOpen;
using testing::NotifyCounter;
using testing::RecordingSink;
using testing::TempDir;
using Op = FaultEnv::Op;
using std::chrono::minutes;

TEST_CASE("batch mode: flush_interval on a fake clock bounds what is acknowledged at once") {
  TempDir dir;
  FaultEnv faults(Env::Default());
  FakeClockEnv env(&faults);
  NotifyCounter notes;
  auto o = BasicOptions(&env, dir, DurabilityMode::kBatch);
  o.durability.batch_size = 1000;
  o.durability.flush_interval = std::chrono::hours(1);
  o.notify = notes.Hook();
  auto e = MustOpen(o);
  RecordingSink sink;

  // The sync starts at once, long before any interval passed: no time
  // trigger is needed (group_commit.h).
  uint64_t seen = notes.count();
  REQUIRE(e->Put("a", "1", false)->done);
  REQUIRE(notes.WaitPastFor(seen, std::chrono::seconds(30)));
  e->Poll(&sink);
  CHECK(e->stats().groups == 1);
  CHECK(e->durable_lsn() == 1);

  // The bound: once the oldest not-durable acknowledged write is older than
  // flush_interval (its sync has not been collected yet), the next write
  // waits for its sync instead.
  REQUIRE(e->Put("b", "2", false)->done);
  env.Advance(minutes(61));
  auto t = e->Put("c", "3", false);
  REQUIRE(t.has_value());
  CHECK_FALSE(t->done);
  REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
  REQUIRE(sink.Find(t->lsn) != nullptr);
  CHECK(sink.Find(t->lsn)->status.ok());
  REQUIRE(e->Close(&sink).ok());
}

TEST_CASE("none mode: buffered records are written once flush_interval passed on the fake clock") {
  TempDir dir;
  FaultEnv faults(Env::Default());
  FakeClockEnv env(&faults);
  NotifyCounter notes;
  auto o = BasicOptions(&env, dir, DurabilityMode::kNone);
  o.durability.flush_interval = std::chrono::hours(1);
  o.notify = notes.Hook();
  auto e = MustOpen(o);
  RecordingSink sink;
  const uint64_t writes = faults.count(Op::kWrite);  // no job ran yet, so no zero-fill either
  for (int i = 0; i < 5; ++i) REQUIRE(e->Put("k" + std::to_string(i), "v", false)->done);
  env.Advance(minutes(59));
  e->Tick(env.Now(), &sink);
  CHECK(faults.count(Op::kWrite) == writes);

  env.Advance(minutes(1));
  const uint64_t seen = notes.count();
  e->Tick(env.Now(), &sink);
  REQUIRE(notes.WaitPastFor(seen, std::chrono::seconds(30)));  // a commit started
  e->Poll(&sink);
  CHECK(faults.count(Op::kWrite) > writes);
  CHECK(e->last_lsn() == 5);
  CHECK(e->durable_lsn() == 0);  // written, not synced: none mode
  CHECK(e->stats().groups == 0);
  REQUIRE(e->Close(&sink).ok());
}

}  // namespace
}  // namespace kvd
