// Engine::RewindTo: a running engine cuts its log after an LSN into one
// set-aside file, restarts its state from snapshot + WAL up to there, and
// goes on writing from the next LSN; a restart recovers the same state.
#include <doctest/doctest.h>

#include <filesystem>

#include "kvd/salvage.h"
#include "kvd/snapshot.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::BasicOptions;
using testing::Contents;
using testing::MustOpen;
using testing::RecordingSink;
using testing::TempDir;

// key i = "k<i % 7>", so later records overwrite earlier ones.
Lsn PutDurable(Engine* e, int i, RecordingSink* sink) {
  auto t = e->Put("k" + std::to_string(i % 7), std::string(200, static_cast<char>('a' + i % 26)), true);
  REQUIRE(t.has_value());
  REQUIRE(e->WaitDurable(t->lsn, sink).ok());
  return t->lsn;
}

TEST_CASE("rewind: the tail after the fork goes to one file; state, LSNs and epochs are as at the fork") {
  TempDir dir;
  EngineOptions o = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
  o.segment_size = 4096;  // the tail spans several segments
  auto e = MustOpen(o);
  RecordingSink sink;
  std::map<std::string, std::string> at_fork;
  for (int i = 1; i <= 40; ++i) {
    if (i == 26) REQUIRE(e->BeginEpoch(2).ok());  // the tail's epoch, dropped by the rewind
    PutDurable(e.get(), i, &sink);
    if (i == 20) at_fork = Contents(e->state());
  }
  // Not yet durable when the rewind starts: it is made durable, then cut.
  auto pending = e->Put("late", "x", false);
  REQUIRE(pending.has_value());
  const std::string aside = dir.Sub("wal") + "/diverged-21-41.broken";
  auto r = e->RewindTo(20, aside, &sink);
  REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
  CHECK(r->records_set_aside == 21);
  CHECK(r->last_lsn_before == 41);
  const RecordingSink::Done* late = sink.Find(pending->lsn);
  REQUIRE(late != nullptr);  // made durable (and reported) before the cut
  CHECK(late->status.ok());
  REQUIRE(r->set_aside_files == std::vector<std::string>{aside});
  CHECK(e->last_lsn() == 20);
  CHECK(e->durable_lsn() == 20);
  CHECK(e->applied_lsn() == 20);
  CHECK(Contents(e->state()) == at_fork);
  CHECK(e->current_epoch() == 1);
  CHECK(e->epoch_history() == EpochHistory::Initial());

  // The set-aside file holds exactly LSNs 21..41, readable by salvage.
  State salvaged;
  SalvageReport sr;
  REQUIRE(SalvageWalFiles(Env::Default(), {aside}, &salvaged, &sr).ok());
  CHECK(sr.records == 21);
  CHECK(sr.first_lsn == 21);
  CHECK(sr.last_lsn == 41);
  CHECK(sr.files.at(0).segment_header);
  CHECK(sr.files.at(0).unreadable_bytes == 0);

  // Writing goes on from LSN 21, in the new epoch a replica would begin.
  REQUIRE(e->BeginEpoch(3).ok());
  RecordingSink after;  // LSNs start again at 21
  CHECK(PutDurable(e.get(), 100, &after) == 21);
  const auto before_restart = Contents(e->state());
  REQUIRE(e->Close(nullptr).ok());
  RecoveryReport rep;
  auto again = MustOpen(o, &rep);
  CHECK(rep.last_lsn == 21);
  CHECK(Contents(again->state()) == before_restart);
  CHECK(again->epoch_history().entries() == std::vector<EpochStart>{{1, 1}, {3, 21}});
  CHECK(std::filesystem::exists(aside));  // never deleted
}

TEST_CASE("rewind: from a snapshot below the fork; refused, with nothing changed, when a snapshot covers the tail") {
  TempDir dir;
  EngineOptions o = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
  auto e = MustOpen(o);
  RecordingSink sink;
  for (int i = 1; i <= 10; ++i) PutDurable(e.get(), i, &sink);
  REQUIRE(WriteSnapshot(Env::Default(), o.snapshot_dir, e->state(), e->SnapshotLsn()).has_value());
  REQUIRE(e->SnapshotInstalled(10).ok());
  for (int i = 11; i <= 20; ++i) PutDurable(e.get(), i, &sink);
  const auto at15 = [&] {
    State s;
    for (int i = 1; i <= 15; ++i) s.Put("k" + std::to_string(i % 7), std::string(200, static_cast<char>('a' + i % 26)));
    return Contents(s);
  }();

  SUBCASE("below the fork: state from the snapshot, then the WAL up to the fork") {
    auto r = e->RewindTo(15, dir.Sub("wal") + "/diverged-16-20.broken", &sink);
    REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
    CHECK(r->records_set_aside == 5);
    CHECK(e->last_lsn() == 15);
    CHECK(Contents(e->state()) == at15);
  }
  SUBCASE("a snapshot covers LSNs after the fork") {
    const auto before = Contents(e->state());
    auto r = e->RewindTo(5, dir.Sub("wal") + "/diverged-6-20.broken", &sink);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == Code::kInvalidArgument);
    CHECK(e->last_lsn() == 20);
    CHECK(Contents(e->state()) == before);
    CHECK_FALSE(std::filesystem::exists(dir.Sub("wal") + "/diverged-6-20.broken"));
    CHECK(PutDurable(e.get(), 21, &sink) == 21);  // still writable
  }
  SUBCASE("nothing after the fork: nothing set aside") {
    auto r = e->RewindTo(20, dir.Sub("wal") + "/x.broken", &sink);
    REQUIRE(r.has_value());
    CHECK(r->records_set_aside == 0);
    CHECK(r->set_aside_files.empty());
    CHECK(e->last_lsn() == 20);
  }
}

}  // namespace
}  // namespace kvd
