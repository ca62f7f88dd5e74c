#include "node/commit_bridge.h"

#include <algorithm>

namespace kvd::daemon {

CommitBridge::CommitBridge(uv_loop_t* loop, CompletionSink* sink, std::function<void()> after_poll)
    : sink_(sink),
      after_poll_(std::move(after_poll)),
      waker_(loop, [this] { OnWake(); }),
      last_notify_(std::chrono::steady_clock::now()) {
  InitTimer(loop, &tick_, this);
}

std::function<void()> CommitBridge::NotifyFn() {
  LoopWaker* w = &waker_;
  return [w] { w->Wake(); };
}

void CommitBridge::Attach(Engine* engine, std::chrono::microseconds flush_interval) {
  engine_ = engine;
  SetFlushInterval(flush_interval);
  OnWake();
}

void CommitBridge::SetFlushInterval(std::chrono::microseconds flush_interval) {
  if (!tick_) return;
  const auto half_ms = std::max<int64_t>(1, flush_interval.count() / 2000);
  uv_timer_start(tick_.get(), &CommitBridge::OnTick, static_cast<uint64_t>(half_ms),
                 static_cast<uint64_t>(half_ms));
}

void CommitBridge::Detach() {
  engine_ = nullptr;
  if (tick_) uv_timer_stop(tick_.get());
}

void CommitBridge::OnWake() {
  last_notify_ = std::chrono::steady_clock::now();
  if (engine_ == nullptr) return;
  if (before_poll_) before_poll_();
  engine_->Poll(sink_);
  if (after_poll_) after_poll_();
}

void CommitBridge::OnTick(uv_timer_t* t) {
  auto* self = static_cast<CommitBridge*>(t->data);
  if (self->engine_ == nullptr) return;
  self->engine_->Tick(Clock::now(), self->sink_);
  if (self->after_poll_) self->after_poll_();
}

}  // namespace kvd::daemon
