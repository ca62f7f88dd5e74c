// Key iteration for SCAN and KEYS over kvd's ordered State, and Redis's glob
// patterns.
//
// A SCAN cursor must be a decimal u64 (redis-cli parses it with strtoull),
// but kvd resumes a scan from a key. So the cursor names an entry in a small
// table of resume keys (ScanCursors): "continue at the first key >= K".
// Keys present for the whole iteration are returned exactly once, in key
// order; keys added or removed meanwhile may or may not be (as in Redis).
// The table keeps the newest cursors (kMaxCursors, kMaxCursorBytes); an
// evicted or unknown cursor is refused with "ERR invalid cursor" rather than
// silently restarting.
//
// Threading: the loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kvd/state.h"

namespace kvd::daemon {

// Redis's stringmatchlen: * ? [abc] [^a-z] and \x, case-sensitive.
bool GlobMatch(std::string_view pattern, std::string_view s);
// The literal text before the pattern's first special character: every
// match starts with it, so iteration can start there and stop after it.
std::string LiteralPrefix(std::string_view pattern);

class ScanCursors {
 public:
  static constexpr size_t kMaxCursors = 16384;
  static constexpr size_t kMaxCursorBytes = 16 << 20;
  // A new cursor (never 0) that resumes at next_key.
  uint64_t Save(std::string next_key);
  // The resume key, or nullopt for an unknown (or evicted) cursor.
  std::optional<std::string_view> Find(uint64_t cursor) const;
  size_t size() const { return keys_.size(); }

 private:
  std::unordered_map<uint64_t, std::string> keys_;
  std::deque<uint64_t> order_;  // oldest first
  size_t bytes_ = 0;
  uint64_t next_ = 1;
};

struct ScanPage {
  std::vector<std::string_view> keys;  // views into the State
  std::optional<std::string> next;     // where to resume; nullopt: done
};
// Examines up to `count` keys >= from (and >= the pattern's literal prefix),
// keeping those that match.
void ScanKeys(const State& state, std::string_view from, std::string_view pattern, size_t count, ScanPage* page);

}  // namespace kvd::daemon
