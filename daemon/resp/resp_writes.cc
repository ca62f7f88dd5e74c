#include "resp/resp_writes.h"

#include <unordered_set>

#include "kvd/resp.h"
#include "resp/resp_codec.h"

namespace kvd::daemon {

void DecideWrite(RespCmd id, uint16_t tag, std::span<const std::string_view> args, const ValueLookup& lookup,
                 WriteDecision* d) {
  d->ops.clear();
  d->reply.clear();
  d->read_pending = false;
  resp::ReplyWriter w(&d->reply, RespTag::Protocol(tag));
  auto current = [&](std::string_view key) { return lookup(key, &d->read_pending); };
  switch (id) {
    case RespCmd::kSet: {
      const std::optional<std::string_view> old = current(args[0]);
      const bool apply = (tag & RespTag::kNx) != 0 ? !old.has_value()
                         : (tag & RespTag::kXx) != 0 ? old.has_value()
                                                     : true;
      if (apply) d->ops.push_back(BatchOp{OpType::kPut, args[0], args[1]});
      if ((tag & RespTag::kGet) != 0) return old.has_value() ? w.Bulk(*old) : w.Null();
      return apply ? w.Simple("OK") : w.Null();
    }
    case RespCmd::kSetNx: {
      const bool apply = !current(args[0]).has_value();
      if (apply) d->ops.push_back(BatchOp{OpType::kPut, args[0], args[1]});
      return w.Integer(apply ? 1 : 0);
    }
    case RespCmd::kGetDel: {
      const std::optional<std::string_view> old = current(args[0]);
      if (!old.has_value()) return w.Null();
      d->ops.push_back(BatchOp{OpType::kDel, args[0], {}});
      return w.Bulk(*old);
    }
    case RespCmd::kDel: {
      // DEL a a deletes one key: count each distinct key once.
      std::unordered_set<std::string_view> seen;
      for (std::string_view key : args) {
        if (seen.insert(key).second && current(key).has_value()) d->ops.push_back(BatchOp{OpType::kDel, key, {}});
      }
      return w.Integer(static_cast<int64_t>(d->ops.size()));
    }
    case RespCmd::kMSetNx: {
      bool any = false;
      for (size_t i = 0; i + 1 < args.size(); i += 2) any = current(args[i]).has_value() || any;
      if (!any) {
        for (size_t i = 0; i + 1 < args.size(); i += 2) d->ops.push_back(BatchOp{OpType::kPut, args[i], args[i + 1]});
      }
      return w.Integer(any ? 0 : 1);
    }
    default:
      return w.Error("ERR internal: not a conditional write");
  }
}

}  // namespace kvd::daemon
