#include "commands.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <ostream>

#include "cluster_route.h"
#include "connect.h"
#include "exit_codes.h"
#include "format.h"
#include "status_print.h"

namespace kvctl {
namespace {

int Fail(const CommandContext& c, const kvd::Status& status) {
  const kvd::Status s = ExplainTimeout(status);
  std::string msg = s.message().empty() ? std::string(kvd::CodeName(s.code())) : s.message();
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  c.err << "kvctl: " << msg << "\n";
  return ExitCodeFor(s);
}

int NotFound(const CommandContext& c, const std::string& key) {
  c.err << "kvctl: not found: " << EscapeForLine(key) << "\n";
  return kExitNotFound;
}

// Connects and runs op(client) -> exit code; connection errors exit 3.
template <typename Fn>
int WithClient(const CommandContext& c, Fn&& op) {
  auto client = ConnectTo(c.socket, c.timeout);
  if (!client.has_value()) return Fail(c, client.error());
  return op(**client);
}

// Runs a write, op(client) -> Result<T>. A NotPrimary refusal naming the
// primary (" primary_address=PATH") is sent once more, to PATH: it did not
// happen, so repeating it is safe. A second NotPrimary is an error (no loops).
template <typename Fn>
auto WriteFollowingPrimary(const CommandContext& c, Fn&& op) -> decltype(op(std::declval<kvd::Client&>())) {
  using R = decltype(op(std::declval<kvd::Client&>()));
  auto client = ConnectTo(c.socket, c.timeout);
  if (!client.has_value()) return R(client.error());
  R first = op(**client);
  if (first.has_value() || first.error().code() != kvd::Code::kNotPrimary) return first;
  const auto primary = PrimaryAddressFromRefusal(first.error().message());
  if (!primary) return first;
  const std::string via = "following NotPrimary from " + c.socket + " to " + *primary;
  auto next = ConnectTo(*primary, c.timeout);
  if (!next.has_value()) return R(next.error().Annotate(via));
  R second = op(**next);
  if (!second.has_value() && second.error().code() == kvd::Code::kNotPrimary) {
    return R(second.error().Annotate(via + ", it refused too (not followed again)"));
  }
  return second;
}

constexpr const char* kSnapshotPathKey = "storage.snapshot_path";

}  // namespace

std::string SnapshotFileName(uint64_t lsn) {
  char name[40];
  std::snprintf(name, sizeof(name), "snap-%020llu.kvs", static_cast<unsigned long long>(lsn));
  return name;
}

int CmdBatch(const CommandContext& c, const std::vector<BatchEntry>& entries, bool durable) {
  const std::vector<kvd::BatchOp> ops = BatchOpsOf(entries);
  auto r = WriteFollowingPrimary(c, [&](kvd::Client& cl) { return cl.Batch(ops, durable); });
  if (!r.has_value()) return Fail(c, r.error());
  c.out << "OK\n";
  return kExitOk;
}

int CmdPut(const CommandContext& c, const std::string& key, const std::string& value, bool durable) {
  auto r = WriteFollowingPrimary(c, [&](kvd::Client& cl) { return cl.Put(key, value, durable); });
  if (!r.has_value()) return Fail(c, r.error());
  c.out << "OK\n";
  return kExitOk;
}

int CmdGet(const CommandContext& c, const std::string& key, bool raw) {
  return WithClient(c, [&](kvd::Client& cl) {
    auto r = cl.Get(key, c.min_lsn);
    if (!r.has_value()) return r.error().IsNotFound() ? NotFound(c, key) : Fail(c, r.error());
    if (!r->has_value()) return NotFound(c, key);
    const std::string& value = **r;
    if (raw) {  // `kvctl get --raw k > file` round-trips any value
      c.out.write(value.data(), static_cast<std::streamsize>(value.size()));
    } else if (c.out_is_tty) {  // a value must not be able to drive the terminal
      c.out << EscapeForTerminal(value) << '\n';
    } else {
      c.out.write(value.data(), static_cast<std::streamsize>(value.size()));
      c.out << '\n';
    }
    c.out.flush();
    return kExitOk;
  });
}

int CmdDel(const CommandContext& c, const std::string& key, bool durable) {
  auto r = WriteFollowingPrimary(c, [&](kvd::Client& cl) { return cl.Del(key, durable); });
  if (!r.has_value()) return r.error().IsNotFound() ? NotFound(c, key) : Fail(c, r.error());
  if (!r->existed) return NotFound(c, key);
  c.out << "OK\n";
  return kExitOk;
}

int CmdDelRange(const CommandContext& c, const DelRangeOptions& o, bool durable) {
  kvd::KeyRange range;
  if (o.prefix) {
    if (o.from || o.to) {
      c.err << "kvctl: del --prefix excludes --from/--to\n";
      return kExitUsage;
    }
    if (o.prefix->empty()) {
      c.err << "kvctl: del --prefix '' would delete every key; refusing (use del --from '' --to KEY for a range)\n";
      return kExitUsage;
    }
    range.a = *o.prefix;
  } else {
    if (!o.from || !o.to) {
      c.err << "kvctl: del --from A --to B needs both bounds (the range is [A, B): B is not deleted)\n";
      return kExitUsage;
    }
    if (*o.from >= *o.to) {
      c.err << "kvctl: del --from A --to B: A must sort before B (the range is [A, B))\n";
      return kExitUsage;
    }
    range.prefix = false;
    range.a = *o.from;
    range.b = *o.to;
  }
  auto r = WriteFollowingPrimary(c, [&](kvd::Client& cl) { return cl.DeleteRange(range, durable); });
  if (!r.has_value()) return Fail(c, r.error());
  c.out << "deleted=" << r->removed << " lsn=" << r->lsn << "\n";
  return kExitOk;
}

int CmdCount(const CommandContext& c, const std::string& prefix) {
  return WithClient(c, [&](kvd::Client& cl) {
    auto r = cl.Count(prefix, c.min_lsn);
    if (!r.has_value()) return Fail(c, r.error());
    c.out << *r << "\n";
    return kExitOk;
  });
}

int CmdSize(const CommandContext& c) { return CmdCount(c, ""); }

int CmdScan(const CommandContext& c, const ScanOptions& o) {
  if (o.prefix && (o.start || o.end)) {
    c.err << "kvctl: --prefix excludes --start/--end\n";
    return kExitUsage;
  }
  return WithClient(c, [&](kvd::Client& cl) {
    kvd::proto::ScanArgs args;
    if (o.start || o.end) {
      args.kind = kvd::proto::ScanArgs::kRange;
      if (o.start) args.a = *o.start;
      if (o.end) args.b = *o.end;
    } else if (o.prefix) {
      args.a = *o.prefix;
    }
    std::string after;
    uint64_t printed = 0;
    while (o.limit == 0 || printed < o.limit) {
      const uint64_t want = o.limit == 0 ? 0 : o.limit - printed;
      args.limit = static_cast<uint32_t>(std::min<uint64_t>(want, kvd::proto::kMaxScanLimit));
      args.after = after;
      auto r = cl.Scan(args, c.min_lsn);
      if (!r.has_value()) return Fail(c, r.error());
      for (const auto& [k, v] : r->items) {
        if (o.limit != 0 && printed == o.limit) break;
        c.out << EscapeForLine(k) << '\t' << EscapeForLine(v) << '\n';
        ++printed;
      }
      if (!r->more || r->items.empty()) break;
      after = r->items.back().first;  // continuation: keys strictly after it
    }
    c.out.flush();
    return kExitOk;
  });
}

int CmdFlush(const CommandContext& c) {
  return WithClient(c, [&](kvd::Client& cl) {
    auto r = cl.FlushWal();
    if (!r.has_value()) return Fail(c, r.error());
    c.out << *r << "\n";
    return kExitOk;
  });
}

int CmdSnapshot(const CommandContext& c) {
  return WithClient(c, [&](kvd::Client& cl) {
    auto r = cl.Snapshot();
    if (!r.has_value()) return Fail(c, r.error());
    // The reply carries the LSN only; the file's name follows from it.
    auto cfg = cl.ConfigGet(kSnapshotPathKey);
    if (!cfg.has_value()) return Fail(c, cfg.error().Annotate("snapshot at LSN " + std::to_string(*r)));
    auto dir = ConfigValueText(*cfg, kSnapshotPathKey);
    if (!dir.has_value()) return Fail(c, kvd::Status::Internal(dir.error().message()));
    std::string path = *dir;
    if (!path.empty() && path.back() != '/') path.push_back('/');
    c.out << "lsn=" << *r << " path=" << path << SnapshotFileName(*r) << "\n";
    return kExitOk;
  });
}

int CmdStatus(const CommandContext& c, bool json) {
  return WithClient(c, [&](kvd::Client& cl) {
    auto r = cl.StatusJson();
    if (!r.has_value()) return Fail(c, r.error());
    auto text = json ? CompactJson(*r) : RenderStatusText(*r);
    if (!text.has_value()) return Fail(c, kvd::Status::Internal(text.error().message()));
    c.out << *text << (json ? "\n" : "");
    return kExitOk;
  });
}

int CmdPing(const CommandContext& c) {
  return WithClient(c, [&](kvd::Client& cl) {
    if (kvd::Status s = cl.Ping(); !s.ok()) return Fail(c, s);
    c.out << "PONG\n";
    return kExitOk;
  });
}

int CmdConfigGet(const CommandContext& c, const std::string& name) {
  return WithClient(c, [&](kvd::Client& cl) {
    auto r = cl.ConfigGet(name);
    if (!r.has_value()) return Fail(c, r.error());
    auto text = name.empty() ? RenderConfigText(*r) : ConfigValueText(*r, name);
    if (!text.has_value()) return Fail(c, kvd::Status::Internal(text.error().message()));
    c.out << *text << (name.empty() ? "" : "\n");
    return kExitOk;
  });
}

int CmdConfigSet(const CommandContext& c, const std::string& name, const std::string& value) {
  return WithClient(c, [&](kvd::Client& cl) {
    if (kvd::Status s = cl.ConfigSet(name, value); !s.ok()) {
      const int code = Fail(c, s);
      // The server refused what the user typed: a usage error, not a server failure.
      return s.code() == kvd::Code::kInvalidArgument ? kExitUsage : code;
    }
    c.out << "OK\n";
    return kExitOk;
  });
}

int CmdPromote(const CommandContext& c, bool force, uint64_t epoch) {
  return WithClient(c, [&](kvd::Client& cl) {
    auto r = cl.Promote(force, epoch);
    if (!r.has_value()) return Fail(c, r.error());
    c.out << "epoch=" << *r << "\n";
    return kExitOk;
  });
}

int CmdReplicate(const CommandContext& c, const std::string& host_port) {
  return WithClient(c, [&](kvd::Client& cl) {
    if (kvd::Status s = cl.Replicate(host_port); !s.ok()) return Fail(c, s);
    c.out << "OK\n";
    return kExitOk;
  });
}

}  // namespace kvctl
