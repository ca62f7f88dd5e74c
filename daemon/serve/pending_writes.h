// PendingWrites: the values of writes submitted to the engine but not yet
// applied to its State (sync mode applies a write only once its fdatasync
// returned). A conditional write (RESP's SET NX, SETNX, GETDEL, MSETNX, DEL
// with its count) decides against State *plus* these, so two clients that
// race on a key are serialized in LSN order, as the engine will apply them.
//
// Kept only while conditional writes use it (Dispatcher::PendingValuesReady,
// serve/dispatcher_pending.cc): it copies every pending key and value, which
// plain writes and the native protocol never need.
//
// Threading: the loop thread only.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kvd/types.h"

namespace kvd::daemon {

class PendingWrites {
 public:
  struct Entry {
    Lsn lsn = 0;         // the latest pending write to this key
    bool present = false;  // false: that write deletes the key
    std::string value;
  };
  // A write at lsn (LSNs noted in increasing order) sets key to value, or
  // deletes it (nullopt).
  void Note(Lsn lsn, std::string_view key, std::optional<std::string_view> value);
  // A range delete at lsn: every key in r is deleted by it.
  void NoteRange(Lsn lsn, const KeyRange& r);
  // Every write up to lsn completed (applied, or failed and never applied):
  // the State is the truth for them now.
  void Done(Lsn lsn);
  void Clear();
  // The latest pending write to key (a range delete covering it counts), or
  // nullptr. The pointer is valid until the next call.
  const Entry* Find(std::string_view key) const;
  bool empty() const { return latest_.empty() && ranges_.empty(); }
  size_t size() const { return latest_.size() + ranges_.size(); }

 private:
  struct Range {
    Lsn lsn = 0;
    bool prefix = true;
    std::string a, b;
  };
  std::unordered_map<std::string, Entry> latest_;
  std::deque<Range> ranges_;      // LSN order; few, so scanned linearly
  mutable Entry range_deleted_;  // what Find returns for a key a range deletes
  std::deque<std::pair<Lsn, std::string>> order_;  // (lsn, key), LSN order
};

}  // namespace kvd::daemon
