// The serving core without a wire format: the Dispatcher driven with
// neutral Commands and a fake host, and a Session speaking a toy line
// protocol (tests/util/line_codec.h), which keeps the same ordering rules
// the native protocol has: they belong to the core, not to a codec.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "daemon/serve/dispatcher.h"
#include "daemon/serve/session.h"
#include "util/fake_dispatch_host.h"
#include "util/fake_engine.h"
#include "util/line_codec.h"

namespace kvd::daemon {
namespace {

struct Core {
  test::FakeEngine engine;
  test::FakeDispatchHost host;
  ServerCounters counters;
  Dispatcher dispatcher{&engine, &host, Dispatcher::Limits{}, &counters};
  test::LineCodec* codec;  // owned by the session
  Session session;

  Core() : Core(std::make_unique<test::LineCodec>()) {}
  explicit Core(std::unique_ptr<test::LineCodec> c)
      : codec(c.get()), session(3, &dispatcher, Session::Limits{}, std::move(c)) {
    host.sessions[3] = &session;
    host.status_json = "{\"status\":1}";
    host.unknown_config_key = "nope";
  }

  void Feed(std::string_view text) {
    auto space = session.input().Space(text.size());
    std::copy(text.begin(), text.end(), space.begin());
    session.input().Commit(text.size());
    session.Process();
  }
  std::vector<std::string> Lines() {
    session.Process();
    std::string out(session.BeginSend());
    session.SendDone();
    std::vector<std::string> lines;
    for (size_t at = 0; at < out.size();) {
      const size_t eol = out.find('\n', at);
      lines.push_back(out.substr(at, eol - at));
      at = eol + 1;
    }
    return lines;
  }
};

Command Cmd(Op op, std::string_view key = {}, std::string_view value = {}, uint64_t id = 1) {
  Command c;
  c.ref = {id, op, 0};
  c.key = key;
  c.value = value;
  return c;
}

TEST_CASE("dispatcher: neutral commands in, neutral replies out") {
  Core c;
  c.engine.mutable_state().Put("k1", "v1");
  c.engine.mutable_state().Put("k2", "v2");
  c.engine.mutable_state().Put("x", "y");
  Reply r;
  auto done = c.dispatcher.Evaluate(c.session, Cmd(Op::kGet, "k1", {}, 8), &r);
  REQUIRE(done.has_value());
  CHECK(*done == RequestHandler::Evaluated::kReplied);
  CHECK(r.ref.id == 8);
  CHECK(r.code == Code::kOk);
  CHECK(r.text == "v1");

  r = Reply{};
  REQUIRE(c.dispatcher.Evaluate(c.session, Cmd(Op::kCount, "k"), &r).has_value());
  CHECK(r.count == 2);

  Command scan = Cmd(Op::kScan);
  scan.scan.a = "k";
  r = Reply{};
  REQUIRE(c.dispatcher.Evaluate(c.session, scan, &r).has_value());
  REQUIRE(r.scan != nullptr);
  REQUIRE(r.scan->items.size() == 2);
  CHECK(r.scan->items[1].first == "k2");
  CHECK_FALSE(r.scan->more);

  r = Reply{};
  REQUIRE(c.dispatcher.Evaluate(c.session, Cmd(Op::kStatus), &r).has_value());
  CHECK(r.text == "{\"status\":1}");
  r = Reply{};
  REQUIRE(c.dispatcher.Evaluate(c.session, Cmd(Op::kConfigGet, "nope"), &r).has_value());
  CHECK(r.code == Code::kInvalidArgument);
  CHECK(r.text == "unknown config key: nope");

  // Counters are kept by operation, whatever the protocol.
  CHECK(c.counters.ops[static_cast<size_t>(Op::kGet)] == 1);
  CHECK(c.counters.ops[static_cast<size_t>(Op::kScan)] == 1);
  CHECK(c.counters.errors == 1);
}

TEST_CASE("dispatcher: a command's problem fails it alone unless fatal") {
  Core c;
  Command bad = Cmd(Op::kGet, "k");
  bad.problem = Status::TooLarge("key too large");
  Reply r;
  auto done = c.dispatcher.Evaluate(c.session, bad, &r);
  REQUIRE(done.has_value());
  CHECK(r.code == Code::kTooLarge);
  CHECK(r.text == "key too large");
  bad.fatal = true;
  CHECK(c.dispatcher.Evaluate(c.session, bad, &r).error().code() == Code::kTooLarge);

  // A write: the slot is answered with the problem, and nothing reaches the engine.
  Command put = Cmd(Op::kPut, "k", "v");
  put.problem = Status::TooLarge("value too large");
  const uint64_t seq = c.session.replies().Push(put.ref);
  CHECK(c.dispatcher.Submit(c.session, seq, put).ok());
  CHECK(c.engine.pending() == 0);
  CHECK(c.session.replies().size() == 1);
  CHECK(c.Lines() == std::vector<std::string>{"1 put TooLarge value too large"});
}

TEST_CASE("dispatcher: writes complete their slots when the engine reports them") {
  Core c;
  const BatchOp ops[] = {{OpType::kPut, "a", "1"}, {OpType::kPut, "b", "2"}};
  Command batch = Cmd(Op::kBatch);
  batch.batch = ops;
  uint64_t seq = c.session.replies().Push(batch.ref);
  REQUIRE(c.dispatcher.Submit(c.session, seq, batch).ok());
  Command del = Cmd(Op::kDel, "zz", {}, 2);
  seq = c.session.replies().Push(del.ref);
  REQUIRE(c.dispatcher.Submit(c.session, seq, del).ok());
  CHECK(c.dispatcher.pending_writes() == 2);
  CHECK(c.Lines().empty());
  c.engine.Poll(&c.dispatcher);
  CHECK(c.host.ready.size() == 2);
  CHECK(c.Lines() == std::vector<std::string>{"1 batch OK ", "2 del NotFound "});
  CHECK(c.engine.state().Get("b").value_or("") == "2");
}

TEST_CASE("session: the ordering rules hold for a protocol without request ids") {
  Core c;
  c.engine.mutable_state().Put("old", "0");
  // A GET behind its own key's pending PUT waits (and never sees the later
  // PUT); a GET of an untouched key is answered ahead; replies stay in order.
  c.Feed("PUT z 1\nGET old\nGET z\nPUT z 2\nGET z\n");
  CHECK(c.session.blocked());
  CHECK(c.dispatcher.pending_writes() == 1);  // the second PUT waits behind the GET of z
  CHECK(c.Lines().empty());
  c.engine.Poll(&c.dispatcher);
  CHECK(c.Lines() == std::vector<std::string>{"0 put OK ", "1 get OK 0", "2 get OK 1"});
  c.engine.Poll(&c.dispatcher);
  // The session numbered the requests itself (0, 1, 2, ...).
  CHECK(c.Lines() == std::vector<std::string>{"3 put OK ", "4 get OK 2"});
  CHECK(c.session.Quiescent());
  CHECK(c.session.Idle());
}

TEST_CASE("session: a blocked barrier is decoded again, to the same request id") {
  Core c;
  c.Feed("PUT a 1\nCOUNT \n");
  CHECK(c.session.blocked());
  const int decoded = c.codec->decoded;
  c.engine.Poll(&c.dispatcher);
  auto lines = c.Lines();
  CHECK(c.codec->decoded > decoded);
  CHECK(lines == std::vector<std::string>{"0 put OK ", "1 count OK 1"});
}

TEST_CASE("session: an incomplete request is not decoded again until more bytes arrive") {
  Core c;
  c.Feed("PUT a 1\nGET");  // a whole PUT, then the start of a GET
  CHECK(c.codec->decoded == 1);
  const int calls = c.codec->calls;
  // Process runs on every read and on every send round; with no new bytes
  // the same incomplete input is not parsed again.
  for (int i = 0; i < 3; ++i) c.session.Process();
  CHECK(c.codec->calls == calls);
  CHECK(c.session.Idle() == false);  // the PUT is still pending
  c.engine.Poll(&c.dispatcher);
  CHECK(c.Lines() == std::vector<std::string>{"0 put OK "});
  CHECK(c.session.Idle());  // only an incomplete request left
  CHECK(c.codec->calls == calls);
  c.Feed(" a\n");  // the rest arrives: decoded now, and answered
  CHECK(c.codec->decoded == 2);
  CHECK(c.Lines() == std::vector<std::string>{"1 get OK 1"});
}

TEST_CASE("session: an unknown command fails alone; a broken stream is answered in order, then closed") {
  Core c;
  c.Feed("PUT a 1\nNOSUCH\nPING\n!garbage\nPING\n");
  CHECK(c.session.blocked());  // the unknown command is a barrier like any read
  CHECK(c.Lines().empty());    // everything waits behind the PUT
  c.engine.Poll(&c.dispatcher);
  CHECK(c.Lines() == std::vector<std::string>{"0 put OK ", "1 ping Unsupported unknown command", "2 ping OK ",
                                              "3 ping InvalidArgument broken line"});
  CHECK(c.session.close_requested());  // the PING after the broken line is never run
  CHECK_FALSE(c.session.WantsRead());
  CHECK(c.session.bad_frames() == 1);
  CHECK(c.session.Quiescent());
}

TEST_CASE("session: FLUSH and SNAPSHOT keep their places in line") {
  Core c;
  c.Feed("PUT a 1\nFLUSH\nSNAPSHOT\nPING\n");
  CHECK(c.dispatcher.pending_flushes() == 1);  // submitted at once, like the write
  CHECK(c.host.snapshot_requests == 0);        // a barrier: waits for both
  c.engine.Poll(&c.dispatcher);
  CHECK(c.Lines() == std::vector<std::string>{"0 put OK ", "1 flush OK "});
  CHECK(c.host.snapshot_requests == 1);
  c.dispatcher.OnSnapshotDone(Status::Ok(), 1);
  CHECK(c.Lines() == std::vector<std::string>{"2 snapshot OK ", "3 ping OK "});
}

}  // namespace
}  // namespace kvd::daemon
