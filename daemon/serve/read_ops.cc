#include "serve/read_ops.h"

#include <algorithm>

namespace kvd::daemon {

void ScanState(const State& state, const proto::ScanArgs& args, size_t max_bytes,
               std::string* payload) {
  uint32_t limit = args.limit == 0 ? kDefaultScanLimit : args.limit;
  limit = std::min(limit, proto::kMaxScanLimit);
  const bool prefix_mode = args.kind == proto::ScanArgs::kPrefix;
  // Start: the first key >= a, or > after when the continuation is later.
  State::Cursor c;
  if (!args.after.empty() && args.after >= args.a) {
    c = state.UpperBound(args.after);
  } else {
    c = state.LowerBound(args.a);
  }
  proto::ScanReplyBuilder b;
  bool more = false;
  for (; c.Valid(); c.Next()) {
    std::string_view k = c.key();
    if (prefix_mode) {
      if (!k.starts_with(args.a)) break;
    } else if (!args.b.empty() && k >= args.b) {
      break;
    }
    if (b.count() >= limit || (b.count() > 0 && b.bytes() + k.size() + c.value().size() > max_bytes)) {
      more = true;
      break;
    }
    b.Add(k, c.value());
  }
  *payload = b.Finish(more);
}

}  // namespace kvd::daemon
