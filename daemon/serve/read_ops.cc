#include "serve/read_ops.h"

#include <algorithm>

#include "serve/native_codec.h"

namespace kvd::daemon {

void CollectScan(const State& state, const ScanSpec& spec, size_t max_bytes, ScanResult* result) {
  result->items.clear();
  result->more = false;
  uint32_t limit = spec.limit == 0 ? kDefaultScanLimit : spec.limit;
  limit = std::min(limit, proto::kMaxScanLimit);
  // Start: the first key >= a, or > after when the continuation is later.
  State::Cursor c;
  if (!spec.after.empty() && spec.after >= spec.a) {
    c = state.UpperBound(spec.after);
  } else {
    c = state.LowerBound(spec.a);
  }
  size_t bytes = 4;  // as the native payload counts: u32 count, then u32-prefixed key and value
  for (; c.Valid(); c.Next()) {
    std::string_view k = c.key();
    if (spec.prefix) {
      if (!k.starts_with(spec.a)) break;
    } else if (!spec.b.empty() && k >= spec.b) {
      break;
    }
    const size_t n = result->items.size();
    if (n >= limit || (n > 0 && bytes + k.size() + c.value().size() > max_bytes)) {
      result->more = true;
      break;
    }
    result->items.emplace_back(k, c.value());
    bytes += 8 + k.size() + c.value().size();
  }
}

void ScanState(const State& state, const proto::ScanArgs& args, size_t max_bytes,
               std::string* payload) {
  ScanResult r;
  CollectScan(state, ScanSpec{args.kind == proto::ScanArgs::kPrefix, args.limit, args.a, args.b, args.after},
              max_bytes, &r);
  payload->clear();
  AppendScanPayload(r, payload);
}

}  // namespace kvd::daemon
