// The Engine: modes, group commit, visibility, failure rules, snapshots, reopen.
#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <random>

#include "kvd/fault_env.h"
#include "kvd/snapshot.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::BasicOptions;
using testing::Contents;
using testing::MustOpen;
using testing::NotifyCounter;
using testing::RecordingSink;
using testing::TempDir;
using Op = FaultEnv::Op;

size_t CountSegments(Env* env, const std::string& dir) {
  auto names = env->ListDir(dir);
  REQUIRE(names.has_value());
  return static_cast<size_t>(std::count_if(names->begin(), names->end(),
                                           [](const std::string& n) { return ParseSegmentFileName(n).has_value(); }));
}

TEST_CASE("sync mode: acknowledged only after fdatasync, never visible before") {
  TempDir dir;
  FaultEnv env(Env::Default());
  auto e = MustOpen(BasicOptions(&env, dir, DurabilityMode::kSync));
  RecordingSink sink;
  const uint64_t syncs_before = env.count(Op::kSync);
  auto t = e->Put("k", "v1", false);
  REQUIRE(t.has_value());
  CHECK_FALSE(t->done);
  CHECK_FALSE(e->state().Get("k").has_value());  // not durable yet: not visible
  CHECK(e->applied_lsn() < t->lsn);
  REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
  CHECK(env.count(Op::kSync) > syncs_before);
  CHECK(e->durable_lsn() >= t->lsn);
  REQUIRE(sink.writes.size() == 1);
  CHECK(sink.writes[0].lsn == t->lsn);
  CHECK(sink.writes[0].status.ok());
  CHECK_FALSE(sink.writes[0].existed);
  CHECK(e->state().Get("k") == std::optional<std::string_view>("v1"));

  // A write whose fdatasync fails is never shown to anyone.
  env.FailNext(Op::kSync, EIO, 1, "wal-");
  auto t2 = e->Put("k2", "v2", false);
  REQUIRE(t2.has_value());
  Status s = e->WaitDurable(t2->lsn, &sink);
  CHECK(s.code() == Code::kWritesRefused);
  CHECK_FALSE(e->state().Get("k2").has_value());
  REQUIRE(sink.writes.size() == 2);
  CHECK(sink.writes[1].status.code() == Code::kWritesRefused);
}

TEST_CASE("group commit: many writes share one fdatasync; groups are capped at batch_size") {
  TempDir dir;
  FaultEnv env(Env::Default());
  for (uint32_t batch : {1024u, 10u}) {
    CAPTURE(batch);
    auto o = BasicOptions(&env, dir, DurabilityMode::kSync);
    o.wal_dir = dir.Sub("wal" + std::to_string(batch));
    o.durability.batch_size = batch;
    auto e = MustOpen(o);
    RecordingSink sink;
    const uint64_t syncs_before = env.count(Op::kSync);
    Lsn last = 0;
    // The first write starts a commit at once; the other 99 gather behind it
    // (the owner has not polled, so the first commit still counts as running).
    for (int i = 0; i < 100; ++i) {
      auto t = e->Put("key" + std::to_string(i), "value", false);
      REQUIRE(t.has_value());
      CHECK_FALSE(t->done);
      last = t->lsn;
    }
    REQUIRE(e->WaitDurable(last, &sink).ok());
    CHECK(sink.writes.size() == 100);
    EngineStats st = e->stats();
    CHECK(st.grouped_records == 100);
    if (batch == 1024) {
      CHECK(st.groups == 2);
      CHECK(env.count(Op::kSync) - syncs_before == 2);
    } else {
      CHECK(st.groups == 11);  // 1 + 99 in groups of at most 10
    }
    CHECK(st.sync_max_us >= st.sync_p50_us);
    // The metrics histograms count the same groups and syncs.
    CHECK(st.group_records.count() == st.groups);
    CHECK(st.group_records.sum() == 100);
    CHECK(st.group_records.counts()[0] == 1);  // the first write's group of one
    CHECK(st.sync_latency_us.count() == st.syncs);
    if (batch == 1024) CHECK(st.group_records.counts()[7] == 1);  // 99 records: bucket le=128
    CHECK(e->Close(&sink).ok());
  }
}

TEST_CASE("batch mode: acknowledged at once within the bound; batch_size 1 waits for every sync") {
  TempDir dir;
  FaultEnv env(Env::Default());
  auto o = BasicOptions(&env, dir, DurabilityMode::kBatch);
  o.durability.batch_size = 4;
  o.durability.flush_interval = std::chrono::seconds(60);
  auto e = MustOpen(o);
  RecordingSink sink;
  std::vector<bool> done;
  for (int i = 0; i < 4; ++i) {
    auto t = e->Put("k" + std::to_string(i), "v", false);
    REQUIRE(t.has_value());
    done.push_back(t->done);
  }
  // The first writes are acknowledged (and visible) at once; at most 3 may be
  // acknowledged and not durable, so the 4th has to wait for a sync.
  CHECK(done[0]);
  CHECK(e->state().Get("k0").has_value());
  CHECK(std::count(done.begin(), done.end(), true) <= 3);
  CHECK_FALSE(done[3]);
  CHECK(e->state().Get("k3").has_value());  // batch mode: visible before it is acknowledged
  REQUIRE(e->WaitDurable(e->last_lsn(), &sink).ok());
  CHECK(sink.Find(4) != nullptr);

  // A durable write waits for its sync; the writes after it need not.
  auto td = e->Put("durable", "d", true);
  REQUIRE(td.has_value());
  CHECK_FALSE(td->done);
  auto tn = e->Put("next", "n", false);
  REQUIRE(tn.has_value());
  CHECK(tn->done);
  REQUIRE(e->WaitDurable(td->lsn, &sink).ok());
  REQUIRE(sink.Find(td->lsn) != nullptr);
  CHECK(sink.Find(td->lsn)->status.ok());

  DurabilityOptions d = e->durability();
  d.batch_size = 1;
  REQUIRE(e->SetDurability(d).ok());
  for (int i = 0; i < 3; ++i) {
    auto t = e->Put("one" + std::to_string(i), "v", false);
    REQUIRE(t.has_value());
    CHECK_FALSE(t->done);
    REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
    CHECK(sink.Find(t->lsn) != nullptr);
  }
  CHECK(e->Close(&sink).ok());
}

TEST_CASE("none mode: no fdatasync until FLUSH; a durable write still waits for one") {
  TempDir dir;
  FaultEnv env(Env::Default());
  auto o = BasicOptions(&env, dir, DurabilityMode::kNone);
  auto e = MustOpen(o);
  RecordingSink sink;
  const uint64_t syncs_before = env.count(Op::kSync);
  for (int i = 0; i < 50; ++i) {
    auto t = e->Put("k" + std::to_string(i), "v", false);
    REQUIRE(t.has_value());
    CHECK(t->done);
  }
  e->Poll(&sink);
  CHECK(env.count(Op::kSync) == syncs_before);
  CHECK(e->state().size() == 50);

  e->RequestFlush(7);
  REQUIRE(e->WaitDurable(e->last_lsn(), &sink).ok());
  REQUIRE(sink.flushes.size() == 1);
  CHECK(sink.flushes[0].first == 7);
  CHECK(sink.flushes[0].second.ok());
  CHECK(sink.last_flush_durable == 50);

  auto t = e->Put("important", "x", /*durable=*/true);
  REQUIRE(t.has_value());
  CHECK_FALSE(t->done);
  REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
  REQUIRE(sink.Find(t->lsn) != nullptr);

  // Unflushed writes are lost by a power cut; flushed ones are not.
  for (int i = 0; i < 10; ++i) REQUIRE(e->Put("late" + std::to_string(i), "v", false).has_value());
  env.CutPower();
  e.reset();
  env.PowerOn();
  RecoveryReport rep;
  auto e2 = MustOpen(o, &rep);
  CHECK(rep.last_lsn >= 51);
  CHECK(e2->state().Get("k49").has_value());
  CHECK(e2->state().Get("important").has_value());
}

TEST_CASE("a failed fdatasync is sticky: no retry, every later write refused") {
  for (int err : {EIO, ENOSPC}) {
    CAPTURE(err);
    TempDir dir;
    FaultEnv env(Env::Default());
    auto o = BasicOptions(&env, dir, DurabilityMode::kSync);
    auto e = MustOpen(o);
    RecordingSink sink;
    auto t0 = e->Put("before", "1", false);
    REQUIRE(e->WaitDurable(t0->lsn, &sink).ok());

    env.FailNext(Op::kSync, err, 1, "wal-");
    auto t1 = e->Put("a", "1", false);
    auto t2 = e->Put("b", "2", false);
    REQUIRE(t1.has_value());
    REQUIRE(t2.has_value());
    e->RequestFlush(1);
    Status s = e->WaitDurable(t2->lsn, &sink);
    CHECK(s.code() == Code::kWritesRefused);
    CHECK(s.message().find("fault env: injected") != std::string::npos);  // the original error
    REQUIRE(sink.Find(t1->lsn) != nullptr);
    CHECK(sink.Find(t1->lsn)->status.code() == Code::kWritesRefused);
    CHECK(sink.Find(t2->lsn)->status.code() == Code::kWritesRefused);
    REQUIRE(sink.flushes.size() == 1);
    CHECK(sink.flushes[0].second.code() == Code::kWritesRefused);
    CHECK_FALSE(e->state().Get("a").has_value());

    const uint64_t syncs = env.count(Op::kSync);
    auto t3 = e->Put("c", "3", false);
    CHECK(t3.error().code() == Code::kWritesRefused);
    CHECK(e->write_refusal().code() == Code::kWritesRefused);
    CHECK_FALSE(e->stats().write_refusal.empty());
    e->RequestFlush(2);
    e->Poll(&sink);
    CHECK(env.count(Op::kSync) == syncs);  // never retried
    CHECK_FALSE(e->Close(&sink).ok());
    CHECK(env.count(Op::kSync) == syncs);

    // A restart recovers: everything acknowledged is there.
    auto e2 = MustOpen(o);
    CHECK(e2->state().Get("before").has_value());
    auto t4 = e2->Put("after", "4", false);
    REQUIRE(t4.has_value());
    CHECK(e2->WaitDurable(t4->lsn, nullptr).ok());
  }
}

TEST_CASE("ENOSPC on a WAL write in sync mode: clean failure, then writes work again") {
  TempDir dir;
  FaultEnv env(Env::Default());
  auto o = BasicOptions(&env, dir, DurabilityMode::kSync);
  std::map<std::string, std::string> acked;
  {
    auto e = MustOpen(o);
    RecordingSink sink;
    for (int i = 0; i < 5; ++i) {
      auto t = e->Put("k" + std::to_string(i), "v", false);
      REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
      acked["k" + std::to_string(i)] = "v";
    }
    env.FailNext(Op::kWrite, ENOSPC, 1, "wal-");
    auto t = e->Put("lost", "x", false);
    REQUIRE(t.has_value());
    const Lsn failed_lsn = t->lsn;
    Status s = e->WaitDurable(t->lsn, &sink);
    CHECK(s.code() == Code::kNoSpace);
    REQUIRE(sink.Find(failed_lsn) != nullptr);
    CHECK(sink.Find(failed_lsn)->status.code() == Code::kNoSpace);
    CHECK(sink.Find(failed_lsn)->status.message().find("disk full") != std::string::npos);
    CHECK_FALSE(e->stats().no_space.empty());
    CHECK(e->write_refusal().ok());
    CHECK_FALSE(e->state().Get("lost").has_value());
    CHECK(e->last_lsn() == failed_lsn - 1);

    auto t2 = e->Put("again", "y", false);  // accepted at once, reusing the LSN
    REQUIRE(t2.has_value());
    CHECK(t2->lsn == failed_lsn);
    REQUIRE(e->WaitDurable(t2->lsn, &sink).ok());
    acked["again"] = "y";
    CHECK(e->stats().no_space.empty());
    CHECK(e->Close(&sink).ok());
  }
  auto e = MustOpen(o);
  CHECK(Contents(e->state()) == acked);
}

TEST_CASE("a full disk at segment roll-over: writes fail cleanly and resume once space is back") {
  TempDir dir;
  FaultEnv env(Env::Default());
  auto o = BasicOptions(&env, dir, DurabilityMode::kSync);
  o.segment_size = 16 * 1024;
  std::map<std::string, std::string> acked;
  {
    auto e = MustOpen(o);
    RecordingSink sink;
    env.SetSpaceLimit(env.space_used() + 4096);  // no room for another segment
    const std::string value(200, 'v');
    Status failure;
    int i = 0;
    for (; i < 1000 && failure.ok(); ++i) {
      std::string key = "key" + std::to_string(i);
      auto t = e->Put(key, value, false);
      REQUIRE(t.has_value());
      failure = e->WaitDurable(t->lsn, &sink);
      if (failure.ok()) acked[key] = value;
    }
    CHECK(failure.code() == Code::kNoSpace);
    CHECK(e->write_refusal().ok());
    CHECK(Contents(e->state()) == acked);  // the failed write is not visible

    env.SetSpaceLimit(0);
    for (int j = 0; j < 200; ++j) {
      std::string key = "more" + std::to_string(j);
      auto t = e->Put(key, value, false);
      REQUIRE(t.has_value());
      REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
      acked[key] = value;
    }
    CHECK(CountSegments(&env, o.wal_dir) > 1);
    CHECK(e->Close(&sink).ok());
  }
  auto e = MustOpen(o);
  CHECK(Contents(e->state()) == acked);
}

TEST_CASE("ENOSPC in batch mode keeps the acknowledged group and retries it on Tick") {
  TempDir dir;
  FaultEnv env(Env::Default());
  NotifyCounter notes;
  auto o = BasicOptions(&env, dir, DurabilityMode::kBatch);
  o.durability.batch_size = 100;
  o.durability.flush_interval = std::chrono::seconds(60);
  o.notify = notes.Hook();
  {
    auto e = MustOpen(o);
    RecordingSink sink;
    env.FailNext(Op::kWrite, ENOSPC, 1, "wal-");
    uint64_t seen = notes.count();
    auto t = e->Put("acked", "1", false);  // acknowledged; its commit starts at once and fails
    REQUIRE(t.has_value());
    REQUIRE(t->done);
    e->RequestFlush(1);
    notes.WaitPast(seen);
    e->Poll(&sink);
    CHECK_FALSE(e->stats().no_space.empty());
    CHECK(e->Put("new", "2", false).error().code() == Code::kNoSpace);
    CHECK(sink.flushes.empty());
    CHECK(e->state().Get("acked").has_value());  // acknowledged: stays

    seen = notes.count();
    e->Tick(Clock::now(), &sink);  // the retry succeeds
    notes.WaitPast(seen);
    e->Poll(&sink);
    // The retried group is written; the FLUSH's sync follows.
    REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
    CHECK(e->stats().no_space.empty());
    REQUIRE(e->Put("new", "2", false).has_value());
    CHECK(e->Close(&sink).ok());
    REQUIRE(sink.flushes.size() == 1);
    CHECK(sink.flushes[0].second.ok());
  }
  env.CutPower();  // nothing unsynced may matter after Close
  env.PowerOn();
  auto e = MustOpen(o);
  CHECK(e->state().Get("acked").has_value());
  CHECK(e->state().Get("new").has_value());
}

TEST_CASE("sync <-> batch switches at run time keep visibility and order") {
  TempDir dir;
  FaultEnv env(Env::Default());
  auto o = BasicOptions(&env, dir, DurabilityMode::kBatch);
  o.durability.batch_size = 1000;
  o.durability.flush_interval = std::chrono::seconds(60);
  std::map<std::string, std::string> model;
  {
    auto e = MustOpen(o);
    RecordingSink sink;
    REQUIRE(e->Put("a", "1", false)->done);
    model["a"] = "1";
    DurabilityOptions d = e->durability();
    d.mode = DurabilityMode::kSync;
    REQUIRE(e->SetDurability(d).ok());
    auto t = e->Put("b", "2", false);
    CHECK_FALSE(t->done);
    CHECK_FALSE(e->state().Get("b").has_value());
    model["b"] = "2";
    d.mode = DurabilityMode::kBatch;
    REQUIRE(e->SetDurability(d).ok());
    // "b" is not applied yet, so "c" cannot be applied (or acknowledged) before it.
    auto t2 = e->Put("c", "3", false);
    CHECK_FALSE(t2->done);
    model["c"] = "3";
    REQUIRE(e->WaitDurable(t2->lsn, &sink).ok());
    CHECK(sink.Find(t->lsn) != nullptr);
    CHECK(sink.Find(t2->lsn) != nullptr);
    CHECK(Contents(e->state()) == model);
    auto t3 = e->Del("a", false);
    CHECK(t3->done);  // everything older is applied again: at once
    CHECK(t3->existed);
    model.erase("a");
    CHECK(e->Close(&sink).ok());
  }
  auto e = MustOpen(o);
  CHECK(Contents(e->state()) == model);
}

TEST_CASE("limits: oversized keys and values are refused") {
  TempDir dir;
  auto o = BasicOptions(Env::Default(), dir, DurabilityMode::kNone);
  o.max_key_bytes = 16;
  o.max_value_bytes = 32;
  auto e = MustOpen(o);
  CHECK(e->Put(std::string(17, 'k'), "v", false).error().code() == Code::kTooLarge);
  CHECK(e->Put("k", std::string(33, 'v'), false).error().code() == Code::kTooLarge);
  CHECK(e->Del(std::string(17, 'k'), false).error().code() == Code::kTooLarge);
  std::vector<BatchOp> ops{{OpType::kPut, "k", std::string_view("x")}, {OpType::kPut, std::string(17, 'k'), "v"}};
  CHECK(e->Batch(ops, false).error().code() == Code::kTooLarge);
  CHECK(e->Batch({}, false).error().code() == Code::kInvalidArgument);
  CHECK(e->last_lsn() == 0);
  CHECK(e->Put(std::string(16, 'k'), std::string(32, 'v'), false).has_value());
}

// Writes a random workload; returns the model.
std::map<std::string, std::string> RandomWrites(Engine* e, std::mt19937_64& rng, int n) {
  std::map<std::string, std::string> model = Contents(e->state());
  for (int i = 0; i < n; ++i) {
    std::string key = "key" + std::to_string(rng() % 64);
    std::string value = "value" + std::to_string(rng());
    switch (rng() % 4) {
      case 0:
        REQUIRE(e->Del(key, false).has_value());
        model.erase(key);
        break;
      case 1: {
        std::string k2 = key + "b";
        std::vector<BatchOp> ops{{OpType::kPut, key, value}, {OpType::kDel, k2, {}}};
        REQUIRE(e->Batch(ops, rng() % 2 == 0).has_value());
        model[key] = value;
        model.erase(k2);
        break;
      }
      default:
        REQUIRE(e->Put(key, value, rng() % 8 == 0).has_value());
        model[key] = value;
    }
  }
  return model;
}

TEST_CASE("reopen after Close keeps everything, in every mode") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (DurabilityMode mode : {DurabilityMode::kSync, DurabilityMode::kBatch, DurabilityMode::kNone}) {
    CAPTURE(ToString(mode));
    TempDir dir;
    auto o = BasicOptions(Env::Default(), dir, mode);
    o.segment_size = 8192;
    std::map<std::string, std::string> model;
    uint64_t digest = 0;
    {
      auto e = MustOpen(o);
      model = RandomWrites(e.get(), rng, 500);
      RecordingSink sink;
      REQUIRE(e->Close(&sink).ok());
      CHECK(Contents(e->state()) == model);
      digest = e->state().Digest();
    }
    RecoveryReport rep;
    auto e = MustOpen(o, &rep);
    CHECK(Contents(e->state()) == model);
    CHECK(rep.digest == digest);
    CHECK(rep.last_lsn == 500);
    CHECK(e->last_lsn() == 500);
  }
}

TEST_CASE("two recoveries of the same files give identical digests") {
  TempDir dir;
  FaultEnv::Options fo;
  fo.seed = 7;
  fo.torn_writes = true;
  FaultEnv env(Env::Default(), fo);
  auto o = BasicOptions(&env, dir, DurabilityMode::kNone);
  o.segment_size = 8192;
  std::mt19937_64 rng(11);
  {
    auto e = MustOpen(o);
    (void)RandomWrites(e.get(), rng, 300);
    REQUIRE(e->WaitDurable(150, nullptr).ok());
    (void)RandomWrites(e.get(), rng, 100);
    env.CutPower();  // a torn, unsynced tail
  }
  env.PowerOn();
  RecoveryReport r1, r2;
  uint64_t d1 = 0;
  {
    auto e = MustOpen(o, &r1);
    d1 = e->state().Digest();
    CHECK(r1.digest == d1);
    CHECK(r1.last_lsn >= 150);
  }
  auto e = MustOpen(o, &r2);
  CHECK(r2.digest == d1);
  CHECK(r2.last_lsn == r1.last_lsn);
  CHECK(e->state().Digest() == d1);
}

TEST_CASE("snapshots: WAL segments they cover are deleted; recovery starts from the snapshot") {
  TempDir dir;
  auto o = BasicOptions(Env::Default(), dir, DurabilityMode::kNone);
  o.segment_size = 8192;
  std::mt19937_64 rng(3);
  std::map<std::string, std::string> model;
  Lsn snap_lsn = 0;
  {
    auto e = MustOpen(o);
    model = RandomWrites(e.get(), rng, 2000);
    REQUIRE(e->WaitDurable(e->last_lsn(), nullptr).ok());
    const size_t before = CountSegments(Env::Default(), o.wal_dir);
    REQUIRE(before > 3);
    snap_lsn = e->SnapshotLsn();
    CHECK(snap_lsn == e->applied_lsn());
    auto info = WriteSnapshot(Env::Default(), o.snapshot_dir, e->state(), snap_lsn);
    REQUIRE(info.has_value());
    REQUIRE(e->SnapshotInstalled(snap_lsn).ok());
    auto more = RandomWrites(e.get(), rng, 10);
    model = more;
    REQUIRE(e->Close(nullptr).ok());  // runs the queued segment deletion
    CHECK(CountSegments(Env::Default(), o.wal_dir) < before);
  }
  RecoveryReport rep;
  auto e = MustOpen(o, &rep);
  CHECK(rep.snapshot_lsn == snap_lsn);
  CHECK(rep.wal.records_replayed == 10);
  CHECK(Contents(e->state()) == model);
}

TEST_CASE("a damaged newest snapshot falls back to the older one") {
  TempDir dir;
  auto o = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);  // one big segment: nothing deleted
  std::mt19937_64 rng(5);
  std::map<std::string, std::string> model;
  Lsn first_snap = 0;
  std::string newest_path;
  {
    auto e = MustOpen(o);
    (void)RandomWrites(e.get(), rng, 50);
    REQUIRE(e->WaitDurable(e->last_lsn(), nullptr).ok());
    first_snap = e->SnapshotLsn();
    REQUIRE(WriteSnapshot(Env::Default(), o.snapshot_dir, e->state(), first_snap).has_value());
    REQUIRE(e->SnapshotInstalled(first_snap).ok());
    (void)RandomWrites(e.get(), rng, 50);
    REQUIRE(e->WaitDurable(e->last_lsn(), nullptr).ok());
    auto info = WriteSnapshot(Env::Default(), o.snapshot_dir, e->state(), e->SnapshotLsn());
    REQUIRE(info.has_value());
    newest_path = info->path;
    REQUIRE(e->SnapshotInstalled(info->lsn).ok());
    model = RandomWrites(e.get(), rng, 20);
    REQUIRE(e->Close(nullptr).ok());
  }
  // Flip a byte in the middle of the newest snapshot.
  auto bytes = Env::Default()->ReadFileToString(newest_path);
  REQUIRE(bytes.has_value());
  std::string damaged = *bytes;
  damaged[damaged.size() / 2] ^= 0x40;
  REQUIRE(WriteFileAtomic(Env::Default(), newest_path, AsBytes(damaged)).ok());

  RecoveryReport rep;
  auto e = MustOpen(o, &rep);
  CHECK(rep.snapshot_lsn == first_snap);
  REQUIRE(rep.snapshot_failures.size() == 1);
  CHECK(rep.snapshot_failures[0].find(newest_path) != std::string::npos);
  CHECK(Contents(e->state()) == model);
}

}  // namespace
}  // namespace kvd
