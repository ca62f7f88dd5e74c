// systemd readiness protocol (sd_notify): READY, STATUS, WATCHDOG,
// EXTEND_TIMEOUT_USEC, RELOADING, STOPPING. Every call is a no-op when
// $NOTIFY_SOCKET is unset, so kvd runs the same outside systemd.
#pragma once

#include <chrono>
#include <string_view>

namespace kvd::daemon {

class Notifier {
 public:
  Notifier();
  void Ready();
  void Reloading();  // followed by Ready() when the reload is done
  void Stopping();
  void Status(std::string_view text);
  void ExtendTimeout(std::chrono::microseconds by);
  void Watchdog();
  // The interval at which Watchdog() must be called (half of WatchdogSec),
  // or zero when the watchdog is off.
  std::chrono::microseconds watchdog_interval() const { return watchdog_interval_; }

 private:
  std::chrono::microseconds watchdog_interval_{0};
};

}  // namespace kvd::daemon
