#include "resp/resp_handler.h"

#include <strings.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "kvd/resp.h"
#include "resp/resp_codec.h"
#include "resp/resp_info.h"

namespace kvd::daemon {
namespace {

bool Is(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool IsDecided(const Command& cmd) {
  const RespCmd id = RespTag::Cmd(cmd.ref.tag);
  if (id == RespCmd::kSet) return cmd.ref.op == Op::kBatch;  // with NX, XX or GET
  return RespCommandOf(id).kind == RespKind::kDecided;
}

// RESP's own reads of the data, which the read barrier holds and the
// primary gate guards like GET; not WAIT (it waits for replicas itself),
// INFO, CONFIG or LASTSAVE (they show no key).
bool ShowsData(RespCmd id) {
  switch (id) {
    case RespCmd::kExists:
    case RespCmd::kMGet:
    case RespCmd::kDbSize:
    case RespCmd::kScan:
    case RespCmd::kKeys:
    case RespCmd::kType:
      return true;
    default:
      return false;
  }
}

// Most keys one SCAN call examines, whatever COUNT asks.
constexpr size_t kMaxScanCount = 100'000;

}  // namespace

Status RespHandler::SubmitNoting(Session& s, uint64_t seq, const Command& cmd) {
  Status st = dispatcher_->Submit(s, seq, cmd);
  const Op op = cmd.ref.op;
  if (cmd.problem.ok() && (op == Op::kPut || op == Op::kDel || op == Op::kBatch)) {
    last_write_[s.id()] = dispatcher_->engine()->last_lsn();
  }
  return st;
}

void RespHandler::SessionClosed(uint64_t session) {
  last_write_.erase(session);
  if (waits_) waits_->DropSession(session);
  dispatcher_->SessionClosed(session);
}

RequestHandler::Evaluated RespHandler::EvaluateWait(Session& s, const Command& cmd, Reply* reply) {
  int64_t want = 0, timeout_ms = 0;
  std::from_chars(cmd.args[0].data(), cmd.args[0].data() + cmd.args[0].size(), want);  // checked by the codec
  std::from_chars(cmd.args[1].data(), cmd.args[1].data() + cmd.args[1].size(), timeout_ms);
  const int protocol = RespTag::Protocol(cmd.ref.tag);
  scratch_.clear();
  resp::ReplyWriter w(&scratch_, protocol);
  reply->ref = cmd.ref;
  reply->code = Code::kOk;
  reply->durable_lsn = dispatcher_->engine()->durable_lsn();
  auto it = last_write_.find(s.id());
  const Lsn lsn = it == last_write_.end() ? 0 : it->second;
  ReplicaAcks* acks = waits_ ? waits_->acks() : nullptr;
  if (acks != nullptr && acks->IsReplica()) {
    w.Error("ERR WAIT cannot be used with replica instances");
  } else {
    const uint32_t have = acks != nullptr ? acks->CountDurable(lsn) : 0;
    if (acks != nullptr && static_cast<int64_t>(have) < want) {
      const uint64_t seq = s.replies().Push(cmd.ref);
      waits_->Add(s.id(), seq, lsn, static_cast<uint32_t>(std::min<int64_t>(want, UINT32_MAX)),
                  std::chrono::milliseconds(timeout_ms), protocol);
      return Evaluated::kQueued;
    }
    w.Integer(have);
  }
  reply->text = scratch_;
  return Evaluated::kReplied;
}

bool RespHandler::ReadyToSubmit(Session& s, const Command& cmd) {
  return !cmd.problem.ok() || !IsDecided(cmd) || dispatcher_->PendingValuesReady(s);
}

Status RespHandler::Submit(Session& s, uint64_t seq, const Command& cmd) {
  if (!cmd.problem.ok() || !IsDecided(cmd)) return SubmitNoting(s, seq, cmd);
  Engine* engine = dispatcher_->engine();
  const PendingWrites& pending = dispatcher_->pending_values();
  auto lookup = [&](std::string_view key, bool* from_pending) -> std::optional<std::string_view> {
    if (const PendingWrites::Entry* e = pending.Find(key)) {
      *from_pending = true;
      if (!e->present) return std::nullopt;
      return std::string_view(e->value);
    }
    return engine->state().Get(key);
  };
  DecideWrite(RespTag::Cmd(cmd.ref.tag), cmd.ref.tag, cmd.args, lookup, &decision_);
  // The answer waits in the slot until the write (or FLUSH) completes; an
  // error from either replaces it.
  s.replies().SetPayload(seq, decision_.reply);
  if (!decision_.ops.empty()) {
    Command write = cmd;
    write.ref.op = Op::kBatch;
    write.batch = decision_.ops;
    return SubmitNoting(s, seq, write);
  }
  // Nothing to write: the answer is a read of the data, under GET's rule (a
  // node that may not answer as the primary now refuses, with the reason).
  if (Status gate = host_->PrimaryGate(/*write=*/false); !gate.ok()) {
    s.replies().Complete(seq, gate.code(), engine->durable_lsn(), 0, gate.message());
    return Status::Ok();
  }
  if (decision_.read_pending) {
    Command flush = cmd;
    flush.ref.op = Op::kFlush;
    return dispatcher_->Submit(s, seq, flush);
  }
  s.replies().Complete(seq, Code::kOk, engine->durable_lsn(), 0);
  return Status::Ok();
}

Result<RequestHandler::Evaluated> RespHandler::Evaluate(Session& s, const Command& cmd, Reply* reply) {
  const RespCmd id = RespTag::Cmd(cmd.ref.tag);
  if (cmd.problem.ok() && id == RespCmd::kWait) return EvaluateWait(s, cmd, reply);
  if (!cmd.problem.ok() || cmd.ref.op != Op::kPing || RespCommandOf(id).kind != RespKind::kRead) {
    return dispatcher_->Evaluate(s, cmd, reply);
  }
  reply->ref = cmd.ref;
  reply->durable_lsn = dispatcher_->engine()->durable_lsn();
  if (ShowsData(id)) {
    // The dispatcher's GET rule: a node that may not answer as the primary
    // now (a cluster node past its lease) refuses with the reason.
    if (Status gate = host_->PrimaryGate(/*write=*/false); !gate.ok()) {
      reply->code = gate.code();
      reply->text = scratch_ = gate.message();
      return Evaluated::kReplied;
    }
  }
  scratch_.clear();
  AnswerRead(cmd, &scratch_);
  reply->code = Code::kOk;
  reply->text = scratch_;
  return Evaluated::kReplied;
}

bool RespHandler::HoldReply(Session& s, const Reply& reply) {
  if (reply.ref.op != Op::kPing) return dispatcher_->HoldReply(s, reply);  // GET, SCAN ... via the dispatcher
  return ShowsData(RespTag::Cmd(reply.ref.tag)) && dispatcher_->HoldRead(s, reply);
}

void RespHandler::AnswerRead(const Command& cmd, std::string* out) {
  const State& state = dispatcher_->engine()->state();
  resp::ReplyWriter w(out, RespTag::Protocol(cmd.ref.tag));
  const auto args = cmd.args;
  switch (RespTag::Cmd(cmd.ref.tag)) {
    case RespCmd::kExists: {
      int64_t n = 0;
      for (std::string_view k : args) n += state.Get(k).has_value() ? 1 : 0;
      return w.Integer(n);
    }
    case RespCmd::kMGet:
      w.Array(args.size());
      for (std::string_view k : args) {
        auto v = state.Get(k);
        if (v.has_value()) {
          w.Bulk(*v);
        } else {
          w.Null();
        }
      }
      return;
    case RespCmd::kType: return w.Simple(state.Get(args[0]).has_value() ? "string" : "none");
    case RespCmd::kDbSize: return w.Integer(static_cast<int64_t>(state.size()));
    case RespCmd::kKeys: {
      ScanKeys(state, {}, args[0], SIZE_MAX, &page_);
      w.Array(page_.keys.size());
      for (std::string_view k : page_.keys) w.Bulk(k);
      return;
    }
    case RespCmd::kScan: return AnswerScan(cmd, out);
    case RespCmd::kInfo: return w.Verbatim(BuildInfo(host_->StatusJson(), args));
    case RespCmd::kLastSave: return w.Integer(LastSaveTime(host_->StatusJson()));
    case RespCmd::kConfig: return AnswerConfigGet(cmd, out);
    default: return w.Error("ERR internal: not a read");
  }
}

void RespHandler::AnswerScan(const Command& cmd, std::string* out) {
  resp::ReplyWriter w(out, RespTag::Protocol(cmd.ref.tag));
  const auto args = cmd.args;
  uint64_t cursor = 0;
  std::from_chars(args[0].data(), args[0].data() + args[0].size(), cursor);  // checked by the codec
  std::string_view pattern = "*";
  size_t count = 10;
  bool other_type = false;
  for (size_t i = 1; i + 1 < args.size(); i += 2) {
    if (Is(args[i], "match")) pattern = args[i + 1];
    if (Is(args[i], "count")) std::from_chars(args[i + 1].data(), args[i + 1].data() + args[i + 1].size(), count);
    if (Is(args[i], "type")) other_type = !Is(args[i + 1], "string");  // every kvd value is a string
  }
  std::string_view from;
  if (cursor != 0) {
    auto resume = cursors_.Find(cursor);
    if (!resume.has_value()) return w.Error("ERR invalid cursor");
    from = *resume;
  }
  std::string from_copy(from);  // Save below may evict the entry `from` views
  ScanKeys(dispatcher_->engine()->state(), from_copy, pattern, std::min(count, kMaxScanCount), &page_);
  const uint64_t next = page_.next.has_value() && !other_type ? cursors_.Save(std::move(*page_.next)) : 0;
  w.Array(2);
  w.Bulk(std::to_string(next));
  if (other_type) return w.Array(0);
  w.Array(page_.keys.size());
  for (std::string_view k : page_.keys) w.Bulk(k);
}

void RespHandler::AnswerConfigGet(const Command& cmd, std::string* out) {
  resp::ReplyWriter w(out, RespTag::Protocol(cmd.ref.tag));
  auto all = host_->ConfigGetJson("");
  if (!all.has_value()) return WriteRespError(w, all.error().message());
  const nlohmann::json j = nlohmann::json::parse(*all, nullptr, false);
  if (!j.is_object()) return w.Error("ERR internal: unreadable configuration");
  std::vector<std::pair<std::string, std::string>> hits;
  for (const auto& [name, value] : j.items()) {
    bool match = false;
    for (size_t i = 1; i < cmd.args.size(); ++i) match = match || GlobMatch(cmd.args[i], name);
    if (match) hits.emplace_back(name, value.is_string() ? value.get<std::string>() : value.dump());
  }
  w.Map(hits.size());
  for (const auto& [name, value] : hits) {
    w.Bulk(name);
    w.Bulk(value);
  }
}

}  // namespace kvd::daemon
