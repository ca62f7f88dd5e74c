// The group-commit policy alone: no threads, no I/O, time passed in.
#include <doctest/doctest.h>

#include <random>

#include "storage/group_commit.h"

namespace kvd {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

DurabilityOptions Opts(DurabilityMode mode, uint32_t batch = 8, microseconds interval = milliseconds(10)) {
  DurabilityOptions o;
  o.mode = mode;
  o.batch_size = batch;
  o.flush_interval = interval;
  return o;
}

const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1);

TEST_CASE("AckAtOnce: sync mode and durable writes always wait") {
  AckWindow w;
  CHECK_FALSE(AckAtOnce(Opts(DurabilityMode::kSync), false, true, w, kT0));
  CHECK_FALSE(AckAtOnce(Opts(DurabilityMode::kBatch), true, true, w, kT0));
  CHECK_FALSE(AckAtOnce(Opts(DurabilityMode::kNone), true, true, w, kT0));
  // A write that cannot be applied yet is never acknowledged.
  CHECK_FALSE(AckAtOnce(Opts(DurabilityMode::kNone), false, false, w, kT0));
  CHECK(AckAtOnce(Opts(DurabilityMode::kNone), false, true, w, kT0));
}

TEST_CASE("AckAtOnce: batch_size 1 syncs every write before acknowledging it") {
  AckWindow w;
  for (int i = 0; i < 5; ++i) CHECK_FALSE(AckAtOnce(Opts(DurabilityMode::kBatch, 1), false, true, w, kT0));
}

TEST_CASE("AckAtOnce: batch mode keeps fewer than batch_size acknowledged records not durable") {
  const auto opts = Opts(DurabilityMode::kBatch, 4);
  AckWindow w;
  Lsn lsn = 0;
  int acked = 0;
  while (AckAtOnce(opts, false, true, w, kT0)) {
    w.Push(++lsn, kT0, false);
    acked++;
    REQUIRE(acked < 10);
  }
  CHECK(acked == 3);
  CHECK(w.count() == 3);
  w.OnDurable(2);
  CHECK(w.count() == 1);
  CHECK(AckAtOnce(opts, false, true, w, kT0));
}

TEST_CASE("AckAtOnce: batch mode waits once the oldest acknowledged record is flush_interval old") {
  const auto opts = Opts(DurabilityMode::kBatch, 100, milliseconds(10));
  AckWindow w;
  w.Push(1, kT0, false);
  CHECK(AckAtOnce(opts, false, true, w, kT0 + milliseconds(9)));
  CHECK_FALSE(AckAtOnce(opts, false, true, w, kT0 + milliseconds(10)));
  w.OnDurable(1);
  CHECK(AckAtOnce(opts, false, true, w, kT0 + milliseconds(50)));
}

TEST_CASE("AckWindow: runs, coalescing and partial coverage") {
  AckWindow w;
  w.Push(1, kT0, false);
  w.Push(2, kT0 + milliseconds(1), false);
  CHECK(w.count() == 2);
  CHECK(w.oldest() == kT0);
  w.OnDurable(1);
  CHECK(w.count() == 1);
  CHECK(w.oldest() == kT0 + milliseconds(1));
  w.Push(3, kT0 + milliseconds(2), true);  // coalesces into the run ending at 2
  w.Push(4, kT0 + milliseconds(3), true);
  CHECK(w.count() == 3);
  w.OnDurable(3);  // run [2..4] only partly covered: kept whole
  CHECK(w.count() == 3);
  w.OnDurable(4);
  CHECK(w.empty());
}

TEST_CASE("Decide: sync mode commits whenever records are pending and none runs") {
  const auto opts = Opts(DurabilityMode::kSync);
  GroupInputs in{.now = kT0};
  CHECK_FALSE(Decide(opts, in).start);
  in.pending_records = 1;
  in.pending_bytes = 100;
  CommitPlan p = Decide(opts, in);
  CHECK(p.start);
  CHECK(p.sync);
  in.commit_running = true;
  CHECK_FALSE(Decide(opts, in).start);
  CHECK(GroupRecordCap(opts) == 8);
}

TEST_CASE("Decide: batch mode starts the next sync as soon as records wait and none runs") {
  const auto opts = Opts(DurabilityMode::kBatch, 8, milliseconds(10));
  // One pending record, young, far below the bound: a sync starts at once
  // (not when the batch is full or half the interval passed).
  GroupInputs in{.now = kT0, .pending_records = 1, .pending_bytes = 50};
  CommitPlan p = Decide(opts, in);
  CHECK(p.start);
  CHECK(p.sync);
  // One at a time: the records arriving meanwhile form the next group.
  in.commit_running = true;
  in.pending_records = 7;
  CHECK_FALSE(Decide(opts, in).start);
  // Nothing pending and no one waiting: nothing to do.
  in.commit_running = false;
  in.pending_records = 0;
  in.pending_bytes = 0;
  CHECK_FALSE(Decide(opts, in).start);
  // A FLUSH with nothing pending still gets its sync.
  in.sync_wanted = true;
  CHECK(Decide(opts, in).sync);
  CHECK(GroupRecordCap(opts) == 8);
}

TEST_CASE("HasRoom: the bound a waiting batch write is released under") {
  const auto opts = Opts(DurabilityMode::kBatch, 3, milliseconds(10));
  AckWindow w;
  CHECK(HasRoom(opts, w, kT0));
  w.Push(1, kT0, false);
  CHECK(HasRoom(opts, w, kT0));  // 2 after it
  w.Push(2, kT0, false);
  CHECK_FALSE(HasRoom(opts, w, kT0));  // 3 would reach batch_size
  w.OnDurable(1);
  CHECK(HasRoom(opts, w, kT0 + milliseconds(9)));
  CHECK_FALSE(HasRoom(opts, w, kT0 + milliseconds(10)));  // record 2 is flush_interval old
  CHECK_FALSE(HasRoom(Opts(DurabilityMode::kBatch, 1), AckWindow{}, kT0));
}

TEST_CASE("Decide: none mode writes without fdatasync unless someone waits") {
  const auto opts = Opts(DurabilityMode::kNone, 8, milliseconds(10));
  GroupInputs in{.now = kT0, .pending_records = 10, .pending_bytes = 1000, .oldest_pending = kT0};
  CHECK_FALSE(Decide(opts, in).start);
  in.now = kT0 + milliseconds(10);
  CommitPlan p = Decide(opts, in);
  CHECK(p.start);
  CHECK_FALSE(p.sync);
  in.now = kT0;
  in.pending_bytes = kGroupBytes;
  CHECK(Decide(opts, in).start);
  CHECK_FALSE(Decide(opts, in).sync);
  in.pending_bytes = 10;
  in.sync_wanted = true;
  CHECK(Decide(opts, in).sync);
  // FLUSH with nothing pending: a sync-only commit.
  in.pending_records = 0;
  in.pending_bytes = 0;
  p = Decide(opts, in);
  CHECK(p.start);
  CHECK(p.sync);
  CHECK(GroupRecordCap(opts) == UINT64_MAX);
}

// A simulated writer and committer: whatever the timing, batch mode never
// lets batch_size acknowledged records, or one older than flush_interval,
// be not durable when a write is acknowledged.
TEST_CASE("batch mode bound holds under random timing") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (uint32_t batch : {1u, 2u, 3u, 16u}) {
    const auto opts = Opts(DurabilityMode::kBatch, batch, milliseconds(5));
    AckWindow w;
    Clock::time_point now = kT0;
    Lsn last = 0, durable = 0, commit_cover = 0;
    bool running = false;
    uint64_t waited = 0;
    for (int step = 0; step < 20000; ++step) {
      now += microseconds(rng() % 800);
      switch (rng() % 3) {
        case 0: {  // a write
          bool ack = AckAtOnce(opts, false, true, w, now);
          ++last;
          if (ack) {
            w.Push(last, now, false);
            REQUIRE(w.count() < batch);
            REQUIRE(now - w.oldest() < opts.flush_interval);
          } else {
            waited++;
            // The writer waits: the engine must start (or have) a sync for it.
            GroupInputs in{.now = now, .commit_running = running, .pending_records = last - commit_cover,
                           .sync_wanted = true};
            if (!running) REQUIRE(Decide(opts, in).start);
          }
          break;
        }
        case 1:  // maybe start a commit
          if (!running && last > commit_cover) {
            GroupInputs in{.now = now, .pending_records = last - commit_cover};
            if (Decide(opts, in).start) {
              running = true;
              commit_cover = last;
            }
          }
          break;
        case 2:  // the running commit finishes
          if (running) {
            running = false;
            durable = commit_cover;
            w.OnDurable(durable);
          }
          break;
      }
    }
    if (batch == 1) CHECK(waited > 0);
  }
}

}  // namespace
}  // namespace kvd
