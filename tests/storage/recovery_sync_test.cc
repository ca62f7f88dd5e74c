// Recovery makes what it recovered durable before the engine appends again.
//
// A process crash (not a power cut) in batch or none mode leaves records in
// the page cache only. Recovery reads them, the engine reports them as its
// state and builds on them -- so they must be fsynced before anything else
// happens: otherwise a power cut right after start-up takes records the
// engine already served, or takes them while keeping newer ones synced into
// a later segment (a hole). Engine::Open syncs the last recovered segment
// (SyncLastSegment in lib/storage/engine_open.cc); these tests fail without it.
#include <doctest/doctest.h>

#include "kvd/fault_env.h"
#include "storage/wal_coding.h"
#include "tests/storage/engine_test_util.h"
#include "tests/storage/wal_test_util.h"

namespace kvd {
namespace {

constexpr uint64_t kSegmentSize = 4096;

// What a crashed process leaves: a segment whose creation and header were
// made durable (as the WAL writer does), then records 1..n written but never
// fsynced.
void CrashedProcessWal(FaultEnv* env, const std::string& wal_dir, Lsn n) {
  REQUIRE(env->CreateDirs(wal_dir).ok());
  auto f = env->NewWritableFile(JoinPath(wal_dir, SegmentFileName(1)), OpenMode::kCreateExclusive);
  REQUIRE_MESSAGE(f.has_value(), f.error().ToString());
  REQUIRE((*f)->WriteAt(0, AsBytes(wal::EncodeSegmentHeader(1))).ok());
  REQUIRE((*f)->Sync().ok());
  REQUIRE(env->SyncDir(wal_dir).ok());
  REQUIRE((*f)->WriteAt(kSegmentHeaderBytes, AsBytes(test::Records(1, n))).ok());
  REQUIRE((*f)->Close().ok());
  REQUIRE(env->unsynced_files() == 1);
}

EngineOptions Options(FaultEnv* env, const testing::TempDir& dir) {
  EngineOptions o;
  o.env = env;
  o.wal_dir = dir.Sub("wal");
  o.snapshot_dir = dir.Sub("snap");
  o.segment_size = kSegmentSize;
  return o;
}

std::unique_ptr<Engine> OpenOk(const EngineOptions& o, RecoveryReport* rep) {
  auto r = Engine::Open(o, rep);
  REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
  return std::move(r).value();
}

void CheckAllRecovered(const Engine& e, Lsn upto) {
  for (Lsn l = 1; l <= upto; ++l) {
    auto v = e.state().Get(test::Key(l));
    REQUIRE_MESSAGE(v.has_value(), "record " << l << " recovered before the power cut is gone");
    CHECK(*v == test::Value(l));
  }
}

TEST_CASE("records recovered from the page cache survive a power cut right after start-up") {
  testing::TempDir dir;
  FaultEnv env(Env::Default());
  const EngineOptions o = Options(&env, dir);
  constexpr Lsn kRecords = 20;
  CrashedProcessWal(&env, o.wal_dir, kRecords);

  RecoveryReport rep;
  auto e = OpenOk(o, &rep);
  REQUIRE(rep.last_lsn == kRecords);  // recovery saw them: the engine serves them now
  CheckAllRecovered(*e, kRecords);
  env.CutPower();  // before any new write or sync
  e.reset();
  env.PowerOn();

  auto again = OpenOk(o, &rep);
  CHECK_MESSAGE(rep.last_lsn == kRecords, "a power cut after start-up took recovered records (last LSN "
                                              << rep.last_lsn << ")");
  CheckAllRecovered(*again, kRecords);
}

TEST_CASE("records recovered from the page cache are not lost behind newer synced ones") {
  testing::TempDir dir;
  FaultEnv env(Env::Default());
  EngineOptions o = Options(&env, dir);
  o.durability.mode = DurabilityMode::kSync;
  // A full segment: the writer starts a new one instead of appending, so the
  // new writes' fdatasyncs cover only the new segment.
  constexpr Lsn kRecords = 100;
  REQUIRE(test::Records(1, kRecords).size() + kSegmentHeaderBytes >= kSegmentSize);
  CrashedProcessWal(&env, o.wal_dir, kRecords);

  RecoveryReport rep;
  auto e = OpenOk(o, &rep);
  REQUIRE(rep.last_lsn == kRecords);
  Lsn last = kRecords;
  for (int i = 0; i < 3; ++i) {
    auto t = e->Put("new-" + std::to_string(i), "v", /*durable=*/true);
    REQUIRE_MESSAGE(t.has_value(), t.error().ToString());
    REQUIRE(e->WaitDurable(t->lsn, nullptr).ok());
    last = t->lsn;
  }
  env.CutPower();
  e.reset();
  env.PowerOn();

  auto r = Engine::Open(o, &rep);
  REQUIRE_MESSAGE(r.has_value(), "recovery after the power cut failed (a hole in the log?): " << r.error().ToString());
  CHECK(rep.last_lsn == last);
  CheckAllRecovered(**r, kRecords);
}

}  // namespace
}  // namespace kvd
