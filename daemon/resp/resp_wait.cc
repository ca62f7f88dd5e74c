#include "resp/resp_wait.h"

#include <algorithm>
#include <string>

#include "kvd/resp.h"

namespace kvd::daemon {

RespWaits::RespWaits(uv_loop_t* loop, DispatchHost* host, ReplicaAcks* acks) : host_(host), acks_(acks) {
  InitTimer(loop, &timer_, this);
  acks_->SetOnAcksChanged([this] { Check(std::chrono::steady_clock::now()); });
}

RespWaits::~RespWaits() { acks_->SetOnAcksChanged(nullptr); }

void RespWaits::Add(uint64_t session, uint64_t seq, Lsn lsn, uint32_t numreplicas, std::chrono::milliseconds timeout,
                    int protocol) {
  const auto wait = timeout.count() == 0 ? std::chrono::milliseconds(kMaxWait)
                                         : std::min<std::chrono::milliseconds>(timeout, kMaxWait);
  waiters_.push_back({session, seq, lsn, numreplicas, std::chrono::steady_clock::now() + wait, protocol});
  Rearm();
}

void RespWaits::DropSession(uint64_t session) {
  std::erase_if(waiters_, [&](const Waiter& w) { return w.session == session; });
  Rearm();
}

void RespWaits::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<RespWaits*>(t->data);
  self->Check(std::chrono::steady_clock::now());
}

void RespWaits::Check(std::chrono::steady_clock::time_point now) {
  if (waiters_.empty()) return;
  // Answering may not re-enter (SessionReady only schedules), but copy the
  // list all the same: Answer must not see it change under its feet.
  std::vector<Waiter> due;
  std::erase_if(waiters_, [&](const Waiter& w) {
    const uint32_t count = acks_->CountDurable(w.lsn);
    if (count < w.numreplicas && now < w.deadline) return false;
    due.push_back(w);
    return true;
  });
  for (const Waiter& w : due) Answer(w, acks_->CountDurable(w.lsn));
  Rearm();
}

void RespWaits::Answer(const Waiter& w, uint32_t count) {
  Session* s = host_->FindSession(w.session);
  if (s == nullptr) return;  // the client left
  std::string text;
  resp::ReplyWriter writer(&text, w.protocol);
  writer.Integer(count);
  if (s->replies().Complete(w.seq, Code::kOk, 0, 0, text)) host_->SessionReady(s);
}

void RespWaits::Rearm() {
  if (!timer_) return;
  if (waiters_.empty()) {
    uv_timer_stop(timer_.get());
    return;
  }
  auto next = waiters_.front().deadline;
  for (const Waiter& w : waiters_) next = std::min(next, w.deadline);
  const auto now = std::chrono::steady_clock::now();
  const auto ms = next <= now ? 0 : std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
  uv_timer_start(timer_.get(), &RespWaits::OnTimer, static_cast<uint64_t>(ms), 0);
}

}  // namespace kvd::daemon
