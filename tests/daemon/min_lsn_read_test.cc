// Read-your-writes (kFlagMinLsn) through Session + Dispatcher without a
// socket: a read whose minimum LSN is applied is answered at once; one that
// is not is parked (no reply, its session blocked, nothing after it
// submitted) until the engine applies the LSN, or fails with TimedOut once
// min_lsn_wait has passed. The fake engine applies writes only on Poll, as a
// replica applies records only once they are durable.
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "daemon/serve/dispatcher.h"
#include "daemon/serve/session.h"
#include "kvd/protocol.h"
#include "util/fake_dispatch_host.h"
#include "util/fake_engine.h"

namespace kvd::daemon {
namespace {

using proto::Opcode;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using test::FakeEngine;

Dispatcher::Limits WithWait(milliseconds wait) {
  Dispatcher::Limits l;
  l.min_lsn_wait = wait;
  return l;
}

struct Fixture {
  FakeEngine engine;
  test::FakeDispatchHost host;
  ServerCounters counters;
  Dispatcher dispatcher;
  Session session;
  uint64_t next_id = 1;

  explicit Fixture(milliseconds wait = milliseconds(60'000))
      : dispatcher(&engine, &host, WithWait(wait), &counters), session(7, &dispatcher, Session::Limits{}) {
    host.sessions[7] = &session;
  }
  // Another client's write, applied (made durable) now: the applied LSN grows.
  void ApplyWrite(std::string_view k, std::string_view v) {
    REQUIRE(engine.Put(k, v, false).has_value());
    engine.Poll(&dispatcher);
  }
  void Feed(std::string_view bytes) {
    auto space = session.input().Space(bytes.size());
    std::copy(bytes.begin(), bytes.end(), space.begin());
    session.input().Commit(bytes.size());
    session.Process();
  }
  std::string Req(Opcode op, std::initializer_list<std::string_view> parts, uint16_t flags = 0) {
    std::string out;
    EncodeRequest(&out, proto::RequestHeader{op, flags, next_id++}, parts);
    return out;
  }
  std::string GetAt(std::string_view k, Lsn min_lsn) {
    return Req(Opcode::kGet, {proto::EncodeU64(min_lsn), k}, proto::kFlagMinLsn);
  }
  std::vector<std::pair<proto::ReplyHeader, std::string>> Replies() {
    session.Process();
    std::string bytes(session.BeginSend());
    session.SendDone();
    std::vector<std::pair<proto::ReplyHeader, std::string>> out;
    auto data = AsBytes(bytes);
    while (!data.empty()) {
      auto n = proto::SplitFrame(data, 1 << 30, proto::kReplyHeaderBytes);
      REQUIRE(n.has_value());
      REQUIRE(n->has_value());
      auto frame = data.first(**n);
      auto h = proto::DecodeReplyHeader(frame);
      REQUIRE(h.has_value());
      out.emplace_back(*h, std::string(AsStringView(proto::ReplyPayload(frame))));
      data = data.subspan(**n);
    }
    return out;
  }
};

TEST_CASE("a read whose minimum LSN is applied is answered at once, like a plain read") {
  Fixture f;
  f.ApplyWrite("k", "v1");
  f.ApplyWrite("k", "v2");
  f.Feed(f.GetAt("k", 2));
  f.Feed(f.Req(Opcode::kCount, {proto::EncodeU64(1), ""}, proto::kFlagMinLsn));
  auto r = f.Replies();
  REQUIRE(r.size() == 2);
  CHECK(r[0].first.status == Code::kOk);
  CHECK(r[0].second == "v2");
  CHECK(r[1].first.status == Code::kOk);
  CHECK(r[1].second == proto::EncodeU64(1));
  CHECK(f.dispatcher.parked_reads() == 0);
  CHECK(f.counters.min_lsn_waits == 0);
}

TEST_CASE("a read ahead of the applied LSN is parked, holds its connection, and runs once the LSN is applied") {
  Fixture f;
  f.ApplyWrite("k", "old");  // LSN 1
  f.Feed(f.GetAt("k", 3));
  // Pipelined behind it on the same connection: a write it must not see.
  f.Feed(f.Req(Opcode::kPut, {proto::EncodePutPayload("k", "mine-later")}));
  CHECK(f.Replies().empty());
  CHECK(f.session.blocked());
  CHECK(f.dispatcher.parked_reads() == 1);
  CHECK(f.counters.min_lsn_waits == 1);
  CHECK(f.engine.last_lsn() == 1);  // the PUT behind the parked GET was not submitted
  CHECK(f.dispatcher.NextParkedDeadline().has_value());

  // LSN 2 applied: still short. A wake-up finds nothing to do.
  f.ApplyWrite("k", "two");
  f.dispatcher.WakeParkedReads(steady_clock::now());
  CHECK(f.host.ready.empty());
  // Its session running for another reason (more bytes) does not answer it.
  f.session.Process();
  CHECK(f.Replies().empty());
  CHECK(f.counters.min_lsn_waits == 1);  // counted once, however often evaluated

  f.ApplyWrite("k", "three");  // LSN 3: the one it waits for
  f.dispatcher.WakeParkedReads(steady_clock::now());
  REQUIRE(f.host.ready.size() == 1);
  CHECK(f.host.ready[0] == 7);
  auto r = f.Replies();
  REQUIRE(r.size() == 1);
  CHECK(r[0].first.status == Code::kOk);
  CHECK(r[0].second == "three");  // not "mine-later": that PUT came after it
  CHECK(f.dispatcher.parked_reads() == 0);
  // Then the PUT behind it went in, as LSN 4.
  CHECK(f.engine.last_lsn() == 4);
  f.engine.Poll(&f.dispatcher);
  auto w = f.Replies();
  REQUIRE(w.size() == 1);
  CHECK(w[0].first.lsn == 4);
  CHECK(f.counters.min_lsn_timeouts == 0);
}

TEST_CASE("a GET with a minimum LSN is not answered ahead of pending writes while its LSN is not applied") {
  Fixture f;
  f.ApplyWrite("other", "x");  // LSN 1
  f.Feed(f.Req(Opcode::kPut, {proto::EncodePutPayload("mine", "1")}));  // LSN 2, pending
  f.Feed(f.GetAt("other", 2));  // a different key: a plain GET would be answered ahead
  CHECK(f.Replies().empty());
  CHECK(f.session.blocked());
  f.engine.Poll(&f.dispatcher);  // LSN 2 applied: the PUT is answered, then the GET
  auto r = f.Replies();
  REQUIRE(r.size() == 2);
  CHECK(r[0].first.opcode == Opcode::kPut);
  CHECK(r[1].first.opcode == Opcode::kGet);
  CHECK(r[1].second == "x");
}

TEST_CASE("a parked read fails with TimedOut once min_lsn_wait has passed; the connection goes on") {
  Fixture f(milliseconds(30));
  f.ApplyWrite("k", "v");  // LSN 1
  const auto start = steady_clock::now();
  f.Feed(f.Req(Opcode::kScan, {proto::EncodeU64(5), proto::EncodeScanPayload({})}, proto::kFlagMinLsn));
  f.Feed(f.Req(Opcode::kGet, {"k"}));  // a plain read behind it
  CHECK(f.Replies().empty());
  const auto deadline = f.dispatcher.NextParkedDeadline();
  REQUIRE(deadline.has_value());
  CHECK(*deadline >= start + milliseconds(30));
  // Before the deadline a wake-up does nothing.
  f.dispatcher.WakeParkedReads(start);
  CHECK(f.host.ready.empty());
  // The deadline is a time, not an event: wait for it to pass.
  while (steady_clock::now() < *deadline) std::this_thread::sleep_for(milliseconds(5));
  f.dispatcher.WakeParkedReads(steady_clock::now());
  REQUIRE(f.host.ready.size() == 1);
  CHECK_FALSE(f.dispatcher.NextParkedDeadline().has_value());  // woken: no timer needed for it any more
  auto r = f.Replies();
  REQUIRE(r.size() == 2);
  CHECK(r[0].first.status == Code::kTimedOut);
  CHECK(r[0].second.find("minimum LSN 5 not applied within 30 ms") != std::string::npos);
  CHECK(r[0].second.find("applied LSN 1") != std::string::npos);
  CHECK(r[1].first.status == Code::kOk);  // the read behind it is served
  CHECK(r[1].second == "v");
  CHECK(f.counters.min_lsn_timeouts == 1);
  CHECK(f.dispatcher.parked_reads() == 0);
  CHECK_FALSE(f.session.close_requested());
}

TEST_CASE("with min_lsn_wait 0 a read ahead of the applied LSN fails at once") {
  Fixture f(milliseconds(0));
  f.Feed(f.GetAt("k", 1));
  auto r = f.Replies();
  REQUIRE(r.size() == 1);
  CHECK(r[0].first.status == Code::kTimedOut);
  CHECK(f.dispatcher.parked_reads() == 0);
}

TEST_CASE("shutdown answers parked reads at once instead of holding the drain for min_lsn_wait") {
  Fixture f;  // a 60 s wait
  f.Feed(f.GetAt("k", 5));
  CHECK(f.Replies().empty());
  f.dispatcher.EndParkedReads();
  REQUIRE(f.host.ready.size() == 1);
  auto r = f.Replies();
  REQUIRE(r.size() == 1);
  CHECK(r[0].first.status == Code::kShuttingDown);
  CHECK(f.dispatcher.parked_reads() == 0);
  // Nothing is parked any more.
  f.Feed(f.GetAt("k", 6));
  r = f.Replies();
  REQUIRE(r.size() == 1);
  CHECK(r[0].first.status == Code::kShuttingDown);
  CHECK(f.counters.min_lsn_timeouts == 0);
}

TEST_CASE("a client that leaves while its read is parked leaves nothing behind") {
  Fixture f;
  f.Feed(f.GetAt("k", 9));
  CHECK(f.dispatcher.parked_reads() == 1);
  f.dispatcher.SessionClosed(7);
  CHECK(f.dispatcher.parked_reads() == 0);
  // A session the host no longer finds is dropped at the next wake-up too.
  Fixture g;
  g.Feed(g.GetAt("k", 1));
  g.host.sessions.clear();
  g.ApplyWrite("k", "v");
  g.dispatcher.WakeParkedReads(steady_clock::now());
  CHECK(g.host.ready.empty());
  CHECK(g.dispatcher.parked_reads() == 0);
}

}  // namespace
}  // namespace kvd::daemon
