#include "sys/signals.h"

#include <signal.h>

namespace kvd::daemon {

void IgnoreSigpipe() { ::signal(SIGPIPE, SIG_IGN); }

bool SignalWatcher::Start(uv_loop_t* loop, std::function<void(int)> on_stop,
                          std::function<void()> on_reload) {
  on_stop_ = std::move(on_stop);
  on_reload_ = std::move(on_reload);
  for (auto [h, sig] : {std::pair{&term_, SIGTERM}, std::pair{&int_, SIGINT}, std::pair{&hup_, SIGHUP}}) {
    if (!InitSignal(loop, h, this)) return false;
    if (uv_signal_start(h->get(), &SignalWatcher::OnSignal, sig) != 0) return false;
  }
  return true;
}

void SignalWatcher::Stop() {
  term_.reset();
  int_.reset();
  hup_.reset();
}

void SignalWatcher::OnSignal(uv_signal_t* h, int signum) {
  auto* self = static_cast<SignalWatcher*>(h->data);
  if (signum == SIGHUP) {
    if (self->on_reload_) self->on_reload_();
  } else if (self->on_stop_) {
    self->on_stop_(signum);
  }
}

}  // namespace kvd::daemon
