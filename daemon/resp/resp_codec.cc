#include "resp/resp_codec.h"

#include <strings.h>

#include <charconv>

#include "resp/resp_docs.h"

namespace kvd::daemon {
namespace {

bool Is(std::string_view arg, std::string_view word) {
  return arg.size() == word.size() && strncasecmp(arg.data(), word.data(), word.size()) == 0;
}

bool ParseInt(std::string_view s, int64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

void Problem(Command* cmd, std::string text) {
  cmd->problem = Status::InvalidArgument(std::move(text));
  cmd->fatal = false;
  cmd->ref.op = Op::kPing;  // answered in order, as a barrier
}

std::string WrongArity(std::string_view name) {
  return "ERR wrong number of arguments for '" + std::string(name) + "' command";
}

// Redis: "unknown command 'x', with args beginning with: 'a' 'b' ".
std::string UnknownCommand(std::span<const std::string_view> args) {
  std::string text = "ERR unknown command '" + std::string(args[0].substr(0, 128)) + "', with args beginning with: ";
  for (size_t i = 1; i < args.size() && text.size() < 256; ++i) {
    text += "'" + std::string(args[i].substr(0, 128)) + "' ";
  }
  return text;
}

bool IsErrorWord(std::string_view text) {
  const size_t space = text.find(' ');
  if (space == std::string_view::npos || space == 0) return false;
  for (char c : text.substr(0, space)) {
    if (c < 'A' || c > 'Z') return false;
  }
  return true;
}

}  // namespace

void WriteRespError(resp::ReplyWriter& w, std::string_view text) {
  if (IsErrorWord(text)) return w.Error(text);
  w.Error("ERR " + std::string(text));
}

RespCodec::RespCodec(RespLimits limits, std::string password, uint64_t client_id)
    : limits_(limits),
      password_(std::move(password)),
      client_id_(client_id),
      parser_(resp::ParserLimits{64 * 1024, limits.max_value_bytes + 64ull * 1024, 1024 * 1024}),
      probe_(resp::ParserLimits{64 * 1024, limits.max_value_bytes + 64ull * 1024, 1024 * 1024}),
      authenticated_(password_.empty()) {}

DecodeResult RespCodec::Decode(std::span<const std::byte> data, uint64_t seq, Command* cmd) {
  DecodeResult r;
  const std::string_view all(reinterpret_cast<const char*>(data.data()), data.size());
  size_t skipped = 0;  // empty commands before this one get no reply (as in Redis)
  for (;;) {
    const std::string_view in = all.substr(skipped);
    const resp::Parsed p = parser_.Parse(in);
    if (p.outcome == resp::ParseOutcome::kNeedMore) {
      // One command must fit in max_command_bytes, or a client could make
      // the input buffer grow without bound.
      if (p.need_bytes > limits_.max_command_bytes || in.size() > limits_.max_command_bytes) {
        r.kind = DecodeResult::kBroken;
        r.error = Status::TooLarge("ERR Protocol error: command larger than " +
                                   std::to_string(limits_.max_command_bytes) + " bytes");
        r.ref.id = seq;
        return r;
      }
      return r;
    }
    if (p.outcome == resp::ParseOutcome::kProtocolError) {
      r.kind = DecodeResult::kBroken;
      r.error = Status::InvalidArgument("ERR " + std::string(p.error));
      r.ref.id = seq;
      return r;
    }
    if (parser_.args().empty()) {
      skipped += p.consumed;
      continue;
    }
    r.consumed = skipped + p.consumed;
    break;
  }
  const auto args = parser_.args();
  cmd->key = {};
  cmd->value = {};
  cmd->batch = {};
  cmd->scan = ScanSpec{};
  cmd->problem = Status::Ok();
  cmd->fatal = false;
  cmd->durable = false;
  cmd->min_lsn = 0;
  cmd->args = args.subspan(1);
  cmd->range = KeyRange{};
  cmd->backup_id = 0;
  cmd->offset = 0;
  cmd->max_bytes = 0;
  cmd->ref.id = seq;
  cmd->ref.op = Op::kPing;
  cmd->ref.tag = protocol_ >= 3 ? RespTag::kResp3 : 0;
  Route(args, cmd);
  if (RespTag::Cmd(cmd->ref.tag) == RespCmd::kQuit && cmd->problem.ok()) {
    // Answered +OK, then the connection closes once every reply is out.
    r.kind = DecodeResult::kClose;
    r.ref = cmd->ref;
    return r;
  }
  r.kind = DecodeResult::kCommand;
  return r;
}

bool RespCodec::HasRequest(std::span<const std::byte> data) const {
  std::string_view in(reinterpret_cast<const char*>(data.data()), data.size());
  for (;;) {
    const resp::Parsed p = probe_.Parse(in);
    if (p.outcome != resp::ParseOutcome::kCommand) return p.outcome == resp::ParseOutcome::kProtocolError;
    if (!probe_.args().empty()) return true;
    in.remove_prefix(p.consumed);  // an empty command is skipped, not a request
  }
}

bool RespCodec::KeyTooLarge(std::string_view key, Command* cmd) {
  Problem(cmd, "ERR key is " + std::to_string(key.size()) + " bytes, kvd's limit is " +
                   std::to_string(limits_.max_key_bytes) + " (storage.max_key_bytes)");
  return false;
}

bool RespCodec::ValueTooLarge(std::string_view value, Command* cmd) {
  Problem(cmd, "ERR value is " + std::to_string(value.size()) + " bytes, kvd's limit is " +
                   std::to_string(limits_.max_value_bytes) + " (storage.max_value_bytes)");
  return false;
}

void RespCodec::Route(std::span<const std::string_view> args, Command* cmd) {
  const RespCommandDef* def = FindRespCommand(args[0]);
  if (def == nullptr) return Problem(cmd, UnknownCommand(args));
  cmd->ref.tag |= static_cast<uint16_t>(def->id);
  const auto argc = static_cast<int64_t>(args.size());
  if ((def->arity > 0 && argc != def->arity) || (def->arity < 0 && argc < -def->arity)) {
    return Problem(cmd, WrongArity(def->name));
  }
  if (!authenticated_ && def->id != RespCmd::kAuth && def->id != RespCmd::kHello && def->id != RespCmd::kQuit) {
    return Problem(cmd, "NOAUTH Authentication required.");
  }
  switch (def->id) {
    case RespCmd::kPing:
    case RespCmd::kQuit:
      if (argc > 2) return Problem(cmd, WrongArity(def->name));
      return;
    case RespCmd::kAuth:
      if (argc > 3) return Problem(cmd, "ERR syntax error");
      return;
    case RespCmd::kHello: {
      size_t i = 1;
      if (argc > 1) {
        int64_t v = 0;
        if (!ParseInt(args[1], &v)) return Problem(cmd, "ERR Protocol version is not an integer or out of range");
        if (v != 2 && v != 3) return Problem(cmd, "NOPROTO unsupported protocol version");
        i = 2;
      }
      for (; i < args.size(); ++i) {
        if (Is(args[i], "auth") && i + 2 < args.size()) {
          i += 2;
        } else if (Is(args[i], "setname") && i + 1 < args.size()) {
          i += 1;
        } else {
          return Problem(cmd, "ERR Syntax error in HELLO option '" + std::string(args[i]) + "'");
        }
      }
      return;
    }
    case RespCmd::kSelect: {
      int64_t db = 0;
      if (!ParseInt(args[1], &db)) return Problem(cmd, "ERR value is not an integer or out of range");
      if (db != 0) return Problem(cmd, "ERR DB index is out of range");
      return;
    }
    case RespCmd::kClient: {
      if ((Is(args[1], "getname") || Is(args[1], "id")) && argc == 2) return;
      if (Is(args[1], "setinfo") && argc == 4) return;
      if (Is(args[1], "setname") && argc == 3) {
        for (char c : args[2]) {
          if (c < '!' || c > '~') {
            return Problem(cmd, "ERR Client names cannot contain spaces, newlines or special characters.");
          }
        }
        return;
      }
      return Problem(cmd, "ERR unknown subcommand or wrong number of arguments for '" + std::string(args[1]) +
                              "'. Try CLIENT HELP.");
    }
    case RespCmd::kCommand:
      if (argc == 1 || Is(args[1], "docs") || Is(args[1], "info") || Is(args[1], "list") ||
          (Is(args[1], "count") && argc == 2)) {
        return;
      }
      return Problem(cmd, "ERR unknown subcommand '" + std::string(args[1]) + "'. Try COMMAND HELP.");
    case RespCmd::kWait: {
      int64_t v = 0;
      if (!ParseInt(args[1], &v) || !ParseInt(args[2], &v) || v < 0) {
        return Problem(cmd, "ERR value is not an integer or out of range");
      }
      return;
    }
    case RespCmd::kEcho:
    case RespCmd::kDbSize:
    case RespCmd::kExists:
    case RespCmd::kMGet:
    case RespCmd::kKeys:
    case RespCmd::kType:
    case RespCmd::kInfo:
    case RespCmd::kLastSave:
      return;
    case RespCmd::kScan: {
      uint64_t cursor = 0;
      auto [end, ec] = std::from_chars(args[1].data(), args[1].data() + args[1].size(), cursor);
      if (ec != std::errc() || end != args[1].data() + args[1].size()) return Problem(cmd, "ERR invalid cursor");
      for (size_t i = 2; i < args.size(); i += 2) {
        if (i + 1 >= args.size()) return Problem(cmd, "ERR syntax error");
        if (Is(args[i], "count")) {
          int64_t n = 0;
          if (!ParseInt(args[i + 1], &n)) return Problem(cmd, "ERR value is not an integer or out of range");
          if (n < 1) return Problem(cmd, "ERR syntax error");
        } else if (!Is(args[i], "match") && !Is(args[i], "type")) {
          return Problem(cmd, "ERR syntax error");
        }
      }
      return;
    }
    case RespCmd::kGet:
      cmd->ref.op = Op::kGet;
      cmd->key = args[1];
      return;
    case RespCmd::kSet:
      return RouteSet(args, cmd);
    case RespCmd::kSetNx:
      if (!CheckKey(args[1], cmd) || !CheckValue(args[2], cmd)) return;
      cmd->ref.op = Op::kBatch;
      return;
    case RespCmd::kGetDel:
    case RespCmd::kDel:
      for (size_t i = 1; i < args.size(); ++i) {
        if (!CheckKey(args[i], cmd)) return;
      }
      cmd->ref.op = Op::kBatch;
      return;
    case RespCmd::kMSet:
    case RespCmd::kMSetNx: {
      if (argc % 2 != 1) return Problem(cmd, WrongArity(def->name));
      batch_.clear();
      for (size_t i = 1; i + 1 < args.size(); i += 2) {
        if (!CheckKey(args[i], cmd) || !CheckValue(args[i + 1], cmd)) return;
        batch_.push_back(BatchOp{OpType::kPut, args[i], args[i + 1]});
      }
      cmd->ref.op = Op::kBatch;
      cmd->batch = batch_;
      return;
    }
    case RespCmd::kConfig:
      if (Is(args[1], "get") && argc >= 3) return;  // the handler answers
      if (Is(args[1], "set") && argc == 4) {
        cmd->ref.op = Op::kConfigSet;
        cmd->key = args[2];
        cmd->value = args[3];
        return;
      }
      if (Is(args[1], "set") && argc > 4) {
        return Problem(cmd, "ERR kvd's CONFIG SET takes one parameter and its value");
      }
      if (Is(args[1], "get") || Is(args[1], "set")) return Problem(cmd, WrongArity("config|" + std::string(args[1])));
      return Problem(cmd, "ERR unknown subcommand '" + std::string(args[1]) + "'. Try CONFIG HELP.");
    case RespCmd::kSave:
    case RespCmd::kBgSave:
      if (argc > 2 || (argc == 2 && !Is(args[1], "schedule"))) return Problem(cmd, "ERR syntax error");
      cmd->ref.op = Op::kSnapshot;
      return;
    case RespCmd::kNone:
      return Problem(cmd, UnknownCommand(args));
  }
}

void RespCodec::RouteSet(std::span<const std::string_view> args, Command* cmd) {
  uint16_t flags = 0;
  for (size_t i = 3; i < args.size(); ++i) {
    const std::string_view o = args[i];
    if (Is(o, "nx") && (flags & RespTag::kXx) == 0) {
      flags |= RespTag::kNx;
    } else if (Is(o, "xx") && (flags & RespTag::kNx) == 0) {
      flags |= RespTag::kXx;
    } else if (Is(o, "get")) {
      flags |= RespTag::kGet;
    } else if (Is(o, "ex") || Is(o, "px") || Is(o, "exat") || Is(o, "pxat") || Is(o, "keepttl")) {
      return Problem(cmd, "ERR kvd has no key expiry: SET " + std::string(o) + " is not supported");
    } else {
      return Problem(cmd, "ERR syntax error");
    }
  }
  if (!CheckKey(args[1], cmd) || !CheckValue(args[2], cmd)) return;
  cmd->ref.tag |= flags;
  if (flags == 0) {
    cmd->ref.op = Op::kPut;
    cmd->key = args[1];
    cmd->value = args[2];
    return;
  }
  cmd->ref.op = Op::kBatch;  // decided by the handler against the current value
}

bool RespCodec::PasswordMatches(std::string_view user, std::string_view pass) const {
  return !password_.empty() && Is(user, "default") && pass == password_;
}

void RespCodec::EncodeReply(const Reply& reply, std::string* out) {
  const RespCmd id = RespTag::Cmd(reply.ref.tag);
  // Every plain SET answers this: no writer, no scan of the text for CR/LF.
  if (reply.ref.op == Op::kPut && id == RespCmd::kSet && reply.code == Code::kOk) {
    out->append("+OK\r\n");
    return;
  }
  resp::ReplyWriter w(out, RespTag::Protocol(reply.ref.tag));
  if (id == RespCmd::kQuit) return w.Simple("OK");
  if (reply.code != Code::kOk && reply.code != Code::kNotFound) return WriteRespError(w, reply.text);
  const RespCommandDef& def = RespCommandOf(id);
  if (def.kind == RespKind::kLocal) return EncodeLocal(id, out);
  switch (reply.ref.op) {
    case Op::kGet:
      if (reply.code == Code::kNotFound) return w.Null();
      return w.Bulk(reply.text);
    case Op::kPut:
    case Op::kConfigSet:
      return w.Simple("OK");
    case Op::kSnapshot:
      return w.Simple(id == RespCmd::kBgSave ? "Background saving started" : "OK");
    case Op::kBatch:
      if (id == RespCmd::kMSet) return w.Simple("OK");
      out->append(reply.text);  // the handler's answer, already in RESP
      return;
    default:
      out->append(reply.text);
      return;
  }
}

void RespCodec::EncodeLocal(RespCmd id, std::string* out) {
  const auto args = parser_.args();  // the command being answered (a barrier: nothing parsed since)
  resp::ReplyWriter w(out, protocol_);
  switch (id) {
    case RespCmd::kPing:
      if (args.size() > 1) return w.Bulk(args[1]);
      return w.Simple("PONG");
    case RespCmd::kEcho: return w.Bulk(args[1]);
    case RespCmd::kSelect: return w.Simple("OK");
    case RespCmd::kAuth: {
      if (password_.empty()) {
        return w.Error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure "
            "your configuration is correct?");
      }
      const std::string_view user = args.size() == 3 ? args[1] : std::string_view("default");
      if (!PasswordMatches(user, args.back())) {
        return w.Error("WRONGPASS invalid username-password pair or user is disabled.");
      }
      authenticated_ = true;
      return w.Simple("OK");
    }
    case RespCmd::kHello: return EncodeHello(w);
    case RespCmd::kClient:
      if (Is(args[1], "setname")) {
        name_ = std::string(args[2]);
        return w.Simple("OK");
      }
      if (Is(args[1], "getname")) return name_.empty() ? w.Null() : w.Bulk(name_);
      if (Is(args[1], "id")) return w.Integer(static_cast<int64_t>(client_id_));
      return w.Simple("OK");  // SETINFO: accepted, not kept
    case RespCmd::kCommand: return WriteCommandReply(w, args.subspan(1));
    default: return w.Error("ERR internal: no local answer for this command");
  }
}

void RespCodec::EncodeHello(resp::ReplyWriter& w) {
  const auto args = parser_.args();
  int proto = protocol_;
  size_t i = 1;
  if (args.size() > 1) {
    proto = args[1] == "3" ? 3 : 2;
    i = 2;
  }
  std::string_view new_name;
  bool has_name = false;
  for (; i < args.size(); ++i) {
    if (Is(args[i], "auth")) {
      // Without a password Redis's default user takes any (nopass).
      if (!password_.empty() && !PasswordMatches(args[i + 1], args[i + 2])) {
        return w.Error("WRONGPASS invalid username-password pair or user is disabled.");
      }
      authenticated_ = true;
      i += 2;
    } else {
      new_name = args[i + 1];
      has_name = true;
      i += 1;
    }
  }
  if (!authenticated_) {
    return w.Error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH "
        "<user> <pass> option can be used to authenticate the client and select the RESP protocol version at "
        "the same time");
  }
  if (has_name) name_ = std::string(new_name);
  protocol_ = proto;
  w.set_protocol(proto);
  w.Map(7);
  w.Bulk("server");
  w.Bulk("redis");
  w.Bulk("version");
  w.Bulk("7.0.0");
  w.Bulk("proto");
  w.Integer(proto);
  w.Bulk("id");
  w.Integer(static_cast<int64_t>(client_id_));
  w.Bulk("mode");
  w.Bulk("standalone");
  w.Bulk("role");
  w.Bulk("master");
  w.Bulk("modules");
  w.Array(0);
}

void RespProtocol::EncodeRefusal(Code /*code*/, std::string_view message, std::string* out) const {
  resp::ReplyWriter w(out, 2);
  WriteRespError(w, message);
}

}  // namespace kvd::daemon
