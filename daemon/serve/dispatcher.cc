#include "serve/dispatcher.h"

#include "kvd/env.h"
#include "serve/read_ops.h"

namespace kvd::daemon {
namespace {

using proto::Opcode;

proto::ReplyHeader HeaderFor(const proto::Request& req, Code status, Lsn durable, Lsn lsn = 0) {
  proto::ReplyHeader h;
  h.opcode = req.header.opcode;
  h.status = status;
  h.request_id = req.header.request_id;
  h.durable_lsn = durable;
  h.lsn = lsn;
  return h;
}

// A request whose payload does not decode is a protocol error (the
// connection is closed), except a key or value over its limit: that is the
// client's data, not a broken frame, so only that request fails.
bool IsPayloadFatal(const Status& st) { return st.code() != Code::kTooLarge; }

}  // namespace

void Dispatcher::CountOp(Opcode op) { ++counters_->ops[static_cast<size_t>(op) % ServerCounters::kOpcodeSlots]; }

void Dispatcher::CountReply(Code code) {
  if (code != Code::kOk && code != Code::kNotFound) ++counters_->errors;
}

Status Dispatcher::Submit(Session& s, uint64_t seq, const proto::Request& req) {
  const Opcode op = req.header.opcode;
  CountOp(op);
  if (shutting_down_) {
    s.replies().Complete(seq, Code::kShuttingDown, engine_->durable_lsn(), 0, "kvd is shutting down");
    CountReply(Code::kShuttingDown);
    return Status::Ok();
  }
  if (op == Opcode::kFlush) {
    const uint64_t token = next_flush_token_++;
    flushes_.push_back({token, s.id(), seq});
    engine_->RequestFlush(token);
    return Status::Ok();
  }
  return SubmitWrite(s, seq, req);
}

Status Dispatcher::SubmitWrite(Session& s, uint64_t seq, const proto::Request& req) {
  const Opcode op = req.header.opcode;
  const bool durable = (req.header.flags & proto::kFlagDurable) != 0;
  auto submit = [&]() -> Result<WriteTicket> {
    switch (op) {
      case Opcode::kPut: {
        auto a = proto::DecodePut(req.payload, limits_.max_key_bytes, limits_.max_value_bytes);
        if (!a.has_value()) return a.error();
        s.NoteWriteKey(a->key);
        return engine_->Put(a->key, a->value, durable);
      }
      case Opcode::kDel: {
        auto k = proto::DecodeKey(req.payload, limits_.max_key_bytes);
        if (!k.has_value()) return k.error();
        s.NoteWriteKey(*k);
        return engine_->Del(*k, durable);
      }
      default: {
        Status st = proto::DecodeBatch(req.payload, limits_.max_key_bytes, limits_.max_value_bytes,
                                       &batch_ops_);
        if (!st.ok()) return st;
        if (batch_ops_.empty()) return Status::InvalidArgument("BATCH with no operations");
        for (const BatchOp& o : batch_ops_) s.NoteWriteKey(o.key);
        return engine_->Batch(batch_ops_, durable);
      }
    }
  };
  Result<WriteTicket> ticket = submit();
  batch_ops_.clear();  // its views point into the input buffer
  if (!ticket.has_value()) {
    Status st = ticket.error();
    const bool engine_error = st.code() == Code::kWritesRefused || st.code() == Code::kNoSpace ||
                              st.code() == Code::kIOError || st.code() == Code::kShuttingDown;
    if (!engine_error && IsPayloadFatal(st)) return st;
    s.replies().Complete(seq, st.code(), engine_->durable_lsn(), 0, st.message());
    CountReply(st.code());
    if (engine_error) host_->OnWriteError(st);
    return Status::Ok();
  }
  if (ticket->done) {
    const Code code = (op == Opcode::kDel && !ticket->existed) ? Code::kNotFound : Code::kOk;
    s.replies().Complete(seq, code, engine_->durable_lsn(), ticket->lsn);
    return Status::Ok();
  }
  writes_.push_back({s.id(), seq, ticket->lsn, op});
  return Status::Ok();
}

Status Dispatcher::Evaluate(Session& s, const proto::Request& req, std::string* out) {
  const Opcode op = req.header.opcode;
  CountOp(op);
  const Lsn durable = engine_->durable_lsn();
  auto reply = [&](Code code, std::string_view payload = {}) {
    CountReply(code);
    if (payload.empty()) {
      proto::EncodeReply(out, HeaderFor(req, code, durable));
    } else {
      proto::EncodeReply(out, HeaderFor(req, code, durable), {payload});
    }
  };
  switch (op) {
    case Opcode::kPing:
      reply(Code::kOk);
      return Status::Ok();
    case Opcode::kGet: {
      auto key = proto::DecodeKey(req.payload, limits_.max_key_bytes);
      if (!key.has_value()) {
        if (IsPayloadFatal(key.error())) return key.error();
        reply(key.error().code(), key.error().message());
        return Status::Ok();
      }
      auto v = engine_->state().Get(*key);
      if (!v.has_value()) {
        reply(Code::kNotFound);
      } else {
        // An empty value is a valid value: encode without the helper's
        // empty-payload shortcut (which is the same bytes anyway).
        proto::EncodeReply(out, HeaderFor(req, Code::kOk, durable), {*v});
      }
      return Status::Ok();
    }
    case Opcode::kScan: {
      auto args = proto::DecodeScan(req.payload);
      if (!args.has_value()) return args.error();
      ScanState(engine_->state(), *args, limits_.max_scan_reply_bytes, &scratch_);
      reply(Code::kOk, scratch_);
      return Status::Ok();
    }
    case Opcode::kCount: {
      const uint64_t n = engine_->state().CountPrefix(AsStringView(req.payload));
      reply(Code::kOk, proto::EncodeU64(n));
      return Status::Ok();
    }
    case Opcode::kStatus:
      scratch_ = host_->StatusJson();
      reply(Code::kOk, scratch_);
      return Status::Ok();
    case Opcode::kConfigGet: {
      auto json = host_->ConfigGetJson(AsStringView(req.payload));
      if (!json.has_value()) {
        reply(json.error().code(), json.error().message());
      } else {
        reply(Code::kOk, *json);
      }
      return Status::Ok();
    }
    case Opcode::kConfigSet: {
      auto args = proto::DecodeConfigSet(req.payload);
      if (!args.has_value()) return args.error();
      Status st = host_->ConfigSet(args->name, args->value);
      reply(st.code(), st.message());
      return Status::Ok();
    }
    case Opcode::kSnapshot: {
      if (shutting_down_) {
        reply(Code::kShuttingDown, "kvd is shutting down");
        return Status::Ok();
      }
      const uint64_t seq = s.replies().Push(req.header.request_id, op);
      snapshot_waiters_.push_back({s.id(), seq, engine_->applied_lsn(), op});
      host_->RequestSnapshot();
      return Status::Ok();
    }
    default:
      // Writes and FLUSH never get here (Session submits them).
      return Status::Internal("opcode routed to Evaluate: " + std::string(proto::OpcodeName(op)));
  }
}

bool Dispatcher::EvaluateAhead(Session& s, const proto::Request& req) {
  auto key = proto::DecodeKey(req.payload, limits_.max_key_bytes);
  if (!key.has_value() || s.MayHavePendingWrite(*key)) return false;  // a bad key errs in order
  CountOp(Opcode::kGet);
  const uint64_t seq = s.replies().Push(req.header.request_id, req.header.opcode);
  auto v = engine_->state().Get(*key);
  const Code code = v.has_value() ? Code::kOk : Code::kNotFound;
  CountReply(code);
  s.replies().Complete(seq, code, engine_->durable_lsn(), 0, v.value_or(std::string_view{}));
  return true;
}

void Dispatcher::Complete(uint64_t session, uint64_t seq, Code code, Lsn lsn,
                          std::string_view message) {
  CountReply(code);
  Session* s = host_->FindSession(session);
  if (s == nullptr) return;  // the client left; its reply is dropped
  if (s->replies().Complete(seq, code, engine_->durable_lsn(), lsn, message)) host_->SessionReady(s);
}

void Dispatcher::OnWriteDone(Lsn lsn, const Status& status, bool existed) {
  auto it = writes_.begin();
  if (it == writes_.end() || it->lsn != lsn) {
    // Not at the front: the engine reports in LSN order, so this is only a
    // write that completed at submission; look it up anyway to be safe.
    while (it != writes_.end() && it->lsn != lsn) ++it;
    if (it == writes_.end()) return;
  }
  const Waiter w = *it;
  writes_.erase(it);
  if (!status.ok()) {
    Complete(w.session, w.seq, status.code(), lsn, status.message());
    host_->OnWriteError(status);
    return;
  }
  const Code code = (w.op == Opcode::kDel && !existed) ? Code::kNotFound : Code::kOk;
  Complete(w.session, w.seq, code, lsn);
}

void Dispatcher::OnFlushDone(uint64_t token, const Status& status, Lsn durable_lsn) {
  for (auto it = flushes_.begin(); it != flushes_.end(); ++it) {
    if (it->token != token) continue;
    const FlushWaiter w = *it;
    flushes_.erase(it);
    if (status.ok()) {
      Complete(w.session, w.seq, Code::kOk, durable_lsn);
    } else {
      Complete(w.session, w.seq, status.code(), 0, status.message());
    }
    return;
  }
}

void Dispatcher::OnSnapshotDone(const Status& status, Lsn lsn) {
  std::vector<Waiter> waiting;
  waiting.swap(snapshot_waiters_);
  for (const Waiter& w : waiting) {
    if (!status.ok()) {
      Complete(w.session, w.seq, status.code(), 0, status.message());
    } else if (lsn >= w.lsn) {
      Complete(w.session, w.seq, Code::kOk, lsn);
    } else {
      snapshot_waiters_.push_back(w);  // asked for data newer than this snapshot
    }
  }
  if (!snapshot_waiters_.empty() && !shutting_down_) host_->RequestSnapshot();
}

void Dispatcher::BeginShutdown() {
  shutting_down_ = true;
  std::deque<Waiter> writes;
  writes.swap(writes_);
  for (const Waiter& w : writes) Complete(w.session, w.seq, Code::kShuttingDown, w.lsn, "kvd is shutting down");
  std::deque<FlushWaiter> flushes;
  flushes.swap(flushes_);
  for (const FlushWaiter& w : flushes) Complete(w.session, w.seq, Code::kShuttingDown, 0, "kvd is shutting down");
  std::vector<Waiter> snaps;
  snaps.swap(snapshot_waiters_);
  for (const Waiter& w : snaps) Complete(w.session, w.seq, Code::kShuttingDown, 0, "kvd is shutting down");
}

}  // namespace kvd::daemon
