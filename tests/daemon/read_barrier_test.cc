// The read barrier of synchronous replication (serve/read_holds.h): with the
// host's ReadBarrier on and the engine's ack LSN behind its applied LSN, a
// read is evaluated at once but its reply waits in its slot until the ack
// LSN covers what it saw, or fails at its deadline; replies keep request order.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "daemon/serve/dispatcher.h"
#include "daemon/serve/session.h"
#include "kvd/protocol.h"
#include "util/fake_dispatch_host.h"
#include "util/fake_engine.h"

namespace kvd::daemon {
namespace {

using proto::Opcode;
using namespace std::chrono_literals;

struct Fixture {
  test::FakeEngine engine;
  test::FakeDispatchHost host;
  ServerCounters counters;
  Dispatcher dispatcher{&engine, &host, Dispatcher::Limits{}, &counters};
  Session session{7, &dispatcher, Session::Limits{}};
  uint64_t next_id = 1;

  Fixture() { host.sessions[7] = &session; }
  void Feed(std::string_view bytes) {
    auto space = session.input().Space(bytes.size());
    std::copy(bytes.begin(), bytes.end(), space.begin());
    session.input().Commit(bytes.size());
    session.Process();
  }
  std::string Req(Opcode op, std::initializer_list<std::string_view> parts = {}) {
    std::string out;
    proto::RequestHeader h;
    h.opcode = op;
    h.request_id = next_id++;
    proto::EncodeRequest(&out, h, parts);
    return out;
  }
  std::string Put(std::string_view k, std::string_view v) { return Req(Opcode::kPut, {proto::EncodePutPayload(k, v)}); }
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
  // k = v applied (visible) at LSN 1 but not confirmed by the replicas.
  void UnconfirmedWrite() {
    Feed(Put("k", "v"));
    engine.Poll(&dispatcher);
    REQUIRE(Replies().size() == 1);
    engine.ack_cap = 0;
    host.read_barrier = 1000ms;
  }
};

TEST_CASE("a read that saw an unconfirmed write is held until the ack LSN covers it; later requests wait behind it") {
  Fixture f;
  f.UnconfirmedWrite();
  std::string in = f.Req(Opcode::kGet, {"k"});
  in += f.Req(Opcode::kCount, {"k"});
  in += f.Req(Opcode::kPing);
  f.Feed(in);
  CHECK(f.dispatcher.held_reads() == 1);  // the GET; COUNT and PING wait behind it
  CHECK(f.Replies().empty());
  f.dispatcher.ReleaseHeldReads(std::chrono::steady_clock::now());
  CHECK(f.Replies().empty());  // still not covered

  f.engine.ack_cap = 1;
  f.dispatcher.ReleaseHeldReads(std::chrono::steady_clock::now());
  CHECK(f.dispatcher.held_reads() == 0);
  auto r = f.Replies();
  REQUIRE(r.size() == 3);
  for (size_t i = 0; i < r.size(); ++i) CHECK(r[i].first.request_id == 2 + i);
  CHECK(r[0].first.status == Code::kOk);
  CHECK(r[0].second == "v");
  CHECK(r[1].first.status == Code::kOk);  // COUNT, evaluated after the GET's release: covered, at once
  CHECK(r[2].first.status == Code::kOk);
}

TEST_CASE("a held read fails at its deadline with the host's error") {
  Fixture f;
  f.UnconfirmedWrite();
  f.Feed(f.Req(Opcode::kScan, {proto::EncodeScanPayload(proto::ScanArgs{})}));
  CHECK(f.dispatcher.held_reads() == 1);
  CHECK(f.dispatcher.NextParkedDeadline().has_value());
  f.dispatcher.ReleaseHeldReads(std::chrono::steady_clock::now() + 1001ms);
  auto r = f.Replies();
  REQUIRE(r.size() == 1);
  CHECK(r[0].first.status == Code::kIOError);
  CHECK(r[0].second == "not enough synchronous replicas (have 0 of 1)");
  CHECK_FALSE(f.dispatcher.NextParkedDeadline().has_value());
}

TEST_CASE("a GET answered ahead of a pending write is held too, and leaves after that write's reply") {
  Fixture f;
  f.UnconfirmedWrite();
  std::string in = f.Put("other", "1");
  in += f.Req(Opcode::kGet, {"k"});  // another key: answered ahead, into a held slot
  f.Feed(in);
  CHECK(f.dispatcher.held_reads() == 1);
  f.engine.Poll(&f.dispatcher);  // the PUT "acknowledged" (the fake does not gate writes)
  auto r = f.Replies();
  REQUIRE(r.size() == 1);  // the PUT; the GET behind it is held
  f.engine.ack_cap = 2;
  f.dispatcher.ReleaseHeldReads(std::chrono::steady_clock::now());
  r = f.Replies();
  REQUIRE(r.size() == 1);
  CHECK(r[0].second == "v");
}

TEST_CASE("no barrier (sync_replicas 0), or nothing unconfirmed: reads are answered at once") {
  Fixture f;
  f.UnconfirmedWrite();
  f.host.read_barrier.reset();
  f.Feed(f.Req(Opcode::kGet, {"k"}));
  CHECK(f.Replies().size() == 1);
  f.host.read_barrier = 1000ms;
  f.engine.ack_cap = 1;
  f.Feed(f.Req(Opcode::kGet, {"k"}));
  CHECK(f.dispatcher.held_reads() == 0);
  CHECK(f.Replies().size() == 1);
}

TEST_CASE("shutdown fails held reads") {
  Fixture f;
  f.UnconfirmedWrite();
  f.Feed(f.Req(Opcode::kGet, {"k"}));
  REQUIRE(f.dispatcher.held_reads() == 1);
  f.dispatcher.EndParkedReads();
  auto r = f.Replies();
  REQUIRE(r.size() == 1);
  CHECK(r[0].first.status == Code::kShuttingDown);
}

// A held reply is counted once: its request once (ops), and an error only
// when the held read finally fails (errors), not also when it was evaluated.
TEST_CASE("a held read counts its request once, and an error once only when it fails") {
  Fixture f;
  f.UnconfirmedWrite();
  const auto gets = [&] { return f.counters.ops[static_cast<size_t>(Op::kGet) % kOpCount]; };
  const auto scans = [&] { return f.counters.ops[static_cast<size_t>(Op::kScan) % kOpCount]; };
  REQUIRE(f.counters.errors == 0);
  f.Feed(f.Req(Opcode::kGet, {"k"}));
  REQUIRE(f.dispatcher.held_reads() == 1);
  f.dispatcher.ReleaseHeldReads(std::chrono::steady_clock::now());  // not covered yet: still held
  f.engine.ack_cap = 1;
  f.dispatcher.ReleaseHeldReads(std::chrono::steady_clock::now());
  REQUIRE(f.Replies().size() == 1);
  CHECK(gets() == 1);
  CHECK(f.counters.errors == 0);

  f.Feed(f.Put("k", "w"));  // LSN 2, unconfirmed again
  f.engine.Poll(&f.dispatcher);
  REQUIRE(f.Replies().size() == 1);
  f.Feed(f.Req(Opcode::kScan, {proto::EncodeScanPayload(proto::ScanArgs{})}));
  REQUIRE(f.dispatcher.held_reads() == 1);
  f.dispatcher.ReleaseHeldReads(std::chrono::steady_clock::now() + 1001ms);
  auto r = f.Replies();
  REQUIRE(r.size() == 1);
  CHECK(r[0].first.status == Code::kIOError);
  CHECK(scans() == 1);
  CHECK(f.counters.errors == 1);

  f.Feed(f.Req(Opcode::kGet, {"k"}));  // a third read, failed by shutdown
  REQUIRE(f.dispatcher.held_reads() == 1);
  f.dispatcher.EndParkedReads();
  REQUIRE(f.Replies().size() == 1);
  CHECK(gets() == 2);
  CHECK(f.counters.errors == 2);
}

TEST_CASE("a GET answered ahead and held counts its request once, and an error once when it fails") {
  Fixture f;
  f.UnconfirmedWrite();
  const auto gets = [&] { return f.counters.ops[static_cast<size_t>(Op::kGet) % kOpCount]; };
  std::string in = f.Put("other", "1");
  in += f.Req(Opcode::kGet, {"k"});  // answered ahead, into a held slot
  f.Feed(in);
  REQUIRE(f.dispatcher.held_reads() == 1);
  f.engine.Poll(&f.dispatcher);
  f.dispatcher.ReleaseHeldReads(std::chrono::steady_clock::now() + 1001ms);
  auto r = f.Replies();
  REQUIRE(r.size() == 2);
  CHECK(r[1].first.status == Code::kIOError);
  CHECK(gets() == 1);
  CHECK(f.counters.errors == 1);
}

}  // namespace
}  // namespace kvd::daemon
