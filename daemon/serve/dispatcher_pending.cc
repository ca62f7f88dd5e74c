// The values of writes not yet applied, kept for conditional writes only
// while they are used (Dispatcher::PendingValuesReady, serve/pending_writes.h).
//
// Invariant while pending_tracked_: every write submitted with an LSN above
// untracked_upto_ and not yet completed is in pending_. The writes at or
// below it were submitted before tracking began; once none of them is in
// writes_ (LSN order) any more, the State holds them (or they failed), and
// State plus pending_ is what the engine will have applied, in LSN order.
#include <algorithm>

#include "serve/dispatcher.h"

namespace kvd::daemon {

bool Dispatcher::UntrackedWritesPending() const {
  return !writes_.empty() && writes_.front().lsn <= untracked_upto_;
}

bool Dispatcher::PendingValuesReady(Session& s) {
  writes_since_decided_ = 0;
  if (!pending_tracked_) {
    pending_tracked_ = true;
    untracked_upto_ = engine_->last_lsn();
  }
  if (!UntrackedWritesPending()) return true;
  if (std::find(pending_value_waiters_.begin(), pending_value_waiters_.end(), s.id()) ==
      pending_value_waiters_.end()) {
    pending_value_waiters_.push_back(s.id());
  }
  return false;
}

void Dispatcher::NotePending(const Command& cmd, Lsn lsn) {
  if (++writes_since_decided_ >= limits_.untrack_pending_after_writes && pending_value_waiters_.empty()) {
    // No conditional write for a long while: stop paying for the copies.
    // The next one starts again from the writes submitted after it.
    pending_tracked_ = false;
    pending_.Clear();
    return;
  }
  auto value = [](OpType t, std::string_view v) -> std::optional<std::string_view> {
    if (t == OpType::kDel) return std::nullopt;
    return v;
  };
  switch (cmd.ref.op) {
    case Op::kPut: pending_.Note(lsn, cmd.key, cmd.value); break;
    case Op::kDel: pending_.Note(lsn, cmd.key, std::nullopt); break;
    case Op::kDelRange: pending_.NoteRange(lsn, cmd.range); break;
    default:
      for (const BatchOp& o : cmd.batch) pending_.Note(lsn, o.key, value(o.type, o.value));
      break;
  }
}

void Dispatcher::PendingDone(Lsn lsn) {
  if (pending_tracked_) pending_.Done(lsn);
  if (pending_value_waiters_.empty() || UntrackedWritesPending()) return;
  std::vector<uint64_t> woken;
  woken.swap(pending_value_waiters_);
  for (uint64_t id : woken) {
    if (Session* s = host_->FindSession(id)) host_->SessionReady(s);  // it decides now
  }
}

}  // namespace kvd::daemon
