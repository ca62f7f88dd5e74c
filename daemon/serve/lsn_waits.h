// LsnWaits: reads parked until the engine applied their minimum LSN
// (kFlagMinLsn, read-your-writes; docs/replication.md section 6).
//
// A parked read is not a reply slot: the request stays in its session's
// input buffer and the session is blocked, as behind a barrier, so nothing
// after it is read or submitted (a later write on the same connection can
// never be seen by it). Its entry only says when to look again: once the
// applied LSN reaches min_lsn, or at the deadline. The session then decodes
// the request again and the dispatcher answers it (or fails it at the
// deadline) and removes the entry. One entry per session at most: a blocked
// session has only one request in progress.
//
// Threading: the loop thread only. No libuv here: the server's prepare phase
// calls ForReady after each loop turn's work and keeps a timer at
// NextDeadline.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "kvd/types.h"

namespace kvd::daemon {

class LsnWaits {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Entry {
    uint64_t session = 0;
    Lsn min_lsn = 0;
    TimePoint deadline{};
    // ForReady handed it out: not handed out again (a session that cannot
    // run now, e.g. paused on output, evaluates it when it runs anyway).
    bool woken = false;
  };

  // The session's entry, or nullptr.
  Entry* Find(uint64_t session) {
    auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.session == session; });
    return it == entries_.end() ? nullptr : &*it;
  }
  // Adds or replaces the session's entry.
  void Park(uint64_t session, Lsn min_lsn, TimePoint deadline) {
    Remove(session);
    entries_.push_back({session, min_lsn, deadline, false});
  }
  void Remove(uint64_t session) {
    std::erase_if(entries_, [&](const Entry& e) { return e.session == session; });
  }
  // Calls fn(session) once for every entry not yet woken whose LSN is
  // applied or whose deadline passed, and marks it woken.
  template <typename Fn>
  void ForReady(Lsn applied, TimePoint now, Fn fn) {
    for (Entry& e : entries_) {
      if (e.woken || (applied < e.min_lsn && now < e.deadline)) continue;
      e.woken = true;
      fn(e.session);
    }
  }
  // Calls fn(session) for every entry not yet woken, and marks it woken.
  template <typename Fn>
  void ForAll(Fn fn) {
    for (Entry& e : entries_) {
      if (e.woken) continue;
      e.woken = true;
      fn(e.session);
    }
  }
  // The earliest deadline of the entries not yet woken.
  std::optional<TimePoint> NextDeadline() const {
    std::optional<TimePoint> next;
    for (const Entry& e : entries_) {
      if (!e.woken && (!next || e.deadline < *next)) next = e.deadline;
    }
    return next;
  }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

 private:
  std::vector<Entry> entries_;  // few: one per session blocked on an LSN
};

}  // namespace kvd::daemon
