#include "serve/dispatcher.h"

#include <algorithm>

#include "kvd/env.h"
#include "kvd/snapshot.h"

namespace kvd::daemon {

void Dispatcher::CountOp(Op op) { ++counters_->ops[static_cast<size_t>(op) % kOpCount]; }

void Dispatcher::CountReply(Code code) {
  if (code != Code::kOk && code != Code::kNotFound) ++counters_->errors;
}

Status Dispatcher::Submit(Session& s, uint64_t seq, const Command& cmd) {
  const Op op = cmd.ref.op;
  CountOp(op);
  if (shutting_down_) {
    s.replies().Complete(seq, Code::kShuttingDown, engine_->durable_lsn(), 0, "kvd is shutting down");
    CountReply(Code::kShuttingDown);
    return Status::Ok();
  }
  if (op == Op::kFlush) {
    const uint64_t token = next_flush_token_++;
    flushes_.push_back({token, s.id(), seq});
    engine_->RequestFlush(token);
    return Status::Ok();
  }
  return SubmitWrite(s, seq, cmd);
}

Status Dispatcher::SubmitWrite(Session& s, uint64_t seq, const Command& cmd) {
  const Op op = cmd.ref.op;
  auto submit = [&]() -> Result<WriteTicket> {
    if (!cmd.problem.ok()) return cmd.problem;
    switch (op) {
      case Op::kPut:
        s.NoteWriteKey(cmd.key);
        return engine_->Put(cmd.key, cmd.value, cmd.durable);
      case Op::kDel:
        s.NoteWriteKey(cmd.key);
        return engine_->Del(cmd.key, cmd.durable);
      case Op::kDelRange:
        s.NoteWriteRange(cmd.range);
        return engine_->DeleteRange(cmd.range, cmd.durable);
      default:
        if (cmd.batch.empty()) return Status::InvalidArgument("BATCH with no operations");
        for (const BatchOp& o : cmd.batch) s.NoteWriteKey(o.key);
        return engine_->Batch(cmd.batch, cmd.durable);
    }
  };
  Result<WriteTicket> ticket = submit();
  if (!ticket.has_value()) {
    Status st = ticket.error();
    const bool engine_error = st.code() == Code::kWritesRefused || st.code() == Code::kNoSpace ||
                              st.code() == Code::kIOError || st.code() == Code::kShuttingDown;
    // A request that does not decode is a protocol error (the connection
    // is closed), except a key or value over its limit: that is the
    // client's data, not a broken frame, so only that request fails.
    const bool fatal = cmd.problem.ok() ? st.code() != Code::kTooLarge : cmd.fatal;
    // A write fence (a replica, an old primary) refuses the write, not the
    // connection: the client may go on reading, or read the reason.
    const bool fenced = st.code() == Code::kNotPrimary || st.code() == Code::kFenced;
    if (!engine_error && !fenced && fatal) return st;
    s.replies().Complete(seq, st.code(), engine_->durable_lsn(), 0, st.message());
    CountReply(st.code());
    if (engine_error) {
      if (st.code() != Code::kShuttingDown) ++counters_->writes_refused;
      host_->OnWriteError(st);
    }
    return Status::Ok();
  }
  if (ticket->done) {
    if (Status gate = host_->PrimaryGate(/*write=*/true); !gate.ok()) {
      s.replies().Complete(seq, gate.code(), engine_->durable_lsn(), 0, gate.message());
      CountReply(gate.code());
      return Status::Ok();
    }
    if (op == Op::kDelRange) {
      s.replies().Complete(seq, Code::kOk, engine_->durable_lsn(), ticket->lsn, proto::EncodeU64(ticket->removed));
      return Status::Ok();
    }
    const Code code = (op == Op::kDel && !ticket->existed) ? Code::kNotFound : Code::kOk;
    s.replies().Complete(seq, code, engine_->durable_lsn(), ticket->lsn);
    return Status::Ok();
  }
  if (pending_tracked_ && engine_->applied_lsn() < ticket->lsn) NotePending(cmd, ticket->lsn);
  writes_.push_back({s.id(), seq, ticket->lsn, op});
  return Status::Ok();
}

Result<RequestHandler::Evaluated> Dispatcher::Evaluate(Session& s, const Command& cmd, Reply* reply) {
  const Op op = cmd.ref.op;
  // Before counting: a parked read is evaluated again each time it may go on.
  if (cmd.min_lsn != 0 && cmd.problem.ok() && ParkForLsn(s, cmd)) return Evaluated::kParked;
  CountOp(op);
  reply->ref = cmd.ref;
  reply->durable_lsn = engine_->durable_lsn();
  auto answer = [&](Code code, std::string_view text = {}) {
    CountReply(code);
    reply->code = code;
    reply->text = text;
    return Evaluated::kReplied;
  };
  if (!cmd.problem.ok()) {
    if (cmd.fatal) return cmd.problem;
    return answer(cmd.problem.code(), cmd.problem.message());
  }
  if (cmd.min_lsn > engine_->applied_lsn()) {  // its wait is over
    if (parking_closed_ || shutting_down_) return answer(Code::kShuttingDown, "kvd is shutting down");
    ++counters_->min_lsn_timeouts;
    scratch_ = "minimum LSN " + std::to_string(cmd.min_lsn) + " not applied within " +
               std::to_string(limits_.min_lsn_wait.count()) + " ms (this node has applied LSN " +
               std::to_string(engine_->applied_lsn()) + ")";
    return answer(Code::kTimedOut, scratch_);
  }
  if (op == Op::kGet || op == Op::kScan || op == Op::kCount) {
    if (Status gate = host_->PrimaryGate(/*write=*/false); !gate.ok()) return answer(gate.code(), scratch_ = gate.message());
  }
  switch (op) {
    case Op::kPing:
      return answer(Code::kOk);
    case Op::kGet: {
      auto v = engine_->state().Get(cmd.key);
      if (!v.has_value()) return answer(Code::kNotFound);
      return answer(Code::kOk, *v);  // a view into the State, encoded before it can change
    }
    case Op::kScan:
      CollectScan(engine_->state(), cmd.scan, limits_.max_scan_reply_bytes, &scan_);
      reply->scan = &scan_;
      return answer(Code::kOk);
    case Op::kCount:
      reply->count = engine_->state().CountPrefix(cmd.key);
      return answer(Code::kOk);
    case Op::kStatus:
      scratch_ = host_->StatusJson();
      return answer(Code::kOk, scratch_);
    case Op::kConfigGet: {
      auto json = host_->ConfigGetJson(cmd.key);
      if (!json.has_value()) {
        scratch_ = json.error().message();
        return answer(json.error().code(), scratch_);
      }
      scratch_ = std::move(json).value();
      return answer(Code::kOk, scratch_);
    }
    case Op::kConfigSet: {
      Status st = host_->ConfigSet(cmd.key, cmd.value, s.peer());
      scratch_ = st.message();
      return answer(st.code(), scratch_);
    }
    case Op::kSnapshot: {
      if (shutting_down_) return answer(Code::kShuttingDown, "kvd is shutting down");
      const uint64_t seq = s.replies().Push(cmd.ref);
      snapshot_waiters_.push_back({s.id(), seq, engine_->applied_lsn(), op});
      host_->RequestSnapshot();
      return Evaluated::kQueued;
    }
    case Op::kBackupBegin:
    case Op::kBackupRead:
    case Op::kBackupEnd:
      return EvaluateBackup(s, cmd, reply);
    case Op::kPromote: {
      const Lsn before = engine_->last_lsn();
      auto epoch = host_->Promote(cmd.force, cmd.epoch);
      if (!epoch.has_value()) {
        scratch_ = epoch.error().message();
        return answer(epoch.error().code(), scratch_);
      }
      reply->lsn = before;
      scratch_ = proto::EncodeU64(*epoch);
      return answer(Code::kOk, scratch_);
    }
    case Op::kReplicate: {
      Status st = host_->Replicate(cmd.key);
      scratch_ = st.message();
      return answer(st.code(), scratch_);
    }
    default:
      // Writes and FLUSH never get here (Session submits them).
      return Status::Internal("operation routed to Evaluate: " + std::string(OpName(op)));
  }
}

RequestHandler::Evaluated Dispatcher::EvaluateBackup(Session& s, const Command& cmd, Reply* reply) {
  auto answer = [&](const Status& st, std::string_view text) {
    CountReply(st.code());
    reply->code = st.code();
    reply->text = st.ok() ? text : std::string_view(scratch_ = st.message());
    return Evaluated::kReplied;
  };
  switch (cmd.ref.op) {
    case Op::kBackupBegin: {
      // As SNAPSHOT: the snapshot covers every write this client saw acknowledged.
      if (shutting_down_) return answer(Status::ShuttingDown("kvd is shutting down"), {});
      const uint64_t seq = s.replies().Push(cmd.ref);
      snapshot_waiters_.push_back({s.id(), seq, engine_->applied_lsn(), Op::kBackupBegin});
      host_->RequestSnapshot();
      return Evaluated::kQueued;
    }
    case Op::kBackupRead: {
      // One bounded chunk per request: the client pulls, so a slow one holds
      // nothing but the file, and the loop never reads more than a chunk.
      const uint32_t cap = static_cast<uint32_t>(std::min<size_t>(proto::kMaxBackupChunk, limits_.max_scan_reply_bytes));
      Status st = backups_.Read(s.id(), cmd.backup_id, cmd.offset, std::min(cmd.max_bytes, cap), &scratch_);
      return answer(st, scratch_);
    }
    default:
      return answer(backups_.End(s.id(), cmd.backup_id), {});
  }
}

void Dispatcher::AnswerBackup(const Waiter& w, Lsn lsn) {
  if (host_->FindSession(w.session) == nullptr) return;  // the client left: open nothing
  auto opened = backups_.Open(w.session, JoinPath(limits_.snapshot_dir, SnapshotFileName(lsn)));
  if (!opened.has_value()) {
    Complete(w.session, w.seq, opened.error().code(), 0, opened.error().message());
    return;
  }
  Complete(w.session, w.seq, Code::kOk, lsn, proto::EncodeBackupBeginReply(*opened));
}

bool Dispatcher::ParkForLsn(Session& s, const Command& cmd) {
  const auto now = std::chrono::steady_clock::now();
  if (engine_->applied_lsn() >= cmd.min_lsn) {
    lsn_waits_.Remove(s.id());
    return false;
  }
  LsnWaits::Entry* e = lsn_waits_.Find(s.id());
  if (e == nullptr || e->min_lsn != cmd.min_lsn) {
    if (limits_.min_lsn_wait.count() <= 0 || shutting_down_ || parking_closed_) return false;  // fails at once
    lsn_waits_.Park(s.id(), cmd.min_lsn, now + limits_.min_lsn_wait);
    ++counters_->min_lsn_waits;
    return true;
  }
  if (now < e->deadline && !parking_closed_) {
    e->woken = false;  // woken early (its session ran for another reason): wait on
    return true;
  }
  lsn_waits_.Remove(s.id());
  return false;
}

void Dispatcher::WakeParkedReads(std::chrono::steady_clock::time_point now) {
  if (lsn_waits_.empty() || engine_ == nullptr) return;
  std::vector<uint64_t> woken;
  lsn_waits_.ForReady(engine_->applied_lsn(), now, [&](uint64_t id) { woken.push_back(id); });
  ReadyOrForget(woken);
}

void Dispatcher::EndParkedReads() {
  parking_closed_ = true;
  FailHeldReads();  // a read waiting for the sync watermark does not hold the drain either
  std::vector<uint64_t> woken;
  lsn_waits_.ForAll([&](uint64_t id) { woken.push_back(id); });
  ReadyOrForget(woken);
}

void Dispatcher::ReadyOrForget(const std::vector<uint64_t>& sessions) {
  for (uint64_t id : sessions) {
    if (Session* s = host_->FindSession(id)) {
      host_->SessionReady(s);  // it evaluates its read again
    } else {
      lsn_waits_.Remove(id);  // the client left
    }
  }
}

bool Dispatcher::EvaluateAhead(Session& s, const Command& cmd) {
  // A bad key errs in order; a GET waiting for its LSN waits as a barrier.
  if (!cmd.problem.ok() || cmd.min_lsn > engine_->applied_lsn() || s.MayHavePendingWrite(cmd.key)) return false;
  // A node that may not answer as the primary now (a cluster node past its
  // lease) refuses in order, as a barrier, with the reason (Evaluate).
  if (!host_->PrimaryGate(/*write=*/false).ok()) return false;
  CountOp(Op::kGet);
  const uint64_t seq = s.replies().Push(cmd.ref);
  auto v = engine_->state().Get(cmd.key);
  const Code code = v.has_value() ? Code::kOk : Code::kNotFound;
  CountReply(code);
  if (const auto deadline = ReadHoldDeadline()) {  // the read barrier: the reply waits in its slot
    s.replies().SetPayload(seq, v.value_or(std::string_view{}));
    holds_.Hold({s.id(), seq, engine_->applied_lsn(), *deadline, code});
    return true;
  }
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
  if (it == writes_.begin()) {
    writes_.pop_front();  // the usual case, cheaper than erase
  } else {
    writes_.erase(it);
  }
  PendingDone(lsn);
  if (!status.ok()) {
    if (status.code() != Code::kShuttingDown) ++counters_->writes_refused;
    Complete(w.session, w.seq, status.code(), lsn, status.message());
    host_->OnWriteError(status);
    return;
  }
  if (Status gate = host_->PrimaryGate(/*write=*/true); !gate.ok()) {
    // Durable here, but this node may no longer be the primary: not an acknowledgement.
    Complete(w.session, w.seq, gate.code(), lsn, gate.message());
    return;
  }
  const Code code = (w.op == Op::kDel && !existed) ? Code::kNotFound : Code::kOk;
  Complete(w.session, w.seq, code, lsn);
}

void Dispatcher::OnDeleteRangeDone(Lsn lsn, const Status& status, uint64_t removed) {
  if (!status.ok()) return OnWriteDone(lsn, status, false);
  auto it = std::find_if(writes_.begin(), writes_.end(), [&](const Waiter& w) { return w.lsn == lsn; });
  if (it == writes_.end()) return;
  const Waiter w = *it;
  writes_.erase(it);
  PendingDone(lsn);
  if (Status gate = host_->PrimaryGate(/*write=*/true); !gate.ok()) {
    Complete(w.session, w.seq, gate.code(), lsn, gate.message());
    return;
  }
  Complete(w.session, w.seq, Code::kOk, lsn, proto::EncodeU64(removed));
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
    } else if (lsn >= w.lsn && w.op == Op::kBackupBegin) {
      AnswerBackup(w, lsn);
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
  FailHeldReads();
  std::deque<Waiter> writes;
  writes.swap(writes_);
  PendingDone(UINT64_MAX);  // wakes conditional writes: they fail like any other write now
  for (const Waiter& w : writes) Complete(w.session, w.seq, Code::kShuttingDown, w.lsn, "kvd is shutting down");
  std::deque<FlushWaiter> flushes;
  flushes.swap(flushes_);
  for (const FlushWaiter& w : flushes) Complete(w.session, w.seq, Code::kShuttingDown, 0, "kvd is shutting down");
  std::vector<Waiter> snaps;
  snaps.swap(snapshot_waiters_);
  for (const Waiter& w : snaps) Complete(w.session, w.seq, Code::kShuttingDown, 0, "kvd is shutting down");
}

}  // namespace kvd::daemon
