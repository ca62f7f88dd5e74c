// Engine::SetDeferredCommitStart / StartCommits: the daemon's loop submits a
// turn's writes, then starts one commit holding all of them.
#include <doctest/doctest.h>

#include <string>

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

// A sync-mode engine in deferred-start mode, counting its notifications.
struct DeferredEngine {
  TempDir dir;
  FaultEnv env{Env::Default()};
  NotifyCounter notes;
  std::unique_ptr<Engine> e;

  explicit DeferredEngine(uint32_t batch_size = DurabilityOptions{}.batch_size) {
    auto o = BasicOptions(&env, dir, DurabilityMode::kSync);
    o.notify = notes.Hook();
    o.durability.batch_size = batch_size;
    e = MustOpen(o);
    e->SetDeferredCommitStart(true);
  }
};

TEST_CASE("deferred start: writes wait for StartCommits, then share one fdatasync") {
  DeferredEngine d;
  FaultEnv& env = d.env;
  NotifyCounter& notes = d.notes;
  auto& e = d.e;
  RecordingSink sink;
  const uint64_t syncs_before = env.count(Op::kSync);
  const uint64_t notes_before = notes.count();
  Lsn last = 0;
  for (int i = 0; i < 50; ++i) {
    auto t = e->Put("key" + std::to_string(i), "value", false);
    REQUIRE(t.has_value());
    CHECK_FALSE(t->done);
    last = t->lsn;
  }
  e->Poll(&sink);  // collects, but starts nothing while deferred
  CHECK(env.count(Op::kSync) == syncs_before);
  CHECK(notes.count() == notes_before);
  CHECK(sink.writes.empty());
  CHECK(e->durable_lsn() < last);

  e->StartCommits();
  notes.WaitPast(notes_before);
  e->Poll(&sink);
  CHECK(sink.writes.size() == 50);
  CHECK(e->durable_lsn() == last);
  CHECK(e->state().Get("key49").has_value());  // applied only now, after its sync
  const EngineStats st = e->stats();
  CHECK(st.groups == 1);  // one group of 50, not 1 + 49
  CHECK(st.grouped_records == 50);
  CHECK(env.count(Op::kSync) - syncs_before == 1);

  // Rules are unchanged when deferring: a FLUSH still gets its own sync and
  // WaitDurable still drives commits itself.
  auto t = e->Put("late", "v", false);
  REQUIRE(t.has_value());
  REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
  CHECK(sink.writes.size() == 51);
  CHECK(e->Close(&sink).ok());
}

TEST_CASE("deferred start: a full group still starts at once") {
  DeferredEngine d(4);
  NotifyCounter& notes = d.notes;
  auto& e = d.e;
  RecordingSink sink;
  const uint64_t notes_before = notes.count();
  for (int i = 0; i < 4; ++i) {
    // Not "k" + std::to_string(i): g++ 12 -O3 reports a false -Wrestrict in
    // operator+(const char*, string&&) (GCC bug 105329).
    std::string key = "k";
    key += std::to_string(i);
    REQUIRE(e->Put(key, "v", false).has_value());
  }
  notes.WaitPast(notes_before);  // the 4th write closed the group and started it
  e->Poll(&sink);
  CHECK(sink.writes.size() == 4);
  CHECK(e->Close(&sink).ok());
}

}  // namespace
}  // namespace kvd
