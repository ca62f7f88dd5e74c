// Replication lag in ms (daemon/repl/lag.h): the primary's per-replica
// figure from the ACK's echo, and the replica's own from when it fell behind.
#include <doctest/doctest.h>

#include "daemon/repl/lag.h"

namespace kvd::daemon::repl {
namespace {

using std::chrono::milliseconds;

TEST_CASE("primary lag: 0 when caught up, else the age of the echoed sent_at") {
  const uint64_t now = 10'000'000;  // µs
  CHECK(PrimaryLagMs(50, 50, now - 900'000, now - 5'000'000, now) == 0);  // caught up: whatever the echo
  CHECK(PrimaryLagMs(60, 50, 0, 0, now) == 0);
  CHECK(PrimaryLagMs(49, 50, now - 250'000, now - 5'000'000, now) == 250);
  // No echo yet: the time since the handshake.
  CHECK(PrimaryLagMs(0, 50, 0, now - 1'500'000, now) == 1500);
  // A clock that stepped back never gives a negative (huge) lag.
  CHECK(PrimaryLagMs(49, 50, now + 1'000, 0, now) == 0);
}

TEST_CASE("replica lag: the time since it was last caught up") {
  BehindClock b;
  const auto t0 = std::chrono::steady_clock::now();
  b.Note(10, 10, t0);
  CHECK(b.LagMs(10, 10, t0 + milliseconds(500)) == 0);
  b.Note(10, 12, t0 + milliseconds(100));  // the primary moved on: behind from here
  CHECK(b.LagMs(10, 12, t0 + milliseconds(400)) == 300);
  b.Note(11, 12, t0 + milliseconds(450));  // still behind: the start stays
  CHECK(b.LagMs(11, 12, t0 + milliseconds(600)) == 500);
  b.Note(12, 12, t0 + milliseconds(700));  // caught up
  CHECK(b.LagMs(12, 12, t0 + milliseconds(800)) == 0);
  b.Note(12, 13, t0 + milliseconds(900));  // behind again: counted afresh
  CHECK(b.LagMs(12, 13, t0 + milliseconds(950)) == 50);
}

}  // namespace
}  // namespace kvd::daemon::repl
