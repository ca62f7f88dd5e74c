// Range deletes on the State (a range delete record, docs/wal_format.md §3.4).
// Kept out of state.cc: it needs only the public cursor and Del.
#include <string>
#include <vector>

#include "kvd/state.h"

namespace kvd {

uint64_t DeleteRange(State* state, const KeyRange& r) {
  // A cursor is invalidated by any mutation: collect the keys first, then
  // delete them. The keys are copied once; a range delete is rare and its
  // cost is proportional to what it removes.
  std::vector<std::string> keys;
  for (State::Cursor c = state->LowerBound(r.a); c.Valid(); c.Next()) {
    if (!KeyRangeContains(r, c.key())) break;  // keys are ordered: the first miss ends the range
    keys.emplace_back(c.key());
  }
  for (const std::string& k : keys) state->Del(k);
  return keys.size();
}

}  // namespace kvd
