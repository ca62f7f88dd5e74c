// Session + Dispatcher without a socket: request order, pipelined reads
// behind pending writes, bad frames, and clients that leave with writes in
// flight. A fake engine models sync mode: writes are applied and reported
// only when the test calls Poll (the "fdatasync returned").
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "daemon/serve/dispatcher.h"
#include "daemon/serve/session.h"
#include "kvd/protocol.h"
#include "util/fake_dispatch_host.h"
#include "util/fake_engine.h"

namespace kvd::daemon {
namespace {

using proto::Opcode;

using test::FakeEngine;

struct Fixture {
  FakeEngine engine;
  test::FakeDispatchHost host;
  ServerCounters counters;
  Dispatcher dispatcher{&engine, &host, Dispatcher::Limits{}, &counters};
  Session session;
  uint64_t next_id = 1;

  explicit Fixture(Session::Limits limits = {}) : session(7, &dispatcher, limits) { host.sessions[7] = &session; }
  // A value already in the map (as if written and synced long ago).
  void Preload(std::string_view k, std::string_view v) { const_cast<State*>(&engine.state())->Put(k, v); }

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
  // Everything sent so far, decoded.
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

TEST_CASE("a GET pipelined behind a PUT waits for it, and never sees a later PUT") {
  Fixture f;
  // Built one statement at a time: request ids follow the order.
  std::string in = f.Put("z", "1");
  in += f.Req(Opcode::kGet, {"z"});
  in += f.Put("z", "2");
  in += f.Req(Opcode::kGet, {"z"});
  f.Feed(in);
  // Nothing is durable yet: no reply may leave, and the GET is blocked.
  CHECK(f.Replies().empty());
  CHECK(f.session.blocked());
  f.engine.Poll(&f.dispatcher);  // first PUT durable
  auto r1 = f.Replies();
  REQUIRE(r1.size() == 2);
  CHECK(r1[0].first.opcode == Opcode::kPut);
  CHECK(r1[0].first.lsn == 1);
  CHECK(r1[1].first.opcode == Opcode::kGet);
  CHECK(r1[1].second == "1");  // not "2": the second PUT was not submitted yet
  f.engine.Poll(&f.dispatcher);
  auto r2 = f.Replies();
  REQUIRE(r2.size() == 2);
  CHECK(r2[0].first.lsn == 2);
  CHECK(r2[1].second == "2");
  CHECK(r2[1].first.request_id == 4);
}

TEST_CASE("latency: each reply is timed from its request's read to the write that sent it, by operation") {
  using std::chrono::microseconds;
  RequestLatency latency;
  Session::Limits limits;
  limits.latency = &latency;
  Fixture f(limits);
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  std::string in = f.Put("z", "1");
  in += f.Req(Opcode::kGet, {"z"});  // blocked behind the PUT
  in += f.Req(Opcode::kPing);
  f.session.NoteRead(t0);
  f.Feed(in);
  auto send = [&](std::chrono::steady_clock::time_point at) {
    f.session.Process();
    const size_t bytes = f.session.BeginSend().size();
    f.session.SendDoneAt(at);
    return bytes;
  };
  CHECK(send(t0 + microseconds(10)) == 0);  // nothing encoded yet: nothing timed
  auto counted = [&](Op op) { return latency.by_op[static_cast<size_t>(op)].count(); };
  CHECK(counted(Op::kPut) == 0);
  f.engine.Poll(&f.dispatcher);  // the PUT is durable; GET and PING go through, read at t0 (no read since)
  send(t0 + microseconds(3000));
  CHECK(counted(Op::kPut) == 1);
  CHECK(counted(Op::kGet) == 1);
  CHECK(counted(Op::kPing) == 1);
  CHECK(latency.by_op[static_cast<size_t>(Op::kPut)].sum() == 3000);
  CHECK(latency.by_op[static_cast<size_t>(Op::kPut)].counts()[12] == 1);  // (2048, 4096] us
  // A failed send times nothing; the next request is timed from its own read.
  f.session.NoteRead(t0 + microseconds(5000));
  f.Feed(f.Req(Opcode::kPing));
  f.session.Process();
  (void)f.session.BeginSend();
  f.session.SendDone();
  CHECK(counted(Op::kPing) == 1);
  f.session.NoteRead(t0 + microseconds(6000));
  f.Feed(f.Req(Opcode::kPing));
  send(t0 + microseconds(6007));
  CHECK(counted(Op::kPing) == 2);
  CHECK(latency.by_op[static_cast<size_t>(Op::kPing)].sum() == 3000 + 7);
  // A bad frame's error reply is sent but timed under no operation.
  std::string bad = f.Req(Opcode::kPing);
  bad[4] = 'X';
  f.Feed(bad);
  CHECK(send(t0 + microseconds(7000)) > 0);
  uint64_t total = 0;
  for (const auto& h : latency.by_op) total += h.count();
  CHECK(total == 4);  // PUT, GET, two PINGs
}

TEST_CASE("latency off (no RequestLatency): SendDoneAt works as SendDone") {
  Fixture f;
  f.Feed(f.Req(Opcode::kPing));
  f.session.Process();
  CHECK(f.session.BeginSend().size() > 0);
  f.session.SendDoneAt(std::chrono::steady_clock::now());
  CHECK(f.session.Quiescent());
}

TEST_CASE("a GET of a key no pending write touches is answered ahead; the writes after it go on") {
  Fixture f;
  f.Feed(f.Put("old", "0"));
  f.engine.Poll(&f.dispatcher);
  REQUIRE(f.Replies().size() == 1);
  const Lsn durable_before = f.engine.durable_lsn();

  std::string in = f.Put("a", "1");
  in += f.Req(Opcode::kGet, {"old"});      // untouched by the pending PUT: answered now
  in += f.Req(Opcode::kGet, {"missing"});  // likewise, NotFound
  in += f.Put("b", "2");                   // submitted at once, into the same group
  in += f.Req(Opcode::kGet, {"b"});        // its own pending write: waits
  in += f.Put("c", "3");                   // behind the waiting GET: not yet
  f.Feed(in);
  CHECK(f.session.blocked());
  CHECK(f.dispatcher.pending_writes() == 2);  // a and b, in one group; not c
  CHECK(f.Replies().empty());                 // replies still leave in request order

  f.engine.Poll(&f.dispatcher);  // a and b durable
  auto r = f.Replies();
  REQUIRE(r.size() == 5);
  for (size_t i = 0; i < r.size(); ++i) CHECK(r[i].first.request_id == 2 + i);
  CHECK(r[1].first.status == Code::kOk);
  CHECK(r[1].second == "0");
  CHECK(r[2].first.status == Code::kNotFound);
  CHECK(r[4].second == "2");
  // The GETs answered ahead were built before a and b were durable; the
  // durable_lsn sent still never goes backwards along the connection.
  CHECK(r[1].first.durable_lsn >= r[0].first.durable_lsn);
  CHECK(r[0].first.durable_lsn > durable_before);
  CHECK(f.dispatcher.pending_writes() == 1);  // c went in once the GET of b was answered
  f.engine.Poll(&f.dispatcher);
  REQUIRE(f.Replies().size() == 1);
}

TEST_CASE("a node that may not answer as the primary answers no GET ahead: it refuses in order") {
  Fixture f;
  f.Preload("old", "0");
  f.host.read_gate = Status::Fenced("no current read lease");
  f.Feed(f.Put("a", "1") + f.Req(Opcode::kGet, {"old"}));
  CHECK(f.session.blocked());  // not answered ahead, though no pending write touches "old"
  CHECK(f.Replies().empty());
  f.engine.Poll(&f.dispatcher);
  auto r = f.Replies();
  REQUIRE(r.size() == 2);
  CHECK(r[0].first.status == Code::kOk);
  CHECK(r[1].first.status == Code::kFenced);
  CHECK(r[1].second == "no current read lease");
}

TEST_CASE("a GET answered ahead never sees a later write, nor misses an earlier one of its batch") {
  Fixture f;
  f.Feed(f.Put("k", "before"));
  f.engine.Poll(&f.dispatcher);
  REQUIRE(f.Replies().size() == 1);
  std::string in = f.Put("other", "x");
  in += f.Req(Opcode::kGet, {"k"});  // ahead: reads "before"
  in += f.Put("k", "after");        // submitted at once, but after the GET was read
  in += f.Req(Opcode::kDel, {"k"});
  in += f.Req(Opcode::kGet, {"k"});  // its own pending PUT and DEL: waits, then NotFound
  f.Feed(in);
  f.engine.Poll(&f.dispatcher);
  auto r = f.Replies();
  REQUIRE(r.size() == 5);
  CHECK(r[1].second == "before");
  CHECK(r[4].first.status == Code::kNotFound);
}

TEST_CASE("a DEL_RANGE is a write barrier for GETs of the keys it covers, and only those") {
  Fixture f;
  f.Preload("p:1", "x");
  f.Preload("p:2", "y");
  f.Preload("q", "z");
  std::string in = f.Req(Opcode::kDelRange, {proto::EncodeDelRangePayload(KeyRange{true, "p:", ""})});
  in += f.Req(Opcode::kGet, {"q"});    // not covered: answered ahead
  in += f.Req(Opcode::kGet, {"p:1"});  // covered: waits for the range delete
  f.Feed(in);
  CHECK(f.session.blocked());
  CHECK(f.Replies().empty());
  f.engine.Poll(&f.dispatcher);
  auto r = f.Replies();
  REQUIRE(r.size() == 3);
  CHECK(r[0].first.opcode == Opcode::kDelRange);
  CHECK(r[0].first.status == Code::kOk);
  CHECK(r[0].first.lsn == 1);
  CHECK(proto::DecodeU64(AsBytes(r[0].second)).value() == 2);  // the keys it deleted
  CHECK(r[1].second == "z");
  CHECK(r[2].first.status == Code::kNotFound);  // never the value from before the delete

  // A range [a, b): a GET of b is not covered and goes ahead; one inside waits.
  f.Preload("m", "1");
  f.Preload("n", "2");
  in = f.Req(Opcode::kDelRange, {proto::EncodeDelRangePayload(KeyRange{false, "m", "n"})});
  in += f.Req(Opcode::kGet, {"n"});
  f.Feed(in);
  CHECK_FALSE(f.session.blocked());
  in = f.Req(Opcode::kGet, {"m"});
  f.Feed(in);
  CHECK(f.session.blocked());
  f.engine.Poll(&f.dispatcher);
  r = f.Replies();
  REQUIRE(r.size() == 3);
  CHECK(proto::DecodeU64(AsBytes(r[0].second)).value() == 1);
  CHECK(r[1].second == "2");
  CHECK(r[2].first.status == Code::kNotFound);
}

TEST_CASE("consecutive writes are all submitted at once (one group) and answered in order") {
  Fixture f;
  std::string in;
  for (int i = 0; i < 64; ++i) in += f.Put("k" + std::to_string(i), "v");
  in += f.Req(Opcode::kFlush);
  f.Feed(in);
  CHECK(f.dispatcher.pending_writes() == 64);
  CHECK(f.dispatcher.pending_flushes() == 1);
  f.engine.Poll(&f.dispatcher);
  auto r = f.Replies();
  REQUIRE(r.size() == 65);
  for (int i = 0; i < 64; ++i) {
    CHECK(r[i].first.request_id == static_cast<uint64_t>(i + 1));
    CHECK(r[i].first.lsn == static_cast<Lsn>(i + 1));
  }
  CHECK(r[64].first.opcode == Opcode::kFlush);
  CHECK(r[64].first.lsn == 64);
}

TEST_CASE("DEL of an absent key answers NotFound with its LSN") {
  Fixture f;
  f.Feed(f.Req(Opcode::kDel, {"nope"}));
  f.engine.Poll(&f.dispatcher);
  auto r = f.Replies();
  REQUIRE(r.size() == 1);
  CHECK(r[0].first.status == Code::kNotFound);
  CHECK(r[0].first.lsn == 1);
}

TEST_CASE("a bad frame is answered after the pending replies, then the session closes") {
  Fixture f;
  std::string in = f.Put("a", "1");
  std::string bad = f.Req(Opcode::kPing);
  bad[4] = 'X';  // magic
  in += bad;
  in += f.Req(Opcode::kPing);
  f.Feed(in);
  CHECK(f.session.close_requested());
  CHECK_FALSE(f.session.WantsRead());
  CHECK(f.Replies().empty());  // the error waits behind the PUT
  f.engine.Poll(&f.dispatcher);
  auto r = f.Replies();
  REQUIRE(r.size() == 2);  // the PING after the bad frame is never run
  CHECK(r[0].first.status == Code::kOk);
  CHECK(r[1].first.status == Code::kUnsupported);
  CHECK(r[1].first.request_id == 2);
  CHECK(f.session.Quiescent());
}

TEST_CASE("an oversized length prefix is refused before anything is buffered for it") {
  Fixture f;
  std::string frame = f.Req(Opcode::kPing);
  frame[0] = frame[1] = frame[2] = frame[3] = '\xff';
  f.Feed(frame);
  auto r = f.Replies();
  REQUIRE(r.size() == 1);
  CHECK(r[0].first.status == Code::kTooLarge);
  CHECK(r[0].first.request_id == 1);  // read from the header that did arrive
  CHECK(f.session.close_requested());
  CHECK(f.session.input().capacity() < 1024 * 1024);
}

TEST_CASE("a client that left with writes in flight: the writes complete, replies are dropped") {
  Fixture f;
  std::string in = f.Put("a", "1");
  in += f.Put("b", "2");
  f.Feed(in);
  f.host.sessions.clear();  // disconnected
  f.engine.Poll(&f.dispatcher);
  CHECK(f.dispatcher.pending_writes() == 0);
  CHECK(f.host.ready.empty());
  CHECK(f.engine.state().Get("b").value_or("") == "2");
}

TEST_CASE("refused writes get the engine's error and the host hears of it") {
  Fixture f;
  f.engine.refusal = Status::WritesRefused("fdatasync failed");
  std::string in = f.Put("a", "1");
  in += f.Req(Opcode::kGet, {"a"});
  f.Feed(in);
  auto r = f.Replies();
  REQUIRE(r.size() == 2);
  CHECK(r[0].first.status == Code::kWritesRefused);
  CHECK(r[1].first.status == Code::kNotFound);  // reads keep working
  CHECK(f.host.write_errors == 1);
}

TEST_CASE("SNAPSHOT waits for the running snapshot if it covers the request, else for a fresh one") {
  Fixture f;
  f.Feed(f.Put("a", "1"));
  f.engine.Poll(&f.dispatcher);
  f.Feed(f.Req(Opcode::kSnapshot));
  CHECK(f.host.snapshot_requests == 1);
  f.dispatcher.OnSnapshotDone(Status::Ok(), 0);  // an older snapshot finishing
  CHECK(f.host.snapshot_requests == 2);           // not enough: another one
  auto r0 = f.Replies();
  REQUIRE(r0.size() == 1);  // only the PUT
  f.dispatcher.OnSnapshotDone(Status::Ok(), 1);
  auto r = f.Replies();
  REQUIRE(r.size() == 1);
  CHECK(r[0].first.opcode == Opcode::kSnapshot);
  CHECK(r[0].first.lsn == 1);
}

Session::Limits SmallReplyLimit() {
  Session::Limits lim;
  lim.max_pending_reply_bytes = 4096;
  return lim;
}

TEST_CASE("backpressure: processing and reading pause while unsent replies exceed the limit") {
  Fixture f(SmallReplyLimit());
  Session& s = f.session;
  f.Preload("big", std::string(1000, 'x'));
  std::string in;
  for (int i = 0; i < 50; ++i) in += f.Req(Opcode::kGet, {"big"});
  f.Feed(in);
  CHECK_FALSE(s.WantsRead());
  CHECK(s.unsent_bytes() <= 4096 + 1100);
  CHECK(s.unsent_bytes() > 4096);
  size_t total = 0;
  int rounds = 0;
  while (s.HasOutput() && rounds++ < 100) {
    total += s.BeginSend().size();
    s.SendDone();
    s.Process();
  }
  CHECK(total == 50 * (4 + 32 + 1000));
  CHECK(s.WantsRead());
}

TEST_CASE("backpressure: GETs answered ahead of a pending write count against the same limit") {
  Fixture f(SmallReplyLimit());
  Session& s = f.session;
  f.Preload("big", std::string(1000, 'x'));
  std::string in = f.Put("w", "v");  // pending: nothing drains
  for (int i = 0; i < 50; ++i) in += f.Req(Opcode::kGet, {"big"});
  f.Feed(in);
  // A few GETs were answered ahead, then the rest wait: what is held stays
  // within the limit plus one value.
  CHECK(s.replies().size() > 1);
  CHECK(s.replies().size() < 10);
  CHECK(s.replies().held_bytes() <= 4096 + 1000);
  CHECK(s.blocked());
  CHECK(s.unsent_bytes() == 0);
  f.engine.Poll(&f.dispatcher);  // the PUT is durable: everything drains in order, within the limit
  // Bound: the limit, plus the one reply that crossed it, plus the frame
  // headers (40 bytes each) of the few slots held at that moment.
  const uint64_t bound = 4096 + 1000 + 10 * 40;
  size_t replies = 0;
  int rounds = 0;
  for (s.Process(); (s.HasOutput() || !s.replies().empty()) && rounds++ < 200; s.Process()) {
    CHECK(s.unsent_bytes() <= bound);
    std::string_view out = s.BeginSend();
    for (auto data = AsBytes(out); !data.empty();) {
      auto n = proto::SplitFrame(data, 1 << 30, proto::kReplyHeaderBytes);
      REQUIRE(n.has_value());
      REQUIRE(n->has_value());
      ++replies;
      data = data.subspan(**n);
    }
    s.SendDone();
  }
  CHECK(replies == 51);
}

}  // namespace
}  // namespace kvd::daemon
