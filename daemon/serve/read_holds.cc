#include "serve/read_holds.h"

#include <algorithm>

namespace kvd::daemon {

void ReadHolds::Release(Lsn ack_lsn, TimePoint now, const std::function<void(const Entry&)>& release,
                        const std::function<void(const Entry&)>& expire) {
  while (!held_.empty() && held_.front().lsn <= ack_lsn) {
    const Entry e = held_.front();
    held_.pop_front();
    release(e);
  }
  // Deadlines are nearly in order too, but sync_timeout may change at run
  // time: look at every entry (few are held at once).
  std::deque<Entry> keep;
  for (const Entry& e : held_) {
    if (now >= e.deadline) {
      expire(e);
    } else {
      keep.push_back(e);
    }
  }
  held_.swap(keep);
}

void ReadHolds::TakeAll(const std::function<void(const Entry&)>& fn) {
  std::deque<Entry> all;
  all.swap(held_);
  for (const Entry& e : all) fn(e);
}

std::optional<ReadHolds::TimePoint> ReadHolds::NextDeadline() const {
  if (held_.empty()) return std::nullopt;
  TimePoint t = held_.front().deadline;
  for (const Entry& e : held_) t = std::min(t, e.deadline);
  return t;
}

}  // namespace kvd::daemon
