// The committer thread against a fake WalWriter: order, results, notify,
// shutdown, and the latency histogram. Run under TSan (label "threads").
#include "storage/committer.h"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

namespace kvd {
namespace {

// Records calls; only ever used by the committer thread (TSan checks that
// the owner never touches it while the thread runs).
class FakeWal : public WalWriter {
 public:
  Status Write(std::string_view records, Lsn first, Lsn last) override {
    calls.push_back("write " + std::to_string(first) + "-" + std::to_string(last));
    bytes += records.size();
    if (fail_writes > 0) {
      fail_writes--;
      return Status::NoSpace("fake: disk full");
    }
    return Status::Ok();
  }
  Status Sync() override {
    calls.push_back("sync");
    return fail_sync ? Status::IOError("fake: fdatasync failed") : Status::Ok();
  }
  Status DropSegmentsUpTo(Lsn lsn, int* dropped) override {
    calls.push_back("drop " + std::to_string(lsn));
    *dropped = 2;
    return Status::Ok();
  }
  Status ZeroFillAhead() override {
    std::lock_guard<std::mutex> l(fill_mu);
    fills++;
    fill_saw_result = result_published && result_published();
    fill_cv.notify_all();
    return Status::Ok();
  }
  WalStats stats() const override { return {1, bytes, "fake", 0}; }
  Status Close() override { return Status::Ok(); }

  std::vector<std::string> calls;
  uint64_t bytes = 0;
  int fail_writes = 0;
  bool fail_sync = false;
  // ZeroFillAhead calls, guarded: the test awaits them while the thread runs.
  std::mutex fill_mu;
  std::condition_variable fill_cv;
  int fills = 0;
  bool fill_saw_result = false;
  std::function<bool()> result_published;
};

CommitJob Commit(Lsn first, Lsn last, bool sync) {
  CommitJob j;
  j.records = std::string(10 * (last - first + 1), 'r');
  j.first = first;
  j.last = last;
  j.count = last - first + 1;
  j.sync = sync;
  return j;
}

TEST_CASE("jobs run in order; results come back in order with their buffers") {
  FakeWal wal;
  std::atomic<int> notified{0};
  std::vector<CommitResult> results;
  {
    Committer c(&wal, [&] { notified++; });
    c.Submit(Commit(1, 3, true));
    c.Submit(Commit(4, 4, false));
    CommitJob drop;
    drop.kind = CommitJob::Kind::kDropSegments;
    drop.drop_upto = 3;
    c.Submit(std::move(drop));
    while (results.size() < 3) {
      REQUIRE(c.WaitResult());
      while (auto r = c.TakeResult()) results.push_back(std::move(*r));
    }
    CHECK_FALSE(c.WaitResult());  // idle: no result will come
    CHECK(c.outstanding() == 0);
    SyncLatency l = c.sync_latency();
    CHECK(l.count == 1);
    CHECK(l.max_us >= l.p50_us);
    c.Stop();
  }
  CHECK(notified.load() == 3);
  REQUIRE(results.size() == 3);
  CHECK(results[0].job.first == 1);
  CHECK(results[0].job.records.size() == 30);  // handed back for apply/retry
  CHECK(results[0].synced);
  CHECK_FALSE(results[1].synced);
  CHECK(results[2].dropped == 2);
  CHECK(results[2].wal.bytes == 40);
  // After Stop the owner may look at the writer again.
  CHECK(wal.calls == std::vector<std::string>{"write 1-3", "sync", "write 4-4", "drop 3"});
}

TEST_CASE("a failed write skips the sync; a failed sync is reported") {
  FakeWal wal;
  wal.fail_writes = 1;
  Committer c(&wal, nullptr);
  c.Submit(Commit(1, 1, true));
  REQUIRE(c.WaitResult());
  auto r = c.TakeResult();
  REQUIRE(r.has_value());
  CHECK(r->write_status.IsNoSpace());
  CHECK_FALSE(r->synced);
  c.Stop();
  CHECK(wal.calls == std::vector<std::string>{"write 1-1"});

  FakeWal wal2;
  wal2.fail_sync = true;
  Committer c2(&wal2, nullptr);
  c2.Submit(Commit(1, 1, true));
  REQUIRE(c2.WaitResult());
  auto r2 = c2.TakeResult();
  REQUIRE(r2.has_value());
  CHECK(r2->write_status.ok());
  CHECK(r2->sync_status.code() == Code::kIOError);
  CHECK_FALSE(r2->synced);
}

// Logs into the FakeWal's call list: both run only on the committer thread,
// so the list shows where the observer's calls fall between write and sync.
class LoggingObserver : public CommitObserver {
 public:
  explicit LoggingObserver(FakeWal* wal) : wal_(wal) {}
  void OnRecordsWritten(Lsn first, Lsn last, std::string_view records) override {
    wal_->calls.push_back("observed " + std::to_string(first) + "-" + std::to_string(last) + " (" +
                          std::to_string(records.size()) + " bytes)");
  }
  void OnDurable(Lsn durable_lsn) override { wal_->calls.push_back("durable " + std::to_string(durable_lsn)); }

 private:
  FakeWal* wal_;
};

TEST_CASE("the commit observer sees a write after it succeeded and before its sync; never a failed one") {
  FakeWal wal;
  LoggingObserver obs(&wal);
  CommitterOptions o;
  o.observer = &obs;
  o.written_lsn = 7;  // where recovery ended
  Committer c(&wal, std::move(o));
  c.Submit(Commit(8, 9, false));   // written, not synced
  c.Submit(Commit(10, 10, true));  // written and synced: durable covers 8..10
  CommitJob flush;                 // a sync with nothing to write (FLUSH)
  flush.sync = true;
  c.Submit(std::move(flush));
  c.Stop();
  while (c.TakeResult()) {
  }
  CHECK(wal.calls == std::vector<std::string>{"write 8-9", "observed 8-9 (20 bytes)", "write 10-10",
                                              "observed 10-10 (10 bytes)", "sync", "durable 10", "sync",
                                              "durable 10"});
}

TEST_CASE("the commit observer: a failed write is not shown; a failed sync reports no durability") {
  FakeWal wal;
  wal.fail_writes = 1;
  LoggingObserver obs(&wal);
  CommitterOptions o;
  o.observer = &obs;
  Committer c(&wal, std::move(o));
  c.Submit(Commit(1, 2, true));  // ENOSPC: the LSNs go to the next writes
  c.Submit(Commit(1, 1, true));  // the retry with a new record 1
  c.Stop();
  while (c.TakeResult()) {
  }
  CHECK(wal.calls == std::vector<std::string>{"write 1-2", "write 1-1", "observed 1-1 (10 bytes)", "sync",
                                              "durable 1"});

  FakeWal wal2;
  wal2.fail_sync = true;
  LoggingObserver obs2(&wal2);
  CommitterOptions o2;
  o2.observer = &obs2;
  Committer c2(&wal2, std::move(o2));
  c2.Submit(Commit(1, 1, true));
  c2.Stop();
  while (c2.TakeResult()) {
  }
  CHECK(wal2.calls == std::vector<std::string>{"write 1-1", "observed 1-1 (10 bytes)", "sync"});
}

TEST_CASE("Stop runs the queued jobs first and is idempotent") {
  FakeWal wal;
  Committer c(&wal, nullptr);
  for (Lsn l = 1; l <= 50; ++l) c.Submit(Commit(l, l, l % 10 == 0));
  c.Stop();
  c.Stop();
  int n = 0;
  while (c.TakeResult()) n++;
  CHECK(n == 50);
  CHECK(wal.calls.size() == 55);
}

TEST_CASE("an idle committer zero-fills WAL space after publishing its result") {
  FakeWal wal;
  Committer c(&wal, nullptr);
  wal.result_published = [&] { return c.outstanding() > 0; };  // the result waits, untaken
  c.Submit(Commit(1, 2, true));
  {
    std::unique_lock<std::mutex> l(wal.fill_mu);
    wal.fill_cv.wait(l, [&] { return wal.fills > 0; });
    CHECK(wal.fill_saw_result);  // the commit's reply never waits for the zero-fill
  }
  REQUIRE(c.WaitResult());
  auto r = c.TakeResult();
  REQUIRE(r.has_value());
  CHECK(r->synced);
  c.Stop();
}

TEST_CASE("latency histogram percentiles") {
  LatencyHistogram h;
  CHECK(h.Percentile(0.5) == 0);
  for (uint64_t v = 1; v <= 1000; ++v) h.Add(v);
  CHECK(h.count() == 1000);
  CHECK(h.max() == 1000);
  const uint64_t p50 = h.Percentile(0.5), p99 = h.Percentile(0.99);
  CHECK(p50 >= 500);
  CHECK(p50 <= 640);  // within a bucket (~25%)
  CHECK(p99 >= 990);
  CHECK(p99 <= 1000);
  h.Add(5'000'000);
  CHECK(h.max() == 5'000'000);
  CHECK(h.Percentile(1.0) == 5'000'000);
}

}  // namespace
}  // namespace kvd
