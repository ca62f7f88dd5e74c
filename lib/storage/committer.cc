#include "storage/committer.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <utility>
#include <vector>

#include "kvd/mutation.h"

namespace kvd {

// ---- LatencyHistogram ---------------------------------------------------------

int LatencyHistogram::Bucket(uint64_t us) {
  if (us < kSub) return static_cast<int>(us);
  int msb = 63 - std::countl_zero(us);  // >= 2
  int sub = static_cast<int>((us >> (msb - 2)) & (kSub - 1));
  int b = (msb - 1) * kSub + sub;
  return b < kBuckets ? b : kBuckets - 1;
}

uint64_t LatencyHistogram::BucketUpper(int b) {
  if (b < kSub) return static_cast<uint64_t>(b);
  int msb = b / kSub + 1;
  uint64_t sub = static_cast<uint64_t>(b % kSub);
  return ((kSub + sub + 1) << (msb - 2)) - 1;
}

void LatencyHistogram::Add(uint64_t us) {
  buckets_[static_cast<size_t>(Bucket(us))]++;
  count_++;
  if (us > max_) max_ = us;
}

uint64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  auto rank = static_cast<uint64_t>(q * static_cast<double>(count_) + 0.999999);
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += buckets_[static_cast<size_t>(b)];
    if (seen >= rank) return std::min(BucketUpper(b), max_);
  }
  return max_;
}

// ---- Committer ------------------------------------------------------------------

Committer::Committer(WalWriter* wal, std::function<void()> notify)
    : Committer(wal, CommitterOptions{std::move(notify), nullptr, 0, nullptr, {}}) {}

Committer::Committer(WalWriter* wal, CommitterOptions options)
    : wal_(wal), opts_(std::move(options)), written_lsn_(opts_.written_lsn), thread_([this] { Run(); }) {}

Committer::~Committer() { Stop(); }

void Committer::Submit(CommitJob job) {
  {
    std::lock_guard<std::mutex> l(mu_);
    jobs_.push_back(std::move(job));
  }
  work_cv_.notify_one();
}

std::optional<CommitResult> Committer::TakeResult() {
  std::lock_guard<std::mutex> l(mu_);
  if (results_.empty()) return std::nullopt;
  CommitResult r = std::move(results_.front());
  results_.pop_front();
  return r;
}

bool Committer::WaitResult() {
  std::unique_lock<std::mutex> l(mu_);
  result_cv_.wait(l, [&] { return !results_.empty() || (jobs_.empty() && running_ == 0); });
  return !results_.empty();
}

uint64_t Committer::outstanding() const {
  std::lock_guard<std::mutex> l(mu_);
  return jobs_.size() + running_ + results_.size();
}

SyncLatency Committer::sync_latency() const {
  std::lock_guard<std::mutex> l(mu_);
  return {sync_hist_.Percentile(0.5), sync_hist_.Percentile(0.99), sync_hist_.max(), last_sync_us_,
          sync_hist_.count(), sync_buckets_};
}

void Committer::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  work_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Committer::Run() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    work_cv_.wait(l, [&] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) break;  // stop_ and drained
    CommitJob job = std::move(jobs_.front());
    jobs_.pop_front();
    running_ = 1;
    l.unlock();
    CommitResult r = Execute(std::move(job));  // I/O without the lock
    const bool sync_after_reply = KVD_MUTANT(ack_before_fdatasync) && r.job.kind == CommitJob::Kind::kCommit &&
                                  r.job.sync && r.write_status.ok();
    l.lock();
    if (r.job.kind == CommitJob::Kind::kCommit && r.job.sync && r.sync_status.ok() && r.write_status.ok()) {
      sync_hist_.Add(r.sync_us);
      sync_buckets_.Add(r.sync_us);
      last_sync_us_ = r.sync_us;
    }
    results_.push_back(std::move(r));
    running_ = 0;
    l.unlock();
    result_cv_.notify_all();
    if (opts_.notify) opts_.notify();
    if (sync_after_reply) (void)wal_->Sync();  // the owner may be replying already
    l.lock();
    if (jobs_.empty() && !stop_) {
      // Idle: prepare WAL space now rather than inside the next commit. A
      // failure is kept by the writer and reported by the next job.
      l.unlock();
      (void)wal_->ZeroFillAhead();
      l.lock();
    }
  }
  l.unlock();
  result_cv_.notify_all();
}

CommitResult Committer::Execute(CommitJob job) {
  CommitResult r;
  switch (job.kind) {
    case CommitJob::Kind::kCommit:
      if (!job.records.empty()) {
        r.write_status = wal_->Write(job.records, job.first, job.last);
        if (r.write_status.ok()) {
          // Final now: only a failed write hands its LSNs out again.
          written_lsn_ = job.last;
          if (opts_.observer) opts_.observer->OnRecordsWritten(job.first, job.last, job.records);
        }
      }
      if (r.write_status.ok() && job.sync && KVD_MUTANT(ack_before_fdatasync)) {
        r.synced = true;  // claimed now; Run() syncs after handing the result back
        if (opts_.observer) opts_.observer->OnDurable(written_lsn_);
      } else if (r.write_status.ok() && job.sync) {
        auto t0 = std::chrono::steady_clock::now();
        r.sync_status = wal_->Sync();
        auto dt = std::chrono::steady_clock::now() - t0;
        r.sync_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(dt).count());
        r.synced = r.sync_status.ok();
        if (r.synced && opts_.observer) opts_.observer->OnDurable(written_lsn_);
      }
      break;
    case CommitJob::Kind::kDropSegments:
      r.write_status = wal_->DropSegmentsUpTo(job.drop_upto, &r.dropped);
      if (job.covered_upto > job.drop_upto) r.retained = MeasureRetained(job.covered_upto);
      break;
    case CommitJob::Kind::kNoop:
      break;
  }
  r.wal = wal_->stats();
  r.job = std::move(job);
  return r;
}

// Segment i holds LSNs [first_i, first_{i+1} - 1] (the writer's rule); the
// last one is the active segment, never covered. Read from the directory,
// so the writer needs no extra interface; a failure only leaves the
// statistic empty.
RetainedWal Committer::MeasureRetained(Lsn covered_upto) {
  RetainedWal out;
  if (opts_.env == nullptr) return out;
  auto names = opts_.env->ListDir(opts_.wal_dir);
  if (!names) return out;
  std::vector<std::pair<Lsn, std::string>> segs;
  for (const std::string& n : *names) {
    if (auto lsn = ParseSegmentFileName(n)) segs.emplace_back(*lsn, n);
  }
  std::sort(segs.begin(), segs.end());
  for (size_t i = 0; i + 1 < segs.size() && segs[i + 1].first - 1 <= covered_upto; ++i) {
    if (out.segments == 0) out.release_lsn = segs[i + 1].first - 1;
    out.segments++;
    auto size = opts_.env->FileSize(JoinPath(opts_.wal_dir, segs[i].second));
    if (size) out.bytes += *size;
  }
  return out;
}

}  // namespace kvd
