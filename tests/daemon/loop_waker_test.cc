// LoopWaker (net/loop_waker.h): a wake from another thread always reaches
// the loop with the data published before it (none lost however the two
// threads interleave), wakes before the loop runs coalesce into one call,
// and a closed waker's handle closes with the loop.
#include <doctest/doctest.h>

#include <uv.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "net/loop_waker.h"

namespace kvd::daemon {
namespace {

struct Loop {
  uv_loop_t loop{};
  Loop() { REQUIRE(uv_loop_init(&loop) == 0); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);  // close callbacks
    CHECK(uv_loop_close(&loop) == 0);
  }
};

TEST_CASE("every value a thread publishes before Wake() is seen by the loop") {
  constexpr int kWakes = 20000;
  Loop l;
  std::mutex mu;
  int published = 0;  // guarded by mu
  int seen = 0, calls = 0;
  LoopWaker waker(&l.loop, [&] {
    ++calls;
    std::lock_guard lock(mu);
    seen = published;
    if (seen == kWakes) uv_stop(&l.loop);
  });
  REQUIRE(waker.ok());
  // A hang (a lost wake) fails here instead of timing the test out.
  uv_timer_t guard;
  uv_timer_init(&l.loop, &guard);
  bool timed_out = false;
  guard.data = &timed_out;
  uv_timer_start(
      &guard,
      [](uv_timer_t* t) {
        *static_cast<bool*>(t->data) = true;
        uv_stop(t->loop);
      },
      30000, 0);
  std::thread t([&] {
    for (int i = 1; i <= kWakes; ++i) {
      {
        std::lock_guard lock(mu);
        published = i;
      }
      waker.Wake();
      if (i % 64 == 0) std::this_thread::yield();
    }
  });
  uv_run(&l.loop, UV_RUN_DEFAULT);
  t.join();
  CHECK_FALSE(timed_out);
  CHECK(seen == kWakes);
  CHECK(calls >= 1);
  CHECK(calls <= kWakes + 1);  // at most one spare wake per race
  uv_timer_stop(&guard);
  uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
  waker.Close();
}

TEST_CASE("wakes before the loop runs coalesce into one callback") {
  Loop l;
  int calls = 0;
  LoopWaker waker(&l.loop, [&] { ++calls; });
  REQUIRE(waker.ok());
  waker.Wake();
  waker.Wake();
  waker.Wake();
  uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK(calls == 1);
  uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK(calls == 1);  // nothing new: no spurious call
  waker.Wake();
  uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK(calls == 2);
  waker.Close();
  waker.Close();  // idempotent
  CHECK_FALSE(waker.ok());
}

}  // namespace
}  // namespace kvd::daemon
