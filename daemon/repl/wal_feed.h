// WalFeed: the engine's CommitObserver for replication. The committer
// thread hands it every record written (and each fdatasync that returned);
// it wakes the loop (net/loop_waker.h), where the records join a bounded in-memory
// cache of the newest WAL that WAL senders stream from. Senders further
// behind read the segments on disk (wal_source.h).
//
// Threading: OnRecordsWritten / OnDurable on the committer thread (they
// only copy under a mutex and wake the loop); everything else on the loop.
// Lifetime: created before Engine::Open, destroyed after Engine::Close.
#pragma once

#include <uv.h>

#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "kvd/engine.h"
#include "net/loop_waker.h"

namespace kvd::daemon::repl {

class WalFeed final : public CommitObserver {
 public:
  static constexpr size_t kCacheBytes = 4 << 20;

  explicit WalFeed(uv_loop_t* loop);
  // Records up to `last` exist before the feed starts (recovery's end).
  // on_update runs on the loop after new records or a new durable LSN.
  void Start(Lsn last, Lsn durable, std::function<void()> on_update);
  void Close() { waker_.Close(); }
  // on_update from now on (a role change); nothing else changes.
  // wake_on_written = false (a replica, which has no senders): records
  // written do not wake the loop; they join the cache with the wake of the
  // fdatasync that follows them, and on_update then runs once per group
  // instead of twice (on a shared CPU each wake is a context switch).
  void set_on_update(std::function<void()> on_update, bool wake_on_written = true) {
    on_update_ = std::move(on_update);
    wake_on_written_.store(wake_on_written, std::memory_order_relaxed);
  }
  // The engine's log was cut back to `last` (Engine::RewindTo, all of it
  // durable): the cache forgets everything, the next record is last + 1.
  void Rewind(Lsn last);

  // wake_on_durable = false: OnDurable only records the LSN and the owner
  // calls Drain() on the loop after the engine's own notification, which the
  // committer sends after every job (one wake per commit instead of two: on
  // a shared CPU the loop often ran between them, a context switch pair).
  void set_wake_on_durable(bool on) { wake_on_durable_.store(on, std::memory_order_relaxed); }
  // Takes what the committer reported; runs on_update (loop thread).
  void Drain();

  // CommitObserver (committer thread).
  void OnRecordsWritten(Lsn first, Lsn last, std::string_view records) override;
  void OnDurable(Lsn durable_lsn) override;

  // Loop thread.
  Lsn last_lsn() const { return last_; }          // newest record written
  Lsn durable_lsn() const { return durable_; }    // newest local fdatasync
  // The oldest LSN the cache holds (last_lsn() + 1 when empty).
  Lsn first_cached_lsn() const { return chunks_.empty() ? last_ + 1 : chunks_.front().first; }
  // Appends whole records from `from` on (from >= first_cached_lsn()) to
  // *out until about max_bytes (at least one record); *last = the last one.
  // Returns false if the cache does not hold `from`.
  bool ReadCached(Lsn from, size_t max_bytes, std::string* out, Lsn* last) const;
  // Bytes of WAL written after `lsn` that the cache can account for (lag).
  uint64_t BytesAfter(Lsn lsn) const;

 private:
  struct Chunk {
    Lsn first = 0, last = 0;
    std::string records;
  };

  std::mutex mu_;
  std::vector<Chunk> incoming_;  // guarded by mu_
  std::atomic<Lsn> incoming_durable_{0};
  std::atomic<bool> wake_on_written_{true};  // read by the committer thread
  std::atomic<bool> wake_on_durable_{true};  // read by the committer thread

  LoopWaker waker_;
  std::function<void()> on_update_;
  std::deque<Chunk> chunks_;
  size_t cached_bytes_ = 0;
  Lsn last_ = 0;
  Lsn durable_ = 0;
};

}  // namespace kvd::daemon::repl
