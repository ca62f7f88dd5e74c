// Signals, delivered on the loop by uv_signal (never in a handler context):
// SIGTERM/SIGINT -> on_stop, SIGHUP -> on_reload. SIGPIPE is ignored so a
// client that went away turns into EPIPE on its own socket only.
#pragma once

#include <functional>

#include "net/uv_handle.h"

namespace kvd::daemon {

class SignalWatcher {
 public:
  // Starts watching; false if libuv refused (logged by the caller).
  bool Start(uv_loop_t* loop, std::function<void(int signum)> on_stop, std::function<void()> on_reload);
  void Stop();

 private:
  static void OnSignal(uv_signal_t* h, int signum);
  std::function<void(int)> on_stop_;
  std::function<void()> on_reload_;
  UvHandle<uv_signal_t> term_, int_, hup_;
};

// Process-wide: SIGPIPE -> SIG_IGN. Call once before serving.
void IgnoreSigpipe();

}  // namespace kvd::daemon
