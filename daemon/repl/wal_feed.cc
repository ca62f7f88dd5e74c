#include "repl/wal_feed.h"

#include <algorithm>

#include "kvd/wal.h"

namespace kvd::daemon::repl {

WalFeed::WalFeed(uv_loop_t* loop) : waker_(loop, [this] { Drain(); }) {}

void WalFeed::Start(Lsn last, Lsn durable, std::function<void()> on_update) {
  last_ = last;
  durable_ = durable;
  on_update_ = std::move(on_update);
  Drain();
}

void WalFeed::Rewind(Lsn last) {
  {
    // Records still queued were written before the cut (the rewind drove
    // every commit to completion first): they are gone now.
    std::lock_guard lock(mu_);
    incoming_.clear();
  }
  chunks_.clear();
  cached_bytes_ = 0;
  last_ = last;
  durable_ = last;
  incoming_durable_.store(last, std::memory_order_release);
}

void WalFeed::OnRecordsWritten(Lsn first, Lsn last, std::string_view records) {
  {
    std::lock_guard lock(mu_);
    incoming_.push_back({first, last, std::string(records)});
  }
  if (wake_on_written_.load(std::memory_order_relaxed)) waker_.Wake();
}

void WalFeed::OnDurable(Lsn durable_lsn) {
  incoming_durable_.store(durable_lsn, std::memory_order_release);
  if (wake_on_durable_.load(std::memory_order_relaxed)) waker_.Wake();
}

void WalFeed::Drain() {
  std::vector<Chunk> in;
  {
    std::lock_guard lock(mu_);
    in.swap(incoming_);
  }
  for (Chunk& c : in) {
    // Records the feed has already seen (an observer started before Start
    // was told where recovery ended) are skipped, never sent twice.
    if (c.last <= last_) continue;
    last_ = c.last;
    cached_bytes_ += c.records.size();
    chunks_.push_back(std::move(c));
  }
  while (cached_bytes_ > kCacheBytes && chunks_.size() > 1) {
    cached_bytes_ -= chunks_.front().records.size();
    chunks_.pop_front();
  }
  durable_ = std::max(durable_, incoming_durable_.load(std::memory_order_acquire));
  if (on_update_) on_update_();
}

bool WalFeed::ReadCached(Lsn from, size_t max_bytes, std::string* out, Lsn* last) const {
  if (chunks_.empty() || from < chunks_.front().first || from > last_) return false;
  // Chunks are in LSN order: the first that reaches `from`, without a walk
  // through the whole cache.
  auto it = std::partition_point(chunks_.begin(), chunks_.end(), [&](const Chunk& c) { return c.last < from; });
  bool any = false;
  for (; it != chunks_.end(); ++it) {
    const Chunk& c = *it;
    if (c.first >= from && out->size() + c.records.size() <= max_bytes) {
      // A whole chunk (the usual case: a replica keeping up asks for the
      // newest group): one copy, no record walk.
      out->append(c.records);
      *last = c.last;
      any = true;
      continue;
    }
    bool stop = false;
    ForEachRecord(c.records, [&](const WalRecord& rec) {
      if (rec.lsn < from) return true;
      if (any && out->size() + rec.encoded.size() > max_bytes) {
        stop = true;
        return false;
      }
      out->append(rec.encoded);
      *last = rec.lsn;
      any = true;
      return true;
    });
    if (stop) break;
  }
  return any;
}

uint64_t WalFeed::BytesAfter(Lsn lsn) const {
  uint64_t n = 0;
  for (auto it = chunks_.rbegin(); it != chunks_.rend() && it->last > lsn; ++it) {
    if (it->first > lsn) {
      n += it->records.size();
      continue;
    }
    ForEachRecord(it->records, [&](const WalRecord& rec) {
      if (rec.lsn > lsn) n += rec.encoded.size();
      return true;
    });
  }
  return n;
}

}  // namespace kvd::daemon::repl
