// The commit observer with a fake replication consumer: every record once,
// in LSN order, with exactly the bytes the WAL holds; nothing of a failed
// write; LSNs reused after ENOSPC shown once, with their new content.
#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <random>

#include "kvd/fault_env.h"
#include "storage/wal_reader.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::BasicOptions;
using testing::MustOpen;
using testing::NotifyCounter;
using testing::RecordingObserver;
using testing::RecordingSink;
using testing::TempDir;
using Op = FaultEnv::Op;

struct DecodedRecord {
  RecordType type;
  Lsn lsn;
  std::string payload;
  bool operator==(const DecodedRecord&) const = default;
};

// What the WAL directory holds, read back with the recovery's segment reader:
// the records, and the bytes they occupy (segment headers left out).
struct WalContents {
  std::vector<DecodedRecord> records;
  std::string bytes;
};

WalContents ReadWal(const std::string& dir) {
  auto names = Env::Default()->ListDir(dir);
  REQUIRE(names.has_value());
  std::vector<std::pair<Lsn, std::string>> segs;
  for (const std::string& n : *names) {
    if (auto lsn = ParseSegmentFileName(n)) segs.emplace_back(*lsn, n);
  }
  std::sort(segs.begin(), segs.end());
  WalContents out;
  Lsn prev = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    auto data = Env::Default()->ReadFileToString(JoinPath(dir, segs[i].second));
    REQUIRE(data.has_value());
    wal::SegmentScanOptions so;
    so.name_lsn = segs[i].first;
    so.prev_lsn = prev;
    so.last_segment = i + 1 == segs.size();
    SegmentReport rep;
    REQUIRE(wal::ScanSegment(*data, so,
                             [&](const WalRecord& r) {
                               out.records.push_back({r.type, r.lsn, std::string(r.payload)});
                               return Status::Ok();
                             },
                             &rep)
                .ok());
    CHECK(rep.damage == DamageKind::kNone);
    out.bytes += data->substr(kSegmentHeaderBytes, rep.good_bytes - kSegmentHeaderBytes);
    if (rep.good_records > 0) prev = rep.last_good_lsn;
  }
  return out;
}

std::vector<DecodedRecord> Decode(std::string_view bytes) {
  std::vector<DecodedRecord> out;
  ForEachRecord(bytes, [&](const WalRecord& r) {
    out.push_back({r.type, r.lsn, std::string(r.payload)});
    return true;
  });
  return out;
}

void RandomWrites(Engine* e, std::mt19937_64& rng, int n, RecordingSink* sink) {
  for (int i = 0; i < n; ++i) {
    std::string key = "key" + std::to_string(rng() % 64);
    switch (rng() % 4) {
      case 0:
        REQUIRE(e->Del(key, false).has_value());
        break;
      case 1: {
        const std::string other = key + "b";  // BatchOp holds views: keep the key alive
        std::vector<BatchOp> ops{{OpType::kPut, key, "batch"}, {OpType::kDel, other, {}}};
        REQUIRE(e->Batch(ops, rng() % 2 == 0).has_value());
        break;
      }
      default:
        REQUIRE(e->Put(key, "value" + std::to_string(rng()), rng() % 8 == 0).has_value());
    }
    if (rng() % 50 == 0) e->Poll(sink);
  }
}

TEST_CASE("the observer sees every record once, in LSN order, with the bytes the WAL holds, in every mode") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (DurabilityMode mode : {DurabilityMode::kSync, DurabilityMode::kBatch, DurabilityMode::kNone}) {
    CAPTURE(ToString(mode));
    TempDir dir;
    RecordingObserver obs;
    auto o = BasicOptions(Env::Default(), dir, mode);
    o.segment_size = 16 * 1024;  // several segments: records cross roll-overs
    o.commit_observer = &obs;
    {
      auto e = MustOpen(o);
      RecordingSink sink;
      RandomWrites(e.get(), rng, 600, &sink);
      REQUIRE(e->Close(&sink).ok());
    }
    const auto shown = obs.written();
    REQUIRE_FALSE(shown.empty());
    Lsn next = 1;
    for (const auto& w : shown) {
      CHECK(w.first == next);  // no gap, no repeat
      CHECK(w.last >= w.first);
      CHECK(w.thread != std::this_thread::get_id());  // the committer thread
      const auto recs = Decode(w.bytes);
      REQUIRE(recs.size() == w.last - w.first + 1);
      CHECK(recs.front().lsn == w.first);
      CHECK(recs.back().lsn == w.last);
      next = w.last + 1;
    }
    CHECK(next == 601);
    WalContents wal = ReadWal(o.wal_dir);
    CHECK(wal.records.size() == 600);
    CHECK(Decode(obs.AllBytes()) == wal.records);
    CHECK(obs.AllBytes() == wal.bytes);  // byte for byte what the WAL holds
    const std::vector<Lsn> durable = obs.durable();
    REQUIRE_FALSE(durable.empty());
    CHECK(durable.back() == 600);  // Close synced everything
    CHECK(std::is_sorted(durable.begin(), durable.end()));
  }
}

TEST_CASE("the observer is called once written, before the fdatasync: a failed sync shows records never durable") {
  TempDir dir;
  FaultEnv env(Env::Default());
  RecordingObserver obs;
  auto o = BasicOptions(&env, dir, DurabilityMode::kSync);
  o.commit_observer = &obs;
  auto e = MustOpen(o);
  RecordingSink sink;
  auto t1 = e->Put("a", "1", false);
  REQUIRE(e->WaitDurable(t1->lsn, &sink).ok());
  CHECK(obs.last_shown() == 1);
  CHECK(obs.durable() == std::vector<Lsn>{1});

  env.FailNext(Op::kSync, EIO, 1, "wal-");
  auto t2 = e->Put("b", "2", false);
  CHECK(e->WaitDurable(t2->lsn, &sink).code() == Code::kWritesRefused);
  CHECK(obs.last_shown() == 2);                  // written: shown (writes are refused from now on)
  CHECK(obs.durable() == std::vector<Lsn>{1});   // but never reported durable
  CHECK(e->Close(&sink).code() == Code::kWritesRefused);
}

TEST_CASE("ENOSPC in sync mode: the failed write is never shown; its reused LSN is shown once, with the new record") {
  TempDir dir;
  FaultEnv env(Env::Default());
  RecordingObserver obs;
  auto o = BasicOptions(&env, dir, DurabilityMode::kSync);
  o.commit_observer = &obs;
  auto e = MustOpen(o);
  RecordingSink sink;
  for (int i = 0; i < 3; ++i) {
    auto t = e->Put("k" + std::to_string(i), "v", false);
    REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
  }
  const size_t shown_before = obs.written().size();
  env.FailNext(Op::kWrite, ENOSPC, 1, "wal-");
  auto lost = e->Put("lost", "x", false);
  REQUIRE(lost.has_value());
  CHECK(e->WaitDurable(lost->lsn, &sink).code() == Code::kNoSpace);
  CHECK(obs.written().size() == shown_before);
  CHECK(obs.last_shown() == 3);

  auto again = e->Put("again", "y", false);
  REQUIRE(again.has_value());
  CHECK(again->lsn == lost->lsn);
  REQUIRE(e->WaitDurable(again->lsn, &sink).ok());
  const auto shown = obs.written();
  REQUIRE(shown.size() == shown_before + 1);
  CHECK(shown.back().first == 4);
  CHECK(shown.back().last == 4);
  std::string want;
  AppendPutRecord(&want, 4, e->current_epoch(), "again", "y");
  CHECK(shown.back().bytes == want);

  // EIO from write(): refused for good, and not shown either.
  env.FailNext(Op::kWrite, EIO, 1, "wal-");
  auto broken = e->Put("broken", "z", false);
  REQUIRE(broken.has_value());
  CHECK(e->WaitDurable(broken->lsn, &sink).code() == Code::kWritesRefused);
  CHECK(obs.last_shown() == 4);
  (void)e->Close(&sink);
  CHECK(obs.last_shown() == 4);
}

TEST_CASE("ENOSPC in batch mode: the kept group is shown once, when its retry succeeds") {
  TempDir dir;
  FaultEnv env(Env::Default());
  NotifyCounter notes;
  RecordingObserver obs;
  auto o = BasicOptions(&env, dir, DurabilityMode::kBatch);
  o.durability.batch_size = 100;
  o.durability.flush_interval = std::chrono::seconds(60);
  o.notify = notes.Hook();
  o.commit_observer = &obs;
  auto e = MustOpen(o);
  RecordingSink sink;
  // Batch mode starts a commit at the first write: arm the failure first.
  env.FailNext(Op::kWrite, ENOSPC, 1, "wal-");
  uint64_t seen = notes.count();
  auto t = e->Put("acked", "1", false);  // acknowledged; its commit starts at once and fails
  REQUIRE(t->done);
  e->RequestFlush(1);
  notes.WaitPast(seen);
  e->Poll(&sink);
  CHECK_FALSE(e->stats().no_space.empty());
  CHECK(obs.written().empty());

  seen = notes.count();
  e->Tick(Clock::now(), &sink);  // the retry
  notes.WaitPast(seen);
  REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
  REQUIRE(e->Close(&sink).ok());
  const auto shown = obs.written();
  REQUIRE(shown.size() == 1);
  CHECK(shown[0].first == 1);
  CHECK(shown[0].last == 1);
}

TEST_CASE("none mode: records are shown when written, not when appended; OnDurable only after a sync") {
  TempDir dir;
  NotifyCounter notes;
  RecordingObserver obs;
  auto o = BasicOptions(Env::Default(), dir, DurabilityMode::kNone);
  o.durability.flush_interval = std::chrono::hours(1);
  o.notify = notes.Hook();
  o.commit_observer = &obs;
  auto e = MustOpen(o);
  RecordingSink sink;
  for (int i = 0; i < 10; ++i) REQUIRE(e->Put("k" + std::to_string(i), "v", false)->done);
  e->Poll(&sink);
  CHECK(obs.written().empty());  // still in the engine's buffer
  const uint64_t seen = notes.count();
  e->RequestFlush(3);
  notes.WaitPast(seen);
  e->Poll(&sink);
  REQUIRE(sink.flushes.size() == 1);
  CHECK(obs.last_shown() == 10);
  CHECK(obs.durable() == std::vector<Lsn>{10});
  REQUIRE(e->Close(&sink).ok());
}

}  // namespace
}  // namespace kvd
