// sd_notify wrappers. sd_notify itself is a no-op returning 0 when
// $NOTIFY_SOCKET is unset, and we never ask it to unset the environment, so
// a reload or a forked child sees the same variables.
#include "sys/notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <string>

namespace kvd::daemon {

Notifier::Notifier() {
  uint64_t usec = 0;
  // > 0 only when WatchdogSec= is set and WATCHDOG_PID (if any) is us.
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    watchdog_interval_ = std::chrono::microseconds(usec / 2);
  }
}

void Notifier::Ready() { (void)sd_notify(0, "READY=1"); }

void Notifier::Reloading() {
  // MONOTONIC_USEC lets systemd >= 253 match the reload; 252 ignores it.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t usec = static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
  (void)sd_notify(0, ("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec)).c_str());
}

void Notifier::Stopping() { (void)sd_notify(0, "STOPPING=1"); }

void Notifier::Status(std::string_view text) {
  // One line: a newline would start a new assignment in the notify message.
  std::string line = "STATUS=";
  for (char ch : text) line += (ch == '\n' || ch == '\r') ? ' ' : ch;
  (void)sd_notify(0, line.c_str());
}

void Notifier::ExtendTimeout(std::chrono::microseconds by) {
  const auto usec = by.count() > 0 ? by.count() : 0;
  (void)sd_notify(0, ("EXTEND_TIMEOUT_USEC=" + std::to_string(usec)).c_str());
}

void Notifier::Watchdog() { (void)sd_notify(0, "WATCHDOG=1"); }

}  // namespace kvd::daemon
