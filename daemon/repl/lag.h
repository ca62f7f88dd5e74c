// Replication lag in milliseconds (docs/replication.md section 4.4).
//
// On the primary, per replica: 0 when the replica's acknowledged durable LSN
// covers every record written here; otherwise now minus the echo_sent_at_us
// of its newest ACK: the age, on the primary's own clock (the echo is the
// primary's timestamp coming back, so the two hosts' clocks never meet), of
// the newest WAL or HEARTBEAT message the replica had received when it last
// acknowledged. A stalled link therefore shows a lag that grows with time.
// Before the first echo the handshake's time stands in for it.
//
// On a replica: 0 when its applied LSN reaches the primary's last LSN as of
// the newest WAL or HEARTBEAT it received; otherwise the time, on its own
// clock, since it was last caught up (BehindClock). A replica that hears
// nothing cannot know the primary moved on: its STATUS shows last_heard_ms
// beside it.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

#include "kvd/types.h"

namespace kvd::daemon::repl {

// The primary's clock for sent_at_us and the echoes of it: CLOCK_BOOTTIME in
// microseconds. Only the primary ever interprets these values (the replica
// echoes them), so no other host's clock needs to agree; unlike the wall
// clock it is never stepped, so neither lag_ms nor the cluster's read lease
// (docs/cluster.md §3.5) can be stretched by a clock set backwards.
inline uint64_t PrimaryClockUs() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

inline uint64_t PrimaryLagMs(Lsn acked_durable, Lsn last_written, uint64_t echo_us, uint64_t since_us,
                             uint64_t now_us) {
  if (acked_durable >= last_written) return 0;
  const uint64_t base = echo_us != 0 ? echo_us : since_us;
  return now_us > base ? (now_us - base) / 1000 : 0;  // a clock stepped back reads 0, never negative
}

class BehindClock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  // After each event that may move either LSN.
  void Note(Lsn applied, Lsn primary_last, TimePoint now) {
    if (applied >= primary_last) {
      behind_ = false;
    } else if (!behind_) {
      behind_ = true;
      since_ = now;
    }
  }
  uint64_t LagMs(Lsn applied, Lsn primary_last, TimePoint now) const {
    if (applied >= primary_last || !behind_ || now < since_) return 0;
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now - since_).count());
  }

 private:
  bool behind_ = false;
  TimePoint since_{};
};

}  // namespace kvd::daemon::repl
