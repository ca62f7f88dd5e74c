#include "resp/resp_scan.h"

#include <algorithm>

namespace kvd::daemon {
namespace {

// Matches one [...] class at p (just after '['); advances p past ']'.
bool MatchClass(std::string_view pattern, size_t* p, char c) {
  size_t i = *p;
  const bool negate = i < pattern.size() && pattern[i] == '^';
  if (negate) ++i;
  bool match = false;
  while (i < pattern.size() && pattern[i] != ']') {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      ++i;
      if (pattern[i] == c) match = true;
    } else if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
      char lo = pattern[i], hi = pattern[i + 2];
      if (lo > hi) std::swap(lo, hi);
      if (c >= lo && c <= hi) match = true;
      i += 2;
    } else if (pattern[i] == c) {
      match = true;
    }
    ++i;
  }
  *p = i;  // at ']' or the end
  return negate ? !match : match;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view s) {
  size_t p = 0, i = 0;
  size_t star_p = std::string_view::npos, star_i = 0;  // backtrack point of the last '*'
  while (i < s.size()) {
    if (p < pattern.size()) {
      const char pc = pattern[p];
      if (pc == '*') {
        star_p = p++;
        star_i = i;
        continue;
      }
      if (pc == '?') {
        ++p;
        ++i;
        continue;
      }
      if (pc == '[') {
        size_t q = p + 1;
        if (MatchClass(pattern, &q, s[i])) {
          p = q < pattern.size() ? q + 1 : q;
          ++i;
          continue;
        }
      } else {
        char lit = pc;
        size_t q = p + 1;
        if (pc == '\\' && p + 1 < pattern.size()) {
          lit = pattern[p + 1];
          q = p + 2;
        }
        if (lit == s[i]) {
          p = q;
          ++i;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p + 1;
    i = ++star_i;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string LiteralPrefix(std::string_view pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '*' || c == '?' || c == '[') break;
    if (c == '\\') {
      if (i + 1 >= pattern.size()) break;
      out += pattern[++i];
      continue;
    }
    out += c;
  }
  return out;
}

uint64_t ScanCursors::Save(std::string next_key) {
  const uint64_t id = next_++;
  bytes_ += next_key.size();
  keys_.emplace(id, std::move(next_key));
  order_.push_back(id);
  while (keys_.size() > kMaxCursors || (bytes_ > kMaxCursorBytes && keys_.size() > 1)) {
    auto it = keys_.find(order_.front());
    bytes_ -= it->second.size();
    keys_.erase(it);
    order_.pop_front();
  }
  return id;
}

std::optional<std::string_view> ScanCursors::Find(uint64_t cursor) const {
  auto it = keys_.find(cursor);
  if (it == keys_.end()) return std::nullopt;
  return std::string_view(it->second);
}

void ScanKeys(const State& state, std::string_view from, std::string_view pattern, size_t count, ScanPage* page) {
  page->keys.clear();
  page->next.reset();
  const std::string prefix = LiteralPrefix(pattern);
  const bool match_all = pattern.empty() || pattern == "*";
  State::Cursor c = state.LowerBound(std::max<std::string_view>(from, prefix));
  for (size_t examined = 0; c.Valid(); c.Next(), ++examined) {
    const std::string_view k = c.key();
    if (!k.starts_with(prefix)) return;  // past every possible match
    if (examined == count) {
      page->next = std::string(k);
      return;
    }
    if (match_all || GlobMatch(pattern, k)) page->keys.push_back(k);
  }
}

}  // namespace kvd::daemon
