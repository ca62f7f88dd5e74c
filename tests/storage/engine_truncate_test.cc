// Engine::TruncateAfter: cutting a divergent tail offline; the cut records
// are set aside as readable WAL segments, the epoch history follows, a power
// cut at any step loses nothing, and a replica can then follow a new primary.
#include <doctest/doctest.h>

#include <filesystem>

#include "kvd/epoch_history.h"
#include "kvd/fault_env.h"
#include "kvd/snapshot.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::BasicOptions;
using testing::MustOpen;
using testing::TempDir;

// Records of a WAL directory: lsn -> encoded bytes (tolerating a torn tail).
std::map<Lsn, std::string> ReadRecords(Env* env, const std::string& dir) {
  std::map<Lsn, std::string> out;
  WalRecoveryOptions o;
  o.dir = dir;
  o.dry_run = true;
  Lsn first = UINT64_MAX;  // the log may start later (a snapshot covers the rest)
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (auto l = ParseSegmentFileName(f.path().filename().string())) first = std::min(first, *l);
  }
  o.start_lsn = first == UINT64_MAX ? 0 : first - 1;
  o.apply = [&](const WalRecord& r) {
    out[r.lsn] = std::string(r.encoded);
    return Status::Ok();
  };
  WalRecoveryReport rep;
  Status s = RecoverWal(env, o, &rep);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  return out;
}

// 30 records, epoch 1 for 1..10 and epoch 2 from 11, in 4 KiB segments.
EngineOptions WriteLog(const TempDir& dir, std::vector<uint64_t>* digests) {
  EngineOptions o = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
  o.segment_size = 4096;
  auto e = MustOpen(o);
  digests->assign(1, e->state().Digest());
  for (int i = 1; i <= 30; ++i) {
    if (i == 11) REQUIRE(e->BeginEpoch(2).ok());
    auto t = e->Put("k" + std::to_string(i % 7), std::string(300, static_cast<char>('a' + i % 26)), true);
    REQUIRE(t.has_value());
    REQUIRE(e->WaitDurable(t->lsn, nullptr).ok());
    digests->push_back(e->state().Digest());
  }
  REQUIRE(e->Close(nullptr).ok());
  return o;
}

TEST_CASE("truncate: the tail after an LSN is set aside as WAL segments; the engine reopens at that LSN") {
  TempDir dir;
  std::vector<uint64_t> digests;
  const EngineOptions o = WriteLog(dir, &digests);
  const auto before = ReadRecords(Env::Default(), o.wal_dir);
  REQUIRE(before.size() == 30);

  for (Lsn cut : {Lsn{25}, Lsn{15}, Lsn{10}}) {
    CAPTURE(cut);
    const std::string aside = dir.Sub("aside-" + std::to_string(cut));
    WalTruncateReport rep;
    REQUIRE(Engine::TruncateAfter(o, cut, aside, &rep).ok());
    const Lsn was = cut == 25 ? 30 : cut == 15 ? 25 : 15;
    CHECK(rep.last_lsn_before == was);
    CHECK(rep.records_set_aside == was - cut);
    // The set-aside records are exactly the cut ones, byte for byte.
    const auto kept = ReadRecords(Env::Default(), aside);
    REQUIRE(kept.size() == was - cut);
    for (const auto& [lsn, bytes] : kept) CHECK(bytes == before.at(lsn));
    CHECK(kept.begin()->first == cut + 1);
    RecoveryReport r;
    auto e = MustOpen(o, &r);
    CHECK(r.last_lsn == cut);
    CHECK(e->state().Digest() == digests[cut]);
    const std::vector<EpochStart> want_h =
        cut >= 11 ? std::vector<EpochStart>{{1, 1}, {2, 11}} : std::vector<EpochStart>{{1, 1}};
    CHECK(e->epoch_history().entries() == want_h);
    REQUIRE(e->Close(nullptr).ok());
  }
  // Nothing after the end: nothing to do, nothing written.
  WalTruncateReport rep;
  REQUIRE(Engine::TruncateAfter(o, 10, dir.Sub("aside-none"), &rep).ok());
  CHECK(rep.records_set_aside == 0);
  CHECK_FALSE(std::filesystem::exists(dir.Sub("aside-none")));
  // A new primary's records continue the log at LSN 11, in its epoch 3.
  auto e = MustOpen(o);
  std::string recs;
  AppendPutRecord(&recs, 11, 3, "new", "primary");
  auto t = e->AppendReplicated(AsBytes(recs));
  REQUIRE_MESSAGE(t.has_value(), t.error().ToString());
  REQUIRE(e->WaitDurable(11, nullptr).ok());
  CHECK(e->epoch_history().entries() == std::vector<EpochStart>{{1, 1}, {3, 11}});
}

TEST_CASE("truncate: refused where a snapshot covers the tail, or the records are gone") {
  TempDir dir;
  std::vector<uint64_t> digests;
  EngineOptions o = WriteLog(dir, &digests);
  {
    auto e = MustOpen(o);
    State copy;
    for (State::Cursor c = e->state().Begin(); c.Valid(); c.Next()) copy.Put(c.key(), c.value());
    REQUIRE(WriteSnapshot(Env::Default(), o.snapshot_dir, copy, 20).has_value());
    REQUIRE(e->SnapshotInstalled(20).ok());
    REQUIRE(e->Close(nullptr).ok());
  }
  auto s = Engine::TruncateAfter(o, 15, dir.Sub("aside"));
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(ReadRecords(Env::Default(), o.wal_dir).rbegin()->first == 30);  // untouched
  CHECK(Engine::TruncateAfter(o, 25, dir.Sub("aside")).ok());
  CHECK(ReadRecords(Env::Default(), o.wal_dir).rbegin()->first == 25);
}

TEST_CASE("truncate: a power cut at any step loses no record: each is in the WAL or set aside") {
  bool finished = false;
  for (uint64_t n = 0; n < 60 && !finished; ++n) {
    CAPTURE(n);
    TempDir dir;
    std::vector<uint64_t> digests;
    EngineOptions o = WriteLog(dir, &digests);
    const auto before = ReadRecords(Env::Default(), o.wal_dir);
    FaultEnv env(Env::Default());
    o.env = &env;
    env.CutPowerAfter(n);
    Status s = Engine::TruncateAfter(o, 12, dir.Sub("aside"));
    env.PowerOn();
    env.SimulatePowerLoss();
    auto wal = ReadRecords(&env, o.wal_dir);
    auto aside = std::filesystem::exists(dir.Sub("aside")) ? ReadRecords(&env, dir.Sub("aside"))
                                                            : std::map<Lsn, std::string>{};
    REQUIRE(wal.size() >= 12);
    CHECK(wal.rbegin()->first == wal.size());  // a prefix
    for (Lsn l = wal.size() + 1; l <= 30; ++l) {
      CAPTURE(l);
      REQUIRE(aside.count(l) == 1);
      CHECK(aside[l] == before.at(l));
    }
    if (s.ok()) CHECK(wal.size() == 12);
    // Running it again (to a fresh set-aside directory) finishes the job.
    REQUIRE(Engine::TruncateAfter(o, 12, dir.Sub("aside-again")).ok());
    RecoveryReport r;
    auto e = MustOpen(o, &r);
    CHECK(r.last_lsn == 12);
    CHECK(e->state().Digest() == digests[12]);
    CHECK(e->epoch_history().entries() == std::vector<EpochStart>{{1, 1}, {2, 11}});
    finished = s.ok();  // every step before has been cut once
  }
  CHECK(finished);
}

}  // namespace
}  // namespace kvd
