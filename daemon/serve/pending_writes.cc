#include "serve/pending_writes.h"

namespace kvd::daemon {

void PendingWrites::Note(Lsn lsn, std::string_view key, std::optional<std::string_view> value) {
  Entry& e = latest_[std::string(key)];
  e.lsn = lsn;
  e.present = value.has_value();
  e.value.assign(value.value_or(std::string_view{}));
  order_.emplace_back(lsn, std::string(key));
}

void PendingWrites::NoteRange(Lsn lsn, const KeyRange& r) {
  ranges_.push_back({lsn, r.prefix, std::string(r.a), std::string(r.b)});
}

void PendingWrites::Done(Lsn lsn) {
  while (!ranges_.empty() && ranges_.front().lsn <= lsn) ranges_.pop_front();
  while (!order_.empty() && order_.front().first <= lsn) {
    auto it = latest_.find(order_.front().second);
    // A later write to the same key keeps the entry.
    if (it != latest_.end() && it->second.lsn <= lsn) latest_.erase(it);
    order_.pop_front();
  }
}

void PendingWrites::Clear() {
  latest_.clear();
  ranges_.clear();
  order_.clear();
}

const PendingWrites::Entry* PendingWrites::Find(std::string_view key) const {
  if (empty()) return nullptr;
  const Entry* found = nullptr;
  if (!latest_.empty()) {
    auto it = latest_.find(std::string(key));
    if (it != latest_.end()) found = &it->second;
  }
  // The newest range delete covering key wins if it came after the key's own write.
  for (auto r = ranges_.rbegin(); r != ranges_.rend(); ++r) {
    if (found != nullptr && r->lsn < found->lsn) break;
    if (KeyRangeContains(KeyRange{r->prefix, r->a, r->b}, key)) {
      range_deleted_ = Entry{r->lsn, false, {}};
      return &range_deleted_;
    }
  }
  return found;
}

}  // namespace kvd::daemon
