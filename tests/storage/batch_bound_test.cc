// Batch mode at its bound, against a disk the test controls: the WAL's
// fdatasyncs wait at a gate (or take a random time), and a model of the disk
// knows which records a returned fdatasync covered. At every acknowledgement
// the test counts the acknowledged records no returned fdatasync covered yet:
// fewer than batch_size, always. And a write waits only when acknowledging it
// would reach the bound; the next fdatasync starts as soon as one returned.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::BasicOptions;
using testing::MustOpen;
using testing::NotifyCounter;
using testing::TempDir;
using std::chrono::seconds;

// What the disk made durable. The commit observer says which records were
// written; a WAL fdatasync that returned made them durable.
class DiskModel : public CommitObserver {
 public:
  void OnRecordsWritten(Lsn, Lsn last, std::string_view) override {
    std::lock_guard<std::mutex> l(mu_);
    written_ = last;
  }

  // Around the base Sync of a WAL segment. A sync that covers new records
  // waits at the gate (until a permit or Open) and may be slowed down; one
  // with nothing new (zero-fill ahead) passes.
  Lsn BeforeSync() {
    std::unique_lock<std::mutex> l(mu_);
    const Lsn cover = written_;
    if (cover <= synced_) return cover;
    covering_syncs_++;
    cv_.notify_all();
    cv_.wait(l, [&] { return open_ || permits_ > 0; });
    if (!open_) permits_--;
    const uint64_t delay = max_delay_us_ > 0 ? rng_() % max_delay_us_ : 0;
    l.unlock();
    if (delay > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay));
    return cover;
  }
  void AfterSync(Lsn cover, const Status& s) {
    std::lock_guard<std::mutex> l(mu_);
    if (s.ok()) synced_ = std::max(synced_, cover);
    cv_.notify_all();
  }

  void Release(int n) {
    std::lock_guard<std::mutex> l(mu_);
    permits_ += n;
    cv_.notify_all();
  }
  void Open(uint64_t max_delay_us) {
    std::lock_guard<std::mutex> l(mu_);
    open_ = true;
    max_delay_us_ = max_delay_us;
    cv_.notify_all();
  }
  // Waits (bounded) until `n` syncs covering new records reached the gate.
  bool WaitCoveringSyncs(uint64_t n) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, seconds(30), [&] { return covering_syncs_ >= n; });
  }
  bool WaitSynced(Lsn lsn) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, seconds(30), [&] { return synced_ >= lsn; });
  }
  Lsn synced() {
    std::lock_guard<std::mutex> l(mu_);
    return synced_;
  }
  Lsn written() {
    std::lock_guard<std::mutex> l(mu_);
    return written_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  Lsn written_ = 0, synced_ = 0;
  uint64_t covering_syncs_ = 0;
  int permits_ = 0;
  bool open_ = false;
  uint64_t max_delay_us_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
};

class GatedFile : public WritableFile {
 public:
  GatedFile(std::unique_ptr<WritableFile> base, DiskModel* disk) : base_(std::move(base)), disk_(disk) {}
  Status WriteAt(uint64_t offset, std::span<const std::byte> data) override { return base_->WriteAt(offset, data); }
  Status Sync() override { return Around([&] { return base_->Sync(); }); }
  Status SyncAll() override { return Around([&] { return base_->SyncAll(); }); }
  Status Allocate(uint64_t offset, uint64_t len) override { return base_->Allocate(offset, len); }
  Status Truncate(uint64_t size) override { return base_->Truncate(size); }
  Result<uint64_t> Size() override { return base_->Size(); }
  Status Close() override { return base_->Close(); }
  const std::string& path() const override { return base_->path(); }

 private:
  template <typename F>
  Status Around(F sync) {
    const Lsn cover = disk_->BeforeSync();
    Status s = sync();
    disk_->AfterSync(cover, s);
    return s;
  }
  std::unique_ptr<WritableFile> base_;
  DiskModel* disk_;
};

// Gates the fdatasyncs of WAL segments; every other file passes through.
class GatedSyncEnv : public EnvWrapper {
 public:
  GatedSyncEnv(Env* base, DiskModel* disk) : EnvWrapper(base), disk_(disk) {}
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path, OpenMode mode) override {
    auto f = target()->NewWritableFile(path, mode);
    if (!f.has_value() || !ParseSegmentFileName(path.substr(path.rfind('/') + 1)).has_value()) return f;
    return std::unique_ptr<WritableFile>(std::make_unique<GatedFile>(std::move(f).value(), disk_));
  }

 private:
  DiskModel* disk_;
};

// Checks the bound at every acknowledgement: at once (a done ticket) or
// later (OnWriteDone).
class BoundChecker : public CompletionSink {
 public:
  BoundChecker(DiskModel* disk, uint32_t batch_size) : disk_(disk), batch_size_(batch_size) {}

  void Acked(Lsn lsn) {
    // Acknowledgements come in LSN order (no durable writes here).
    REQUIRE((acked_.empty() || lsn > acked_.back()));
    acked_.push_back(lsn);
    const Lsn synced = disk_->synced();
    const auto not_durable = static_cast<uint64_t>(acked_.end() - std::upper_bound(acked_.begin(), acked_.end(), synced));
    max_not_durable_ = std::max(max_not_durable_, not_durable);
    REQUIRE_MESSAGE(not_durable < batch_size_, "acknowledged LSN " << lsn << " with " << not_durable
                                                                  << " acknowledged records not durable");
    if (lsn > synced) acked_before_durable_++;
  }
  void OnWriteDone(Lsn lsn, const Status& status, bool) override {
    REQUIRE_MESSAGE(status.ok(), status.ToString());
    Acked(lsn);
    done_.push_back(lsn);
  }
  void OnFlushDone(uint64_t, const Status& status, Lsn) override { REQUIRE(status.ok()); }

  bool Done(Lsn lsn) const { return std::find(done_.begin(), done_.end(), lsn) != done_.end(); }
  uint64_t max_not_durable() const { return max_not_durable_; }
  uint64_t acked_before_durable() const { return acked_before_durable_; }
  size_t completions() const { return done_.size(); }

 private:
  DiskModel* disk_;
  const uint32_t batch_size_;
  std::vector<Lsn> acked_;
  std::vector<Lsn> done_;
  uint64_t max_not_durable_ = 0, acked_before_durable_ = 0;
};

TEST_CASE("batch mode: the next fdatasync starts at once; a write waits only when it would reach the bound") {
  TempDir dir;
  DiskModel disk;
  GatedSyncEnv env(Env::Default(), &disk);
  NotifyCounter notes;
  auto o = BasicOptions(&env, dir, DurabilityMode::kBatch);
  o.durability.batch_size = 4;
  o.durability.flush_interval = std::chrono::hours(1);  // only the count bound matters here
  o.notify = notes.Hook();
  o.commit_observer = &disk;
  auto e = MustOpen(o);
  BoundChecker sink(&disk, 4);
  auto put = [&](const std::string& k) {
    auto t = e->Put(k, "v", false);
    REQUIRE(t.has_value());
    if (t->done) sink.Acked(t->lsn);
    return *t;
  };

  CHECK(put("k1").done);
  // One acknowledged record, far from both bounds: its fdatasync starts
  // anyway, without a FLUSH, a timer tick or a full batch.
  REQUIRE(disk.WaitCoveringSyncs(1));
  CHECK(put("k2").done);
  CHECK(put("k3").done);
  // Three acknowledged and not durable: a fourth would reach batch_size.
  const WriteTicket t4 = put("k4");
  CHECK_FALSE(t4.done);
  e->Poll(&sink);
  CHECK_FALSE(sink.Done(t4.lsn));

  // The sync of k1 returns: room for k4, which is acknowledged before its own
  // sync, and the sync of k2..k4 starts right away.
  uint64_t seen = notes.count();
  disk.Release(1);
  REQUIRE(disk.WaitSynced(1));
  REQUIRE(notes.WaitPastFor(seen, seconds(30)));
  e->Poll(&sink);
  CHECK(sink.Done(t4.lsn));
  CHECK(e->durable_lsn() == 1);
  REQUIRE(disk.WaitCoveringSyncs(2));
  CHECK(disk.written() == t4.lsn);
  CHECK(disk.synced() == 1);

  // k2..k4 are acknowledged and not durable: k5 waits again.
  const WriteTicket t5 = put("k5");
  CHECK_FALSE(t5.done);
  disk.Open(0);
  REQUIRE(e->WaitDurable(t5.lsn, &sink).ok());
  CHECK(sink.Done(t5.lsn));
  CHECK(sink.max_not_durable() == 3);
  REQUIRE(e->Close(&sink).ok());
}

TEST_CASE("batch mode: fewer than batch_size acknowledged records are ever not durable, under random sync times") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (uint32_t batch : {1u, 2u, 5u, 64u}) {
    CAPTURE(batch);
    TempDir dir;
    DiskModel disk;
    // Syncs slow in proportion to the bound, so that the writers reach it
    // (the point of the test) however slowly they run (TSan: a write can
    // take tens of µs, and with 400 µs syncs a window of 64 was never filled).
    disk.Open(/*max_delay_us=*/400 * batch);
    GatedSyncEnv env(Env::Default(), &disk);
    NotifyCounter notes;
    auto o = BasicOptions(&env, dir, DurabilityMode::kBatch);
    o.durability.batch_size = batch;
    o.durability.flush_interval = std::chrono::hours(1);
    o.notify = notes.Hook();
    o.commit_observer = &disk;
    auto e = MustOpen(o);
    BoundChecker sink(&disk, batch);

    // Clients with one write in flight each, as connections waiting for
    // their reply; a client whose write was acknowledged writes again.
    constexpr int kClients = 4;
    constexpr int kWrites = 1500;
    std::vector<Lsn> waiting(kClients, 0);
    int written = 0, waited = 0;
    while (written < kWrites) {
      bool progressed = false;
      for (int c = 0; c < kClients && written < kWrites; ++c) {
        if (waiting[c] != 0 && !sink.Done(waiting[c])) continue;
        auto t = e->Put("k" + std::to_string(rng() % 500), "v", false);
        REQUIRE(t.has_value());
        written++;
        progressed = true;
        waiting[c] = t->done ? 0 : t->lsn;
        if (t->done) {
          sink.Acked(t->lsn);
        } else {
          waited++;
        }
      }
      if (!progressed) {
        const uint64_t seen = notes.count();
        e->Poll(&sink);
        if (std::all_of(waiting.begin(), waiting.end(), [&](Lsn l) { return l != 0 && !sink.Done(l); })) {
          REQUIRE(notes.WaitPastFor(seen, seconds(30)));
        }
      }
      e->Poll(&sink);
    }
    REQUIRE(e->WaitDurable(e->last_lsn(), &sink).ok());
    INFO("waited " << waited << ", acknowledged before durable " << sink.acked_before_durable()
                   << ", most not durable " << sink.max_not_durable());
    CHECK(sink.max_not_durable() < batch);
    CHECK(waited > 0);  // the bound was reached
    if (batch > 1) CHECK(sink.acked_before_durable() > 0);
    const EngineStats st = e->stats();
    CHECK(st.ack_window_peak < batch);
    REQUIRE(e->Close(&sink).ok());
  }
}

}  // namespace
}  // namespace kvd
