// Committer: the one background thread that writes groups to the WAL and
// fdatasyncs them, so that neither ever runs on the engine owner's thread.
//
// Jobs run one at a time, in submission order; results come back in the
// same order. After each job the result is stored and then notify() is
// called (on the committer thread, no lock held); the owner collects results
// with TakeResult(). No lock is held while doing I/O. When a job finishes
// and no other is queued, the committer calls WalWriter::ZeroFillAhead, so
// that housekeeping I/O stays out of the commits' latency.
//
// Ownership: from construction until Stop() returns, the WalWriter belongs to
// the committer thread; the owner must not touch it (WalStats come back in
// each result instead). After Stop() the owner may use (and close) it again.
//
// The commit observer (kvd/engine.h) is called here, on this thread: after
// a Write succeeded and before its fdatasync (OnRecordsWritten), and after a
// successful fdatasync (OnDurable). Failed writes are never shown. Jobs run
// in order and one at a time, so the calls come in LSN order.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "kvd/engine.h"
#include "kvd/wal.h"

namespace kvd {

struct CommitJob {
  enum class Kind : uint8_t {
    kCommit,        // write `records` (may be empty), then fdatasync if `sync`
    kDropSegments,  // WalWriter::DropSegmentsUpTo(drop_upto)
    kNoop,          // only wakes the owner through notify()
  };
  Kind kind = Kind::kCommit;
  std::string records;  // whole framed records, LSNs first..last
  Lsn first = 0, last = 0;
  uint64_t count = 0;   // records in the buffer (bookkeeping for the owner)
  bool sync = false;
  Lsn drop_upto = 0;
  // kDropSegments: the snapshot's LSN. Segments it covers but drop_upto
  // spares (a retention floor) are measured into CommitResult::retained.
  Lsn covered_upto = 0;
};

// WAL segments a snapshot covers that are kept for a retention floor.
struct RetainedWal {
  uint64_t segments = 0;
  uint64_t bytes = 0;       // their file sizes
  Lsn release_lsn = 0;      // last LSN of the oldest: a drop bound >= it deletes it
};

struct CommitResult {
  CommitJob job;          // handed back with its buffer (apply, or retry after ENOSPC)
  Status write_status;    // of WalWriter::Write (OK when there was nothing to write)
  Status sync_status;     // of WalWriter::Sync (OK when none was asked for)
  bool synced = false;    // an fdatasync was issued and succeeded
  uint64_t sync_us = 0;
  int dropped = 0;        // kDropSegments: segments deleted
  RetainedWal retained;   // kDropSegments: what covered_upto would have deleted too
  WalStats wal;           // writer statistics after the job
};

struct CommitterOptions {
  std::function<void()> notify;      // after each job, on the committer thread
  CommitObserver* observer = nullptr;
  Lsn written_lsn = 0;               // last LSN in the WAL at start (for OnDurable)
  Env* env = nullptr;                // with wal_dir: to measure RetainedWal
  std::string wal_dir;
};

// Latency histogram with log-linear buckets (4 per power of two): percentiles
// are accurate to about 20%. Not thread-safe (the Committer locks it).
class LatencyHistogram {
 public:
  void Add(uint64_t us);
  // Upper bound of the bucket holding the q-quantile (0 < q <= 1); 0 if empty.
  uint64_t Percentile(double q) const;
  uint64_t max() const { return max_; }
  uint64_t count() const { return count_; }

 private:
  static constexpr int kSub = 4;
  static constexpr int kBuckets = 64 * kSub;
  static int Bucket(uint64_t us);
  static uint64_t BucketUpper(int b);
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0, max_ = 0;
};

struct SyncLatency {
  uint64_t p50_us = 0, p99_us = 0, max_us = 0, last_us = 0, count = 0;
  SyncLatencyHistogram buckets;  // every successful fdatasync
};

class Committer {
 public:
  Committer(WalWriter* wal, std::function<void()> notify);
  Committer(WalWriter* wal, CommitterOptions options);
  ~Committer();  // Stop()
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  void Submit(CommitJob job);
  // A finished job's result, oldest first; nullopt if none is ready.
  std::optional<CommitResult> TakeResult();
  // Blocks until a result is ready (true) or no job is queued or running
  // (false: none will come).
  bool WaitResult();
  // Jobs submitted and not yet taken back with TakeResult.
  uint64_t outstanding() const;
  SyncLatency sync_latency() const;
  // Runs the jobs already queued, then joins the thread. Idempotent.
  void Stop();

 private:
  void Run();
  CommitResult Execute(CommitJob job);
  RetainedWal MeasureRetained(Lsn covered_upto);

  WalWriter* const wal_;
  const CommitterOptions opts_;
  Lsn written_lsn_ = 0;  // committer thread only: last LSN written successfully

  mutable std::mutex mu_;
  std::condition_variable work_cv_;    // jobs_ non-empty or stop_
  std::condition_variable result_cv_;  // results_ grew or the queue drained
  std::deque<CommitJob> jobs_;
  std::deque<CommitResult> results_;
  uint64_t running_ = 0;  // 1 while a job executes
  bool stop_ = false;
  LatencyHistogram sync_hist_;
  SyncLatencyHistogram sync_buckets_;
  uint64_t last_sync_us_ = 0;
  std::thread thread_;  // last: started after everything above exists
};

}  // namespace kvd
