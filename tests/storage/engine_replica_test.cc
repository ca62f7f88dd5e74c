// Engine::AppendReplicated: a replica appends another node's records as
// they are on disk; checks before anything is appended, the same apply as
// recovery, the epoch history following the records, power loss.
#include <doctest/doctest.h>

#include <random>

#include "kvd/epoch_history.h"
#include "kvd/fault_env.h"
#include "storage/wal_coding.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::BasicOptions;
using testing::MustOpen;
using testing::RecordingSink;
using testing::TempDir;

struct Primary {
  std::vector<std::string> records;  // encoded, LSN 1, 2, ...
  std::vector<uint64_t> digests;     // digests[i]: state after LSN i (digests[0]: empty)
  EpochHistory history;
  uint64_t digest = 0;
};

// A primary that writes puts, overwrites, deletes and batches in epochs 1,
// 2 and 5, closes, and hands back its WAL records as on disk.
Primary RunPrimary(const TempDir& dir, int n, uint64_t seed) {
  EngineOptions o = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
  o.wal_dir = dir.Sub("primary-wal");
  o.snapshot_dir = dir.Sub("primary-snap");
  o.segment_size = 8192;  // several segments
  Primary p;
  std::mt19937_64 rng(seed);
  {
    auto e = MustOpen(o);
    for (int i = 0; i < n; ++i) {
      if (i == n / 3) REQUIRE(e->BeginEpoch(2).ok());
      if (i == 2 * n / 3) REQUIRE(e->BeginEpoch(5).ok());
      const std::string k = "key-" + std::to_string(rng() % 40);
      const std::string v(rng() % 300, static_cast<char>('a' + rng() % 26));
      Result<WriteTicket> t = Status::Ok();
      switch (rng() % 4) {
        case 0:
          t = e->Del(k, false);
          break;
        case 1: {
          const std::string other = "key-" + std::to_string(rng() % 40);  // BatchOp holds views
          std::vector<BatchOp> ops{{OpType::kPut, k, v}, {OpType::kDel, other, ""}};
          t = e->Batch(ops, false);
          break;
        }
        default:
          t = e->Put(k, v, false);
      }
      REQUIRE(t.has_value());
    }
    REQUIRE(e->WaitDurable(e->last_lsn(), nullptr).ok());
    p.digest = e->state().Digest();
    p.history = e->epoch_history();
    REQUIRE(e->Close(nullptr).ok());
  }
  State st;
  p.digests.push_back(st.Digest());
  WalRecoveryOptions ro;
  ro.dir = o.wal_dir;
  ro.mode = RecoveryMode::kAbsolute;
  ro.dry_run = true;
  ro.apply = [&](const WalRecord& r) {
    p.records.emplace_back(r.encoded);
    REQUIRE(ApplyRecord(&st, r).ok());
    p.digests.push_back(st.Digest());
    return Status::Ok();
  };
  WalRecoveryReport rep;
  REQUIRE(RecoverWal(Env::Default(), ro, &rep).ok());
  REQUIRE(p.records.size() == static_cast<size_t>(n));
  return p;
}

std::string Join(const std::vector<std::string>& recs, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) out += recs[i];
  return out;
}

Result<WriteTicket> AppendBytes(Engine* e, std::string_view bytes) { return e->AppendReplicated(AsBytes(bytes)); }

TEST_CASE("replica: records appended with their LSNs give the primary's state, history and log") {
  TempDir dir;
  const Primary p = RunPrimary(dir, 120, 7);
  for (DurabilityMode mode : {DurabilityMode::kSync, DurabilityMode::kBatch, DurabilityMode::kNone}) {
    CAPTURE(ToString(mode));
    TempDir rdir;
    EngineOptions o = BasicOptions(Env::Default(), rdir, mode);
    o.segment_size = 8192;
    auto e = MustOpen(o);
    RecordingSink sink;
    // In chunks of varying size, as a stream would deliver them.
    size_t at = 0;
    for (size_t chunk = 1; at < p.records.size(); chunk = chunk % 9 + 1) {
      const size_t to = std::min(p.records.size(), at + chunk);
      auto t = AppendBytes(e.get(), Join(p.records, at, to));
      REQUIRE_MESSAGE(t.has_value(), t.error().ToString());
      CHECK(t->lsn == to);
      CHECK_FALSE(t->done);  // acknowledged only once durable, whatever the mode
      at = to;
      e->Poll(&sink);
    }
    REQUIRE(e->WaitDurable(e->last_lsn(), &sink).ok());
    CHECK(e->state().Digest() == p.digest);
    CHECK(e->epoch_history() == p.history);
    CHECK(e->current_epoch() == 5);
    // Every record completed, in order, successfully.
    REQUIRE(sink.writes.size() == p.records.size());
    for (size_t i = 0; i < sink.writes.size(); ++i) {
      CHECK(sink.writes[i].lsn == i + 1);
      CHECK(sink.writes[i].status.ok());
    }
    REQUIRE(e->Close(nullptr).ok());
    // Recovery replays the same bytes to the same state.
    RecoveryReport rep;
    auto again = MustOpen(o, &rep);
    CHECK(rep.last_lsn == p.records.size());
    CHECK(again->state().Digest() == p.digest);
    CHECK(again->epoch_history() == p.history);
    // The replica's own writes continue in the newest epoch.
    auto t = again->Put("mine", "x", true);
    REQUIRE(t.has_value());
    CHECK(t->lsn == p.records.size() + 1);
  }
}

TEST_CASE("replica: gaps, bad CRCs, epochs going back and undecodable payloads are refused whole") {
  TempDir dir;
  const Primary p = RunPrimary(dir, 60, 11);
  TempDir rdir;
  EngineOptions o = BasicOptions(Env::Default(), rdir, DurabilityMode::kSync);
  auto e = MustOpen(o);
  REQUIRE(AppendBytes(e.get(), Join(p.records, 0, 10)).has_value());
  const uint64_t digest_after_10 = p.digests[10];
  REQUIRE(e->WaitDurable(10, nullptr).ok());

  auto refused = [&](std::string_view bytes, Code code) {
    auto t = AppendBytes(e.get(), bytes);
    REQUIRE_FALSE(t.has_value());
    CHECK(t.error().code() == code);
    CHECK(e->last_lsn() == 10);  // nothing of it was appended
    CHECK(e->state().Digest() == digest_after_10);
  };
  SUBCASE("an LSN gap, a repeat, or a gap inside the batch") {
    refused(Join(p.records, 11, 13), Code::kInvalidArgument);
    refused(Join(p.records, 9, 12), Code::kInvalidArgument);
    refused(p.records[10] + p.records[12], Code::kInvalidArgument);
  }
  SUBCASE("any flipped byte, even in the last record of the batch") {
    const std::string good = Join(p.records, 10, 13);
    for (size_t i = 0; i < good.size(); i += 3) {
      CAPTURE(i);
      std::string bad = good;
      bad[i] ^= 0x20;
      auto t = AppendBytes(e.get(), bad);
      REQUIRE_FALSE(t.has_value());
      CHECK(e->last_lsn() == 10);
    }
    refused(good.substr(0, good.size() - 1), Code::kCorruption);  // cut short
  }
  SUBCASE("an epoch going back") {
    // Records 1..10 are in epoch 1; the replica moves on to epoch 3 ...
    REQUIRE(e->BeginEpoch(3).ok());
    // ... so the primary's epoch-1 record 11 no longer fits.
    refused(p.records[10], Code::kInvalidArgument);
    // A hand-made record in epoch 4 then one in epoch 3.
    std::string back;
    AppendPutRecord(&back, 11, 4, "x", "1");
    AppendPutRecord(&back, 12, 3, "y", "2");
    refused(back, Code::kInvalidArgument);
  }
  SUBCASE("a payload that does not decode, under a valid CRC") {
    std::string rec;
    AppendPutRecord(&rec, 11, 1, "", "");
    rec.resize(rec.size() - 4 + 2);  // a 2-byte payload: no room for the key length
    wal::PutFixed32(rec.data() + 4, 2);
    wal::PutFixed32(rec.data(), wal::RecordCrc(rec.data(), kRecordHeaderBytes, 2));
    refused(rec, Code::kCorruption);
  }
  SUBCASE("nothing at all") { refused("", Code::kInvalidArgument); }
  // The right next records are still accepted.
  if (e->current_epoch() == 1) {
    REQUIRE(AppendBytes(e.get(), Join(p.records, 10, p.records.size())).has_value());
    REQUIRE(e->WaitDurable(e->last_lsn(), nullptr).ok());
    CHECK(e->state().Digest() == p.digest);
  }
}

TEST_CASE("replica: a power loss keeps every durable replicated record and a clean prefix of the rest") {
  TempDir dir;
  const Primary p = RunPrimary(dir, 150, 3);
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    TempDir rdir;
    FaultEnv env(Env::Default(), FaultEnv::Options{.seed = seed, .torn_writes = true});
    EngineOptions o = BasicOptions(&env, rdir, DurabilityMode::kSync);
    o.segment_size = 8192;
    Lsn durable = 0;
    {
      auto e = MustOpen(o);
      size_t at = 0;
      const size_t stop_at = 40 + rng() % 100;
      while (at < stop_at) {
        const size_t to = std::min(stop_at, at + 1 + rng() % 12);
        auto t = AppendBytes(e.get(), Join(p.records, at, to));
        REQUIRE_MESSAGE(t.has_value(), t.error().ToString());
        at = to;
        if (rng() % 3 == 0) {
          REQUIRE(e->WaitDurable(e->last_lsn(), nullptr).ok());
          durable = e->durable_lsn();
        }
      }
      env.CutPower();
      (void)e->Close(nullptr);
    }
    env.PowerOn();
    env.SimulatePowerLoss();
    RecoveryReport rep;
    auto e = MustOpen(o, &rep);
    CHECK(rep.last_lsn >= durable);
    REQUIRE(rep.last_lsn < p.digests.size());
    CHECK(e->state().Digest() == p.digests[rep.last_lsn]);
    // The history agrees with the primary's on everything recovered.
    CHECK(ForkPoint(e->epoch_history(), rep.last_lsn, p.history, p.records.size()) == rep.last_lsn);
    // And replication resumes right after it.
    auto t = AppendBytes(e.get(), Join(p.records, rep.last_lsn, p.records.size()));
    REQUIRE_MESSAGE(t.has_value(), t.error().ToString());
    REQUIRE(e->WaitDurable(e->last_lsn(), nullptr).ok());
    CHECK(e->state().Digest() == p.digest);
    CHECK(e->epoch_history() == p.history);
  }
}

}  // namespace
}  // namespace kvd
