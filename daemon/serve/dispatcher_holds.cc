// The dispatcher's read barrier for synchronous replication (serve/read_holds.h,
// docs/replication.md §6).
#include <string>

#include "serve/dispatcher.h"

namespace kvd::daemon {

std::optional<std::chrono::steady_clock::time_point> Dispatcher::ReadHoldDeadline() const {
  if (engine_ == nullptr) return std::nullopt;
  const auto wait = host_->ReadBarrier();
  // Everything this read could see is acknowledgeable already: answer now
  // (the common case, and always with sync_replicas = 0).
  if (!wait || engine_->ack_lsn() >= engine_->applied_lsn()) return std::nullopt;
  return std::chrono::steady_clock::now() + *wait;
}

bool Dispatcher::HoldReply(Session& s, const Reply& reply) {
  const Op op = reply.ref.op;
  if (op != Op::kGet && op != Op::kScan && op != Op::kCount) return false;
  return HoldRead(s, reply);
}

bool Dispatcher::HoldRead(Session& s, const Reply& reply) {
  if (reply.code != Code::kOk && reply.code != Code::kNotFound) return false;  // errors reveal no data
  const auto deadline = ReadHoldDeadline();
  if (!deadline) return false;
  // The reply's views (into the State, the handler's scratch) live only until
  // now: encode it into its slot, sent once released.
  std::string bytes;
  s.codec().EncodeReply(reply, &bytes);
  const uint64_t seq = s.replies().Push(reply.ref);
  s.replies().SetEncoded(seq, std::move(bytes));
  if (shutting_down_ || parking_closed_) {
    CountReply(Code::kShuttingDown);
    s.replies().Complete(seq, Code::kShuttingDown, engine_->durable_lsn(), 0, "kvd is shutting down");
    return true;
  }
  holds_.Hold({s.id(), seq, engine_->applied_lsn(), *deadline, reply.code});
  return true;
}

void Dispatcher::ReleaseHeldReads(std::chrono::steady_clock::time_point now) {
  if (holds_.empty() || engine_ == nullptr) return;
  holds_.Release(
      engine_->ack_lsn(), now,
      [&](const ReadHolds::Entry& e) {
        // No second PrimaryGate here: the read was evaluated under it (the
        // cluster's read lease), so no other primary acknowledged a write
        // before that instant, and the hold makes everything it saw
        // acknowledgeable: the evaluation is its linearization point.
        Complete(e.session, e.seq, e.code, 0);
      },
      [&](const ReadHolds::Entry& e) {
        const Status why = host_->ReadBarrierFailure();
        Complete(e.session, e.seq, why.code(), 0, why.message());
      });
}

void Dispatcher::FailHeldReads() {
  holds_.TakeAll([&](const ReadHolds::Entry& e) {
    Complete(e.session, e.seq, Code::kShuttingDown, 0, "kvd is shutting down");
  });
}

}  // namespace kvd::daemon
