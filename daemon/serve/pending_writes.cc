#include "serve/pending_writes.h"

namespace kvd::daemon {

void PendingWrites::Note(Lsn lsn, std::string_view key, std::optional<std::string_view> value) {
  Entry& e = latest_[std::string(key)];
  e.lsn = lsn;
  e.present = value.has_value();
  e.value.assign(value.value_or(std::string_view{}));
  order_.emplace_back(lsn, std::string(key));
}

void PendingWrites::Done(Lsn lsn) {
  while (!order_.empty() && order_.front().first <= lsn) {
    auto it = latest_.find(order_.front().second);
    // A later write to the same key keeps the entry.
    if (it != latest_.end() && it->second.lsn <= lsn) latest_.erase(it);
    order_.pop_front();
  }
}

void PendingWrites::Clear() {
  latest_.clear();
  order_.clear();
}

const PendingWrites::Entry* PendingWrites::Find(std::string_view key) const {
  if (latest_.empty()) return nullptr;
  auto it = latest_.find(std::string(key));
  return it == latest_.end() ? nullptr : &it->second;
}

}  // namespace kvd::daemon
