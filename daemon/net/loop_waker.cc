#include "net/loop_waker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace kvd::daemon {

LoopWaker::LoopWaker(uv_loop_t* loop, std::function<void()> on_wake) : on_wake_(std::move(on_wake)) {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return;
  if (uv_poll_init(loop, poll_.Allocate(), fd) != 0) {
    poll_.reset();
    ::close(fd);
    return;
  }
  poll_.MarkInitialised();
  poll_->data = this;
  fd_ = fd;
  if (uv_poll_start(poll_.get(), UV_READABLE, &LoopWaker::OnReadable) != 0) Close();
}

void LoopWaker::Wake() {
  if (fd_ < 0) return;
  // The caller's data is published before the flag (release); only the
  // wake that sets it writes the eventfd.
  if (pending_.exchange(true, std::memory_order_acq_rel)) return;
  const uint64_t one = 1;
  // Only EAGAIN can fail (a counter near 2^64): the loop is awake then anyway.
  (void)!::write(fd_, &one, sizeof one);
}

void LoopWaker::OnReadable(uv_poll_t* p, int status, int) {
  auto* self = static_cast<LoopWaker*>(p->data);
  if (self == nullptr || status < 0) return;
  uint64_t n = 0;
  (void)!::read(self->fd_, &n, sizeof n);
  // Cleared before the callback reads the data: a Wake() that publishes
  // after this point writes the eventfd again. An exchange (not a store):
  // reading the wakers' `true` orders their data before ours.
  (void)self->pending_.exchange(false, std::memory_order_acq_rel);
  if (self->on_wake_) self->on_wake_();
}

void LoopWaker::Close() {
  if (poll_) {
    uv_poll_stop(poll_.get());
    poll_->data = nullptr;
    poll_.reset();
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace kvd::daemon
