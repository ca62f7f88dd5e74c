#include "repl.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <istream>
#include <ostream>

#include "connect.h"
#include "exit_codes.h"
#include "format.h"
#include "keyspace.h"
#include "status_print.h"
#include "tokenizer.h"

namespace kvctl {
namespace {

struct VerbInfo {
  const char* name;
  size_t min_args;
  size_t max_args;
  const char* usage;
  const char* help;
};

constexpr VerbInfo kVerbs[] = {
    {"PUT", 2, 2, "PUT key value", "store value under key"},
    {"GET", 1, 1, "GET key", "the value, or (nil)"},
    {"DEL", 1, 1, "DEL key", "delete key: OK, or (nil) if it was absent"},
    {"SIZE", 0, 0, "SIZE", "number of keys"},
    {"COUNT", 0, 1, "COUNT [prefix]", "number of keys with prefix"},
    {"SCAN", 0, 2, "SCAN [prefix [limit]]", "key value pairs in key order (limit default 100)"},
    {"FLUSH", 0, 0, "FLUSH", "fdatasync now: OK lsn=<durable LSN>"},
    {"SNAP", 0, 0, "SNAP", "take a snapshot: OK lsn=<snapshot LSN>"},
    {"SNAPSHOT", 0, 0, "SNAPSHOT", "same as SNAP"},
    {"SETBATCH", 1, 1, "SETBATCH n",
     "durability.batch_size = n (fdatasync every n writes; only matters in batch mode; 1 = sync every write)"},
    {"BENCH", 1, 1, "BENCH n", "n sequential PUTs on this connection: ops/s"},
    {"PING", 0, 0, "PING", "PONG"},
    {"STATUS", 0, 0, "STATUS", "server status as one line of JSON"},
    {"CONFIG", 1, 3, "CONFIG GET [name] | CONFIG SET name value", "read or change runtime settings"},
    {"HELP", 0, 0, "HELP", "this text"},
    {"EXIT", 0, 0, "EXIT", "leave (also QUIT)"},
    {"QUIT", 0, 0, "QUIT", "leave"},
};

const VerbInfo* FindVerb(const std::string& verb) {
  for (const auto& v : kVerbs) {
    if (verb == v.name) return &v;
  }
  return nullptr;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string Err(const kvd::Status& s) {
  std::string msg = s.message().empty() ? std::string(kvd::CodeName(s.code())) : s.message();
  // A reply is one line, whatever the server put in its message.
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  std::replace(msg.begin(), msg.end(), '\r', ' ');
  return "ERR " + msg;
}

kvd::Status StatusOf(const kvd::Status& s) { return s; }
template <typename T>
kvd::Status StatusOf(const kvd::Result<T>& r) {
  return r.error();
}

}  // namespace

std::string ReplHelp(bool multi_line) {
  if (!multi_line) {
    std::string out = "OK commands:";
    for (const auto& v : kVerbs) out += std::string(" ") + v.name;
    return out + " (case-insensitive; quote tokens with \"...\" using \\\" \\\\ \\n \\t \\r \\xNN)";
  }
  std::string out = "Commands (case-insensitive):\n";
  for (const auto& v : kVerbs) {
    char line[256];
    std::snprintf(line, sizeof(line), "  %-42s %s\n", v.usage, v.help);
    out += line;
  }
  out +=
      "Tokens are separated by spaces; \"double quotes\" allow spaces and the escapes\n"
      "\\\" \\\\ \\n \\t \\r \\xNN, so any bytes can be typed. Values that are not plain\n"
      "printable words are shown the same way.";
  return out;
}

ReplSession::ReplSession(std::string socket_path, std::chrono::milliseconds timeout, bool interactive)
    : socket_path_(std::move(socket_path)), timeout_(timeout), interactive_(interactive) {}

void ReplSession::Note(const kvd::Status& s) {
  if (s.ok() || s.IsNotFound()) return;
  command_exit_ = std::max(command_exit_, s.code() == kvd::Code::kInvalidArgument ? kExitUsage : kExitServer);
}

ReplSession::~ReplSession() = default;

kvd::Status ReplSession::EnsureConnected() {
  if (client_) return kvd::Status::Ok();
  KVD_ASSIGN_OR_RETURN(client_, ConnectTo(socket_path_, timeout_));
  return kvd::Status::Ok();
}

template <typename Fn>
auto ReplSession::WithClient(bool read_only, Fn&& op) -> decltype(op(std::declval<kvd::Client&>())) {
  for (int attempt = 0;; ++attempt) {
    const bool fresh = client_ == nullptr;
    if (kvd::Status s = EnsureConnected(); !s.ok()) {
      Note(s);
      return ExplainTimeout(s);
    }
    auto result = op(*client_);
    if (StatusOf(result).code() != kvd::Code::kIOError) {
      Note(StatusOf(result));
      return result;
    }
    client_.reset();
    if (!read_only || fresh || attempt > 0) {
      Note(StatusOf(result));
      return ExplainTimeout(StatusOf(result));
    }
  }
}

ReplSession::Outcome ReplSession::Execute(std::string_view line) {
  Outcome outcome;
  auto tokens = Tokenize(line);
  if (!tokens.has_value()) {
    outcome.reply = Err(tokens.error());
    outcome.exit_code = kExitUsage;
    return outcome;
  }
  if (tokens->empty() || (*tokens)[0].starts_with('#')) return outcome;
  const std::string verb = Upper((*tokens)[0]);
  const Args args(tokens->data() + 1, tokens->size() - 1);
  command_exit_ = kExitOk;
  outcome.reply = Dispatch(verb, args, &outcome.exit);
  // An ERR that no request explains was made here: the command was malformed.
  if (outcome.reply->starts_with("ERR") && command_exit_ == kExitOk) command_exit_ = kExitUsage;
  outcome.exit_code = command_exit_;
  return outcome;
}

std::string ReplSession::Dispatch(const std::string& verb, Args args, bool* exit) {
  const VerbInfo* info = FindVerb(verb);
  if (info == nullptr) return "ERR unknown command '" + EscapeForLine(verb) + "' (try HELP)";
  if (args.size() < info->min_args || args.size() > info->max_args) {
    return "ERR wrong number of arguments (usage: " + std::string(info->usage) + ")";
  }

  if (verb == "EXIT" || verb == "QUIT") {
    *exit = true;
    return "OK";
  }
  if (verb == "HELP") return ReplHelp(interactive_);
  if (verb == "PUT") {
    auto r = WithClient(false, [&](kvd::Client& c) { return c.Put(args[0], args[1]); });
    return r.has_value() ? "OK" : Err(r.error());
  }
  if (verb == "GET") {
    auto r = WithClient(true, [&](kvd::Client& c) { return c.Get(args[0]); });
    if (!r.has_value()) return Err(r.error());
    return r->has_value() ? FormatToken(**r) : "(nil)";
  }
  if (verb == "DEL") {
    auto r = WithClient(false, [&](kvd::Client& c) { return c.Del(args[0]); });
    if (!r.has_value()) return r.error().IsNotFound() ? "(nil)" : Err(r.error());
    return r->existed ? "OK" : "(nil)";
  }
  if (verb == "SIZE" || verb == "COUNT") {
    const std::string_view prefix = args.empty() ? std::string_view() : std::string_view(args[0]);
    auto r = WithClient(true, [&](kvd::Client& c) { return c.Count(prefix); });
    return r.has_value() ? std::to_string(*r) : Err(r.error());
  }
  if (verb == "SCAN") {
    uint64_t limit = 100;
    if (args.size() == 2) {
      auto n = ParseU64(args[1]);
      if (!n || *n == 0) return "ERR limit must be a positive integer";
      limit = *n;
    }
    kvd::proto::ScanArgs scan;
    if (!args.empty()) scan.a = args[0];
    std::string line;
    std::string after;
    uint64_t got = 0;
    while (got < limit) {
      scan.limit = static_cast<uint32_t>(std::min<uint64_t>(limit - got, kvd::proto::kMaxScanLimit));
      scan.after = after;
      auto r = WithClient(true, [&](kvd::Client& c) { return c.Scan(scan); });
      if (!r.has_value()) return Err(r.error());
      for (const auto& [k, v] : r->items) {
        if (got == limit) break;
        if (!line.empty()) line.push_back(' ');
        line += FormatToken(k) + " " + FormatToken(v);
        ++got;
      }
      if (!r->more || r->items.empty()) break;
      after = r->items.back().first;
    }
    return line.empty() ? "(empty)" : line;
  }
  if (verb == "FLUSH") {
    auto r = WithClient(false, [&](kvd::Client& c) { return c.FlushWal(); });
    return r.has_value() ? "OK lsn=" + std::to_string(*r) : Err(r.error());
  }
  if (verb == "SNAP" || verb == "SNAPSHOT") {
    auto r = WithClient(false, [&](kvd::Client& c) { return c.Snapshot(); });
    return r.has_value() ? "OK lsn=" + std::to_string(*r) : Err(r.error());
  }
  if (verb == "SETBATCH") {
    auto n = ParseU64(args[0]);
    if (!n || *n == 0) return "ERR SETBATCH needs a positive integer";
    kvd::Status s = WithClient(false, [&](kvd::Client& c) { return c.ConfigSet("durability.batch_size", args[0]); });
    return s.ok() ? "OK" : Err(s);
  }
  if (verb == "BENCH") {
    auto n = ParseU64(args[0]);
    if (!n || *n == 0) return "ERR BENCH needs a positive integer";
    return Bench(*n);
  }
  if (verb == "PING") {
    kvd::Status s = WithClient(true, [&](kvd::Client& c) { return c.Ping(); });
    return s.ok() ? "PONG" : Err(s);
  }
  if (verb == "STATUS") {
    auto r = WithClient(true, [&](kvd::Client& c) { return c.StatusJson(); });
    if (!r.has_value()) return Err(r.error());
    auto compact = CompactJson(*r);
    return compact.has_value() ? *compact : Err(compact.error());
  }
  if (verb == "CONFIG") {
    const std::string sub = Upper(args[0]);
    if (sub == "GET" && args.size() <= 2) {
      const std::string name = args.size() == 2 ? args[1] : std::string();
      auto r = WithClient(true, [&](kvd::Client& c) { return c.ConfigGet(name); });
      if (!r.has_value()) return Err(r.error());
      auto text = name.empty() ? CompactJson(*r) : ConfigValueText(*r, name);
      return text.has_value() ? *text : Err(text.error());
    }
    if (sub == "SET" && args.size() == 3) {
      kvd::Status s = WithClient(false, [&](kvd::Client& c) { return c.ConfigSet(args[1], args[2]); });
      return s.ok() ? "OK" : Err(s);
    }
    return "ERR usage: " + std::string(info->usage);
  }
  return "ERR unhandled command " + verb;  // kVerbs and this function disagree
}

// The original engine's BENCH: n PUTs, one at a time, each waiting for its
// reply, so the figure is the per-write cost in the current durability mode.
std::string ReplSession::Bench(uint64_t n) {
  if (kvd::Status s = EnsureConnected(); !s.ok()) {
    Note(s);
    return Err(ExplainTimeout(s));
  }
  const std::string value = BenchValue(100);
  const BenchKeys keys;  // under the bench prefix, like `kvctl bench` (kept: BENCH measures only)
  std::string key(keys.size(), '\0');
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    keys.Format(i % kMaxKeySpace, key.data());
    auto r = client_->Put(key, value);
    if (!r.has_value()) {
      if (r.error().code() == kvd::Code::kIOError) client_.reset();
      Note(r.error());
      return Err(ExplainTimeout(r.error()).Annotate("after " + std::to_string(i) + " puts"));
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char buf[128];
  std::snprintf(buf, sizeof(buf), "OK %" PRIu64 " puts in %.3f s: %.0f ops/s", n, secs,
                secs > 0 ? static_cast<double>(n) / secs : 0.0);
  return buf;
}

int RunRepl(const std::string& socket_path, std::chrono::milliseconds timeout, std::istream& in, std::ostream& out,
            bool interactive) {
  ReplSession session(socket_path, timeout, interactive);
  int exit_code = kExitOk;
  if (interactive) {
    if (kvd::Status s = session.EnsureConnected(); !s.ok()) {
      out << "kvctl " << KVD_VERSION << ": not connected: " << s.message() << "\n";
    } else {
      out << "kvctl " << KVD_VERSION << " connected to " << socket_path << "; HELP for commands, EXIT to leave\n";
    }
  }
  std::string line;
  while (true) {
    if (interactive) out << "kvd> " << std::flush;
    if (!std::getline(in, line)) break;
    const auto outcome = session.Execute(line);
    if (outcome.reply) out << *outcome.reply << '\n' << std::flush;
    exit_code = std::max(exit_code, outcome.exit_code);
    if (outcome.exit) break;
  }
  if (interactive && !in) out << '\n';
  return interactive ? kExitOk : exit_code;
}

}  // namespace kvctl
