// The engine's epochs: BeginEpoch, the history file kept beside the WAL,
// recovery checking record epochs against it, rebuilding a missing one, and
// a data directory written in WAL format v1 recovering and going on in v2.
#include <doctest/doctest.h>

#include <filesystem>

#include "kvd/epoch_history.h"
#include "storage/wal_coding.h"
#include "tests/storage/engine_test_util.h"
#include "tests/storage/wal_test_util.h"

namespace kvd {
namespace {

using testing::BasicOptions;
using testing::Contents;
using testing::MustOpen;
using testing::TempDir;

struct LogRecord {
  Lsn lsn;
  Epoch epoch;
  std::string encoded;
};

// Every record in the WAL directory, as on disk.
std::vector<LogRecord> ReadLog(const std::string& wal_dir) {
  std::vector<LogRecord> out;
  WalRecoveryOptions o;
  o.dir = wal_dir;
  o.mode = RecoveryMode::kAbsolute;
  o.dry_run = true;
  o.apply = [&](const WalRecord& r) {
    out.push_back({r.lsn, r.epoch, std::string(r.encoded)});
    return Status::Ok();
  };
  WalRecoveryReport rep;
  Status s = RecoverWal(Env::Default(), o, &rep);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  return out;
}

void Put(Engine* e, const std::string& k, const std::string& v) {
  auto t = e->Put(k, v, true);
  REQUIRE(t.has_value());
  REQUIRE(e->WaitDurable(t->lsn, nullptr).ok());
}

TEST_CASE("engine epochs: a fresh engine is in epoch 1; BeginEpoch is durable and tags every later record") {
  TempDir dir;
  EngineOptions o = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
  {
    auto e = MustOpen(o);
    CHECK(e->current_epoch() == 1);
    CHECK(e->epoch_history() == EpochHistory::Initial());
    // The history exists on disk from the start.
    REQUIRE(LoadEpochHistory(Env::Default(), o.wal_dir).has_value());
    Put(e.get(), "a", "1");
    Put(e.get(), "b", "2");
    CHECK(e->BeginEpoch(1).code() == Code::kInvalidArgument);
    CHECK(e->BeginEpoch(0).code() == Code::kInvalidArgument);
    REQUIRE(e->BeginEpoch(4).ok());
    CHECK(e->current_epoch() == 4);
    CHECK(e->BeginEpoch(3).code() == Code::kInvalidArgument);  // never back
    CHECK(*LoadEpochHistory(Env::Default(), o.wal_dir) == e->epoch_history());
    Put(e.get(), "c", "3");
    REQUIRE(e->BeginEpoch(5).ok());
    REQUIRE(e->BeginEpoch(6).ok());  // epoch 5 writes nothing
    Put(e.get(), "d", "4");
    REQUIRE(e->Close(nullptr).ok());
  }
  std::vector<LogRecord> log = ReadLog(o.wal_dir);
  REQUIRE(log.size() == 4);
  CHECK(log[0].epoch == 1);
  CHECK(log[1].epoch == 1);
  CHECK(log[2].epoch == 4);
  CHECK(log[3].epoch == 6);
  RecoveryReport rep;
  auto e = MustOpen(o, &rep);
  CHECK_FALSE(rep.epoch_history_rebuilt);
  CHECK(e->current_epoch() == 6);
  CHECK(e->epoch_history().entries() == std::vector<EpochStart>{{1, 1}, {4, 3}, {5, 4}, {6, 4}});
  CHECK(Contents(e->state()).size() == 4);
}

TEST_CASE("engine epochs: a record whose epoch the history does not give its LSN refuses to open") {
  TempDir dir;
  EngineOptions o = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
  {
    auto e = MustOpen(o);
    Put(e.get(), "a", "1");
    REQUIRE(e->BeginEpoch(2).ok());
    Put(e.get(), "b", "2");
    REQUIRE(e->Close(nullptr).ok());
  }
  // A history that says epoch 2 began later than it did.
  EpochHistory wrong;
  REQUIRE(wrong.Append(1, 1).ok());
  REQUIRE(wrong.Append(2, 3).ok());
  REQUIRE(SaveEpochHistory(Env::Default(), o.wal_dir, wrong).ok());
  auto r = Engine::Open(o, nullptr);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().IsCorruption());
  CHECK(r.error().message().find("epoch history gives epoch 1") != std::string::npos);
}

TEST_CASE("engine epochs: a missing history file is rebuilt from the records") {
  TempDir dir;
  EngineOptions o = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
  EpochHistory before;
  {
    auto e = MustOpen(o);
    Put(e.get(), "a", "1");
    REQUIRE(e->BeginEpoch(3).ok());
    Put(e.get(), "b", "2");
    Put(e.get(), "c", "3");
    REQUIRE(e->BeginEpoch(7).ok());
    Put(e.get(), "d", "4");
    before = e->epoch_history();
    REQUIRE(e->Close(nullptr).ok());
  }
  std::filesystem::remove(JoinPath(o.wal_dir, kEpochHistoryFileName));
  std::vector<std::string> warnings;
  o.on_warning = [&](std::string_view w) { warnings.emplace_back(w); };
  RecoveryReport rep;
  auto e = MustOpen(o, &rep);
  CHECK(rep.epoch_history_rebuilt);
  CHECK(e->epoch_history() == before);
  CHECK(rep.epochs == before);
  CHECK(e->current_epoch() == 7);
  CHECK(*LoadEpochHistory(Env::Default(), o.wal_dir) == before);  // written back
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("rebuilt") != std::string::npos);
}

TEST_CASE("engine epochs: an epoch begun for records that a crash then lost moves to the next LSN on the first local write") {
  TempDir dir;
  EngineOptions o = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
  {
    auto e = MustOpen(o);
    Put(e.get(), "a", "1");
    Put(e.get(), "b", "2");
    REQUIRE(e->Close(nullptr).ok());
  }
  // As if epoch 2 had begun at LSN 5 after records 3 and 4 that never became durable.
  EpochHistory h = EpochHistory::Initial();
  REQUIRE(h.Append(2, 5).ok());
  REQUIRE(SaveEpochHistory(Env::Default(), o.wal_dir, h).ok());
  auto e = MustOpen(o);
  CHECK(e->epoch_history() == h);  // kept as it is until this node writes
  CHECK(e->current_epoch() == 2);
  Put(e.get(), "c", "3");
  CHECK(e->epoch_history().entries() == std::vector<EpochStart>{{1, 1}, {2, 3}});
  CHECK(*LoadEpochHistory(Env::Default(), o.wal_dir) == e->epoch_history());
  REQUIRE(e->Close(nullptr).ok());
  std::vector<LogRecord> log = ReadLog(o.wal_dir);
  REQUIRE(log.size() == 3);
  CHECK(log[2].epoch == 2);
  MustOpen(o);  // and it recovers cleanly
}

TEST_CASE("engine epochs: epochs past the recovered end guide a replica's records instead") {
  TempDir dir;
  EngineOptions o = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
  {
    auto e = MustOpen(o);
    Put(e.get(), "a", "1");
    Put(e.get(), "b", "2");
    REQUIRE(e->Close(nullptr).ok());
  }
  EpochHistory h = EpochHistory::Initial();
  REQUIRE(h.Append(2, 5).ok());
  REQUIRE(SaveEpochHistory(Env::Default(), o.wal_dir, h).ok());
  auto e = MustOpen(o);
  // LSN 3 belongs to epoch 1 by this history: a record claiming epoch 2
  // there contradicts it, and one in epoch 1 fits.
  std::string wrong, right;
  AppendPutRecord(&wrong, 3, 2, "c", "3");
  AppendPutRecord(&right, 3, 1, "c", "3");
  AppendPutRecord(&right, 4, 1, "d", "4");
  AppendPutRecord(&right, 5, 2, "e", "5");
  auto t = e->AppendReplicated(AsBytes(wrong));
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error().code() == Code::kInvalidArgument);
  CHECK(e->last_lsn() == 2);
  t = e->AppendReplicated(AsBytes(right));
  REQUIRE_MESSAGE(t.has_value(), t.error().ToString());
  REQUIRE(e->WaitDurable(5, nullptr).ok());
  CHECK(e->epoch_history() == h);  // nothing to add or move
  // BeginEpoch on top of such a history moves the stale entries first.
  REQUIRE(e->Close(nullptr).ok());
  EpochHistory stale = h;
  REQUIRE(stale.Append(3, 9).ok());
  REQUIRE(SaveEpochHistory(Env::Default(), o.wal_dir, stale).ok());
  e = MustOpen(o);
  REQUIRE(e->BeginEpoch(4).ok());
  CHECK(e->epoch_history().entries() == std::vector<EpochStart>{{1, 1}, {2, 5}, {3, 6}, {4, 6}});
}

TEST_CASE("engine epochs: a data directory in WAL format v1 recovers, continues in v2 segments, recovers again") {
  TempDir dir;
  EngineOptions o = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
  REQUIRE(Env::Default()->CreateDirs(o.wal_dir).ok());
  // Two v1 segments as the previous kvd wrote them: puts, a delete, a batch.
  auto put_payload = [](std::string_view k, std::string_view v) {
    std::string p(4, '\0');
    wal::PutFixed32(p.data(), static_cast<uint32_t>(k.size()));
    return p + std::string(k) + std::string(v);
  };
  std::string seg1 = wal::EncodeSegmentHeader(1, wal::kFormatVersionV1);
  for (Lsn l = 1; l <= 5; ++l) wal::AppendRecordV1(&seg1, RecordType::kPut, l, put_payload("k" + std::to_string(l), "v1"));
  std::string seg2 = wal::EncodeSegmentHeader(6, wal::kFormatVersionV1);
  wal::AppendRecordV1(&seg2, RecordType::kDel, 6, "k1");
  std::string batch;
  std::vector<BatchOp> ops{{OpType::kPut, "k2", "v2"}, {OpType::kDel, "k3", ""}};
  AppendBatchRecord(&batch, 7, 1, ops);
  wal::AppendRecordV1(&seg2, RecordType::kBatch, 7, std::string_view(batch).substr(kRecordHeaderBytes));
  const std::string p1 = JoinPath(o.wal_dir, SegmentFileName(1)), p2 = JoinPath(o.wal_dir, SegmentFileName(6));
  for (auto [path, data] : {std::pair{p1, seg1}, std::pair{p2, seg2}}) {
    auto f = Env::Default()->NewWritableFile(path, OpenMode::kCreateExclusive);
    REQUIRE(f.has_value());
    REQUIRE((*f)->WriteAt(0, AsBytes(data)).ok());
    REQUIRE((*f)->Close().ok());
  }
  const std::map<std::string, std::string> want{{"k2", "v2"}, {"k4", "v1"}, {"k5", "v1"}};
  {
    RecoveryReport rep;
    auto e = MustOpen(o, &rep);
    CHECK(rep.last_lsn == 7);
    CHECK(Contents(e->state()) == want);
    CHECK(e->current_epoch() == 1);  // v1 records count as epoch 1
    CHECK(e->epoch_history() == EpochHistory::Initial());
    REQUIRE(e->BeginEpoch(2).ok());
    Put(e.get(), "k9", "new");
    REQUIRE(e->Close(nullptr).ok());
  }
  // The v1 segments are left as they were; new records went to a v2 segment.
  CHECK(test::ReadAll(p1) == seg1);
  CHECK(test::ReadAll(p2) == seg2);
  const std::string p3 = JoinPath(o.wal_dir, SegmentFileName(8));
  REQUIRE(std::filesystem::exists(p3));
  CHECK(wal::GetFixed32(test::ReadAll(p3).data() + 8) == wal::kFormatVersion);
  std::vector<LogRecord> log = ReadLog(o.wal_dir);
  REQUIRE(log.size() == 8);
  CHECK(log[6].encoded.empty());  // v1: not shippable as is
  CHECK(log[7].epoch == 2);
  auto e = MustOpen(o);
  auto want2 = want;
  want2["k9"] = "new";
  CHECK(Contents(e->state()) == want2);
  CHECK(e->epoch_history().entries() == std::vector<EpochStart>{{1, 1}, {2, 8}});
}

}  // namespace
}  // namespace kvd
