#include "storage/group_commit.h"

#include <algorithm>

#include "kvd/mutation.h"

namespace kvd {
namespace {

// Elapsed time, zero when `now` is unknown (default) or earlier than `t`.
Clock::duration Since(Clock::time_point t, Clock::time_point now) {
  return now > t ? now - t : Clock::duration::zero();
}

}  // namespace

void AckWindow::Push(Lsn lsn, Clock::time_point now, bool coalesce) {
  if (coalesce && !runs_.empty()) {
    runs_.back().last = lsn;
    runs_.back().count++;
  } else {
    runs_.push_back({lsn, 1, now});
  }
  count_++;
}

void AckWindow::OnDurable(Lsn lsn) {
  while (!runs_.empty() && runs_.front().last <= lsn) {
    count_ -= runs_.front().count;
    runs_.pop_front();
  }
}

void AckWindow::Clear() {
  runs_.clear();
  count_ = 0;
}

bool AckAtOnce(const DurabilityOptions& opts, bool durable, bool can_apply,
               const AckWindow& window, Clock::time_point now) {
  if (durable || !can_apply) return false;
  switch (opts.mode) {
    case DurabilityMode::kSync:
      return false;
    case DurabilityMode::kNone:
      return true;
    case DurabilityMode::kBatch:
      return HasRoom(opts, window, now);
  }
  return false;
}

bool HasRoom(const DurabilityOptions& opts, const AckWindow& window, Clock::time_point now) {
  // After this write: window.count() + 1 acknowledged, not durable.
  if (KVD_MUTANT(batch_exceeds_bound)) return true;
  if (window.count() + (KVD_MUTANT(batch_bound_off_by_one) ? 0 : 1) >= opts.batch_size) return false;
  return window.empty() || Since(window.oldest(), now) < opts.flush_interval;
}

uint64_t GroupRecordCap(const DurabilityOptions& opts) {
  if (opts.mode == DurabilityMode::kNone) return UINT64_MAX;
  return std::max<uint64_t>(1, opts.batch_size);
}

CommitPlan Decide(const DurabilityOptions& opts, const GroupInputs& in) {
  if (in.commit_running) return {};
  if (in.pending_records == 0) {
    // Nothing to write, but a FLUSH wants an fdatasync (perhaps of records
    // written earlier without one).
    return in.sync_wanted ? CommitPlan{true, true} : CommitPlan{};
  }
  switch (opts.mode) {
    case DurabilityMode::kSync:
    case DurabilityMode::kBatch:
      // Batch: acknowledged records are not durable until a sync covers
      // them, so one starts as soon as the previous returned. Waiting to
      // fill a batch would save fdatasyncs only on an idle disk, and would
      // make the writer that reaches the bound wait a whole sync (the
      // original engine's SETBATCH did); this way the window stays about
      // one fdatasync long and a writer waits only when the disk is slower
      // than batch_size writes.
      return {true, true};
    case DurabilityMode::kNone:
      if (in.sync_wanted) return {true, true};
      if (in.front_group_full || in.pending_bytes >= kGroupBytes ||
          Since(in.oldest_pending, in.now) >= opts.flush_interval) {
        return {true, false};
      }
      return {};
  }
  return {};
}

}  // namespace kvd
