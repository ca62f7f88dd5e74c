// The RESP front end without a socket: RespCodec + RespHandler in front of
// the real Dispatcher and a fake engine that models sync mode (writes are
// applied and acknowledged only when the test calls Poll, "the fdatasync
// returned"). Checks the command mapping, Redis's error texts, reply order
// and the atomicity of conditional writes across clients.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/resp/resp_codec.h"
#include "daemon/resp/resp_config.h"
#include "daemon/resp/resp_handler.h"
#include "daemon/resp/resp_scan.h"
#include "daemon/resp/resp_writes.h"
#include "daemon/serve/session.h"
#include "kvd/resp.h"
#include "util/fake_dispatch_host.h"
#include "util/fake_engine.h"

namespace kvd::daemon {
namespace {

using test::FakeEngine;

std::string Cmd(std::initializer_list<std::string_view> args) {
  std::vector<std::string_view> v(args);
  return resp::EncodeCommand(v);
}

struct Fixture {
  FakeEngine engine;
  test::FakeDispatchHost host;
  ServerCounters counters;
  Dispatcher dispatcher;
  RespHandler handler{&dispatcher, &host};
  std::vector<std::unique_ptr<Session>> sessions;

  static Dispatcher::Limits WithUntrack(uint64_t after) {
    Dispatcher::Limits l;
    l.untrack_pending_after_writes = after;
    return l;
  }
  explicit Fixture(int clients = 1, std::string password = "", uint64_t untrack_after = 1u << 20)
      : dispatcher(&engine, &host, WithUntrack(untrack_after), &counters) {
    host.status_json = R"({"keys":2,"uptime_s":5,"connections":{"current":3}})";
    host.config_json = R"({"durability.mode":"sync","durability.batch_size":"64","log.level":"info"})";
    for (int i = 0; i < clients; ++i) {
      const uint64_t id = 10 + static_cast<uint64_t>(i);
      sessions.push_back(std::make_unique<Session>(
          id, &handler, Session::Limits{}, std::make_unique<RespCodec>(RespLimits{}, password, id)));
      host.sessions[id] = sessions.back().get();
    }
  }
  Session& s(size_t i = 0) { return *sessions[i]; }
  void Feed(std::string_view bytes, size_t client = 0) {
    auto space = s(client).input().Space(bytes.size());
    std::copy(bytes.begin(), bytes.end(), space.begin());
    s(client).input().Commit(bytes.size());
    s(client).Process();
  }
  // Every byte sent so far to one client.
  std::string Out(size_t client = 0) {
    s(client).Process();
    std::string bytes(s(client).BeginSend());
    s(client).SendDone();
    return bytes;
  }
  void Sync() {
    engine.Poll(&dispatcher);
    for (auto& x : sessions) x->Process();
  }
};

TEST_CASE("a SET is answered only after its write is durable; GET, MSET and MGET map onto the engine") {
  Fixture f;
  f.Feed(Cmd({"SET", "k", "v"}));
  CHECK(f.Out().empty());  // not durable yet
  f.Sync();
  CHECK(f.Out() == "+OK\r\n");
  f.Feed(Cmd({"get", "k"}) + Cmd({"GET", "nope"}));
  CHECK(f.Out() == "$1\r\nv\r\n$-1\r\n");
  f.Feed(Cmd({"MSET", "a", std::string_view("\0\xff", 2), "b", "2"}));
  f.Sync();
  CHECK(f.Out() == "+OK\r\n");
  CHECK(f.engine.state().Get("a") == std::string_view("\0\xff", 2));
  f.Feed(Cmd({"MGET", "a", "zz", "b"}) + Cmd({"EXISTS", "a", "b", "a", "zz"}) + Cmd({"DBSIZE"}) + Cmd({"TYPE", "b"}));
  CHECK(f.Out() == std::string("*3\r\n$2\r\n\0\xff\r\n$-1\r\n$1\r\n2\r\n", 24) + ":3\r\n:3\r\n+string\r\n");
}

TEST_CASE("pipelined writes keep their order and a conditional write sees the earlier pending ones") {
  Fixture f;
  f.Feed(Cmd({"SET", "k", "a"}) + Cmd({"SET", "k", "b", "NX"}) + Cmd({"SET", "k", "c", "XX", "GET"}) +
         Cmd({"GETDEL", "k"}) + Cmd({"SETNX", "k", "d"}) + Cmd({"DEL", "k", "k", "other"}));
  CHECK(f.Out().empty());
  f.Sync();  // the first SET: the first conditional write waited for it (tracking began there)
  CHECK(f.Out() == "+OK\r\n$-1\r\n");
  CHECK(f.engine.pending() == 4);  // the rest decided against pending values, not the State
  f.Sync();
  CHECK(f.Out() == "$1\r\na\r\n$1\r\nc\r\n:1\r\n:1\r\n");
  CHECK_FALSE(f.engine.state().Get("k").has_value());
}

TEST_CASE("pending values are kept from the first conditional write on, which waits for the writes before it") {
  Fixture f(2, "", /*untrack_after=*/4);
  f.Feed(Cmd({"SET", "k", "1"}), 0);
  CHECK_FALSE(f.dispatcher.tracking_pending_values());
  CHECK(f.dispatcher.pending_values().empty());  // plain writes copy nothing
  f.Feed(Cmd({"SETNX", "k", "2"}) + Cmd({"GET", "k"}), 1);
  CHECK(f.dispatcher.tracking_pending_values());
  CHECK(f.engine.pending() == 1);  // the SETNX waits: client 0's SET was not tracked
  CHECK(f.Out(1).empty());
  f.host.ready.clear();
  f.engine.Poll(&f.dispatcher);  // the SET applied: client 1 is made ready to decide
  CHECK(std::count(f.host.ready.begin(), f.host.ready.end(), 11u) == 1);
  f.Sync();
  CHECK(f.Out(0) == "+OK\r\n");
  CHECK(f.Out(1) == ":0\r\n$1\r\n1\r\n");
  // Tracked now: a conditional write decides at once against a pending write.
  f.Feed(Cmd({"SET", "k", "3"}), 0);
  CHECK(f.dispatcher.pending_values().size() == 1);
  f.Feed(Cmd({"SET", "k", "4", "XX", "GET"}), 1);
  CHECK(f.engine.pending() == 2);
  f.Sync();
  CHECK(f.Out(0) == "+OK\r\n");
  CHECK(f.Out(1) == "$1\r\n3\r\n");
  CHECK(f.engine.state().Get("k") == "4");
  // untrack_after writes without a conditional one: nothing is kept any more.
  for (int i = 0; i < 4; ++i) f.Feed(Cmd({"SET", "k", std::to_string(10 + i)}), 0);
  CHECK_FALSE(f.dispatcher.tracking_pending_values());
  CHECK(f.dispatcher.pending_values().empty());
  // The next conditional write starts again and waits for those.
  f.Feed(Cmd({"SET", "k", "x", "NX", "GET"}), 1);
  CHECK(f.engine.pending() == 4);
  CHECK(f.Out(1).empty());
  f.Sync();
  f.Sync();
  CHECK(f.Out(1) == "$2\r\n13\r\n");
  CHECK(f.engine.state().Get("k") == "13");
}

TEST_CASE("conditional writes from two clients are serialized against writes not yet durable") {
  Fixture f(2);
  f.Feed(Cmd({"SET", "k", "1"}), 0);          // pending, not applied
  f.Feed(Cmd({"SETNX", "k", "2"}), 1);        // must see client 0's write
  f.Feed(Cmd({"MSETNX", "k", "3", "j", "3"}), 1);
  CHECK(f.engine.pending() == 1);             // the SETNX and MSETNX wrote nothing
  CHECK(f.Out(1).empty());                    // their answer read a value not yet durable: it waits
  f.Sync();
  CHECK(f.Out(0) == "+OK\r\n");
  CHECK(f.Out(1) == ":0\r\n:0\r\n");
  CHECK(f.engine.state().Get("k") == "1");
  CHECK_FALSE(f.engine.state().Get("j").has_value());
  // A decision on durable data alone is answered at once.
  f.Feed(Cmd({"SETNX", "k", "9"}), 1);
  CHECK(f.Out(1) == ":0\r\n");
}

TEST_CASE("a node that may not answer as the primary refuses RESP's own reads as it refuses GET") {
  Fixture f;
  f.Feed(Cmd({"SET", "k", "v"}));
  f.Sync();
  CHECK(f.Out() == "+OK\r\n");
  f.host.read_gate = Status::Fenced("no current read lease");
  for (const std::string& cmd : {Cmd({"GET", "k"}), Cmd({"EXISTS", "k"}), Cmd({"MGET", "k"}), Cmd({"TYPE", "k"}),
                                 Cmd({"DBSIZE"}), Cmd({"KEYS", "*"}), Cmd({"SCAN", "0"})}) {
    f.Feed(cmd);
    CHECK(f.Out() == "-ERR no current read lease\r\n");
  }
  // A conditional write that decides to write nothing answers from the data too.
  for (const std::string& cmd : {Cmd({"SETNX", "k", "x"}), Cmd({"SET", "k", "x", "NX", "GET"}),
                                 Cmd({"GETDEL", "nope"}), Cmd({"DEL", "nope"})}) {
    f.Feed(cmd);
    CHECK(f.Out() == "-ERR no current read lease\r\n");
  }
  CHECK(f.engine.pending() == 0);
  f.Feed(Cmd({"PING"}));  // not a read of the data
  CHECK(f.Out() == "+PONG\r\n");
}

TEST_CASE("Redis's error texts; only a protocol error closes the connection") {
  Fixture f;
  f.Feed(Cmd({"FOO", "a", "b"}) + Cmd({"GET"}) + Cmd({"SET", "k", "v", "EX", "10"}) + Cmd({"SET", "k", "v", "NX", "XX"}) +
         Cmd({"SELECT", "1"}) + Cmd({"SELECT", "0"}) + Cmd({"PING"}) + Cmd({"ECHO", "hi"}));
  CHECK(f.Out() ==
        "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n"
        "-ERR wrong number of arguments for 'get' command\r\n"
        "-ERR kvd has no key expiry: SET EX is not supported\r\n"
        "-ERR syntax error\r\n"
        "-ERR DB index is out of range\r\n"
        "+OK\r\n+PONG\r\n$2\r\nhi\r\n");
  CHECK_FALSE(f.s().close_requested());
  f.Feed("*1\r\n$-5\r\n");
  CHECK(f.Out() == "-ERR Protocol error: invalid bulk length\r\n");
  CHECK(f.s().close_requested());
}

TEST_CASE("QUIT answers +OK after the replies before it, then closes") {
  Fixture f;
  f.Feed(Cmd({"SET", "k", "v"}) + Cmd({"QUIT"}) + Cmd({"GET", "k"}));
  f.Sync();
  CHECK(f.Out() == "+OK\r\n+OK\r\n");
  CHECK(f.s().close_requested());
  CHECK(f.s().bad_frames() == 0);  // a goodbye, not a protocol error
}

TEST_CASE("with a password every command but AUTH, HELLO and QUIT needs AUTH first") {
  Fixture f(1, "sesame");
  f.Feed(Cmd({"GET", "k"}) + Cmd({"AUTH", "wrong"}) + Cmd({"AUTH", "sesame"}) + Cmd({"GET", "k"}));
  CHECK(f.Out() ==
        "-NOAUTH Authentication required.\r\n"
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        "+OK\r\n$-1\r\n");
}

TEST_CASE("HELLO 3 switches later replies to RESP3; replies before it stay RESP2") {
  Fixture f;
  f.Feed(Cmd({"GET", "x"}) + Cmd({"HELLO", "3"}) + Cmd({"GET", "x"}) + Cmd({"CONFIG", "GET", "durability.*"}));
  const std::string out = f.Out();
  CHECK(out.starts_with("$-1\r\n%7\r\n"));
  CHECK(out.find("$5\r\nproto\r\n:3\r\n") != std::string::npos);
  CHECK(out.ends_with("_\r\n%2\r\n$21\r\ndurability.batch_size\r\n$2\r\n64\r\n$15\r\ndurability.mode\r\n$4\r\nsync\r\n"));
}

TEST_CASE("SCAN walks every key once with a numeric cursor; KEYS and MATCH filter by glob") {
  Fixture f;
  for (int i = 0; i < 25; ++i) {
    const std::string k = (i % 2 == 0 ? "p" : "q") + std::to_string(100 + i);
    const_cast<State*>(&f.engine.state())->Put(k, "v");
  }
  std::vector<std::string> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    f.Feed(Cmd({"SCAN", cursor, "MATCH", "p*", "COUNT", "4"}));
    const std::string out = f.Out();
    // *2 \r\n $n \r\n cursor \r\n *m ...
    size_t pos = out.find("\r\n", 4) + 2;
    const size_t end = out.find("\r\n", pos);
    cursor = out.substr(pos, end - pos);
    pos = end + 2;
    const size_t m = std::stoul(out.substr(pos + 1));
    pos = out.find("\r\n", pos) + 2;
    for (size_t i = 0; i < m; ++i) {
      const size_t len = std::stoul(out.substr(pos + 1));
      pos = out.find("\r\n", pos) + 2;
      seen.push_back(out.substr(pos, len));
      pos += len + 2;
    }
    ++calls;
  } while (cursor != "0" && calls < 100);
  CHECK(seen.size() == 13);
  for (const std::string& k : seen) CHECK(k.starts_with("p"));
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  CHECK(calls == 4);
  f.Feed(Cmd({"KEYS", "q10[1-3]"}) + Cmd({"SCAN", "999999", "COUNT", "1"}));
  CHECK(f.Out() == "*2\r\n$4\r\nq101\r\n$4\r\nq103\r\n-ERR invalid cursor\r\n");
}

TEST_CASE("DecideWrite agrees with a model of Redis's conditional writes") {
  std::mt19937 rng(17);
  std::map<std::string, std::string> model;
  std::vector<std::string> keys = {"a", "b", "c"};
  for (int step = 0; step < 2000; ++step) {
    const std::string k1 = keys[rng() % 3], k2 = keys[rng() % 3], v = std::to_string(step);
    const int which = static_cast<int>(rng() % 6);
    auto lookup = [&](std::string_view key, bool*) -> std::optional<std::string_view> {
      auto it = model.find(std::string(key));
      if (it == model.end()) return std::nullopt;
      return std::string_view(it->second);
    };
    WriteDecision d;
    std::string expect;
    auto get = [&](const std::string& k) { return model.count(k) ? "$" + std::to_string(model[k].size()) + "\r\n" + model[k] + "\r\n" : std::string("$-1\r\n"); };
    std::vector<std::string_view> args;
    std::map<std::string, std::string> after = model;
    switch (which) {
      case 0:  // SET k v NX GET
        args = {k1, v};
        DecideWrite(RespCmd::kSet, RespTag::kNx | RespTag::kGet, args, lookup, &d);
        expect = get(k1);
        if (!model.count(k1)) after[k1] = v;
        break;
      case 1:  // SET k v XX
        args = {k1, v};
        DecideWrite(RespCmd::kSet, RespTag::kXx, args, lookup, &d);
        expect = model.count(k1) ? "+OK\r\n" : "$-1\r\n";
        if (model.count(k1)) after[k1] = v;
        break;
      case 2:
        args = {k1, v};
        DecideWrite(RespCmd::kSetNx, 0, args, lookup, &d);
        expect = model.count(k1) ? ":0\r\n" : ":1\r\n";
        if (!model.count(k1)) after[k1] = v;
        break;
      case 3:
        args = {k1};
        DecideWrite(RespCmd::kGetDel, 0, args, lookup, &d);
        expect = get(k1);
        after.erase(k1);
        break;
      case 4: {
        args = {k1, k2};
        DecideWrite(RespCmd::kDel, 0, args, lookup, &d);
        const size_t n = model.count(k1) + (k2 != k1 ? model.count(k2) : 0);
        expect = ":" + std::to_string(n) + "\r\n";
        after.erase(k1);
        after.erase(k2);
        break;
      }
      default: {
        args = {k1, v, k2, v};
        DecideWrite(RespCmd::kMSetNx, 0, args, lookup, &d);
        const bool any = model.count(k1) || model.count(k2);
        expect = any ? ":0\r\n" : ":1\r\n";
        if (!any) after[k1] = after[k2] = v;
        break;
      }
    }
    REQUIRE(d.reply == expect);
    for (const BatchOp& o : d.ops) {
      if (o.type == OpType::kPut) {
        model[std::string(o.key)] = std::string(o.value);
      } else {
        REQUIRE(model.erase(std::string(o.key)) == 1);  // deletes only what exists
      }
    }
    REQUIRE(model == after);
  }
}

TEST_CASE("glob patterns and their literal prefix") {
  CHECK(GlobMatch("p*", "prefix"));
  CHECK_FALSE(GlobMatch("p*", "xp"));
  CHECK(GlobMatch("a?c", "abc"));
  CHECK(GlobMatch("*b*", "abc"));
  CHECK(GlobMatch("[^x]y", "zy"));
  CHECK_FALSE(GlobMatch("[^x]y", "xy"));
  CHECK(GlobMatch("a\\*", "a*"));
  CHECK_FALSE(GlobMatch("a\\*", "ab"));
  CHECK(LiteralPrefix("user:1*") == "user:1");
  CHECK(LiteralPrefix("a\\*b?") == "a*b");
  CHECK(LiteralPrefix("*") == "");
}

TEST_CASE("[resp]: a listener outside loopback needs a password") {
  auto bad = ParseConfig("[resp]\nlisten = \"0.0.0.0:6380\"\n", "t.toml");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message().find("resp.password") != std::string::npos);
  CHECK(ParseConfig("[resp]\nlisten = \"0.0.0.0:6380\"\npassword = \"x\"\n", "t.toml").has_value());
  auto local = ParseConfig("[resp]\nlisten = \"127.0.0.1:6380\"\nsocket = \"r.sock\"\n", "t.toml");
  REQUIRE(local.has_value());
  CHECK(RespEnabled(*local));
  CHECK_FALSE(RespEnabled(Config{}));
  CHECK_FALSE(ParseConfig("[resp]\nlisten = \"nohost\"\n", "t.toml").has_value());
  CHECK_FALSE(ParseConfig("[server]\nsocket = \"a.sock\"\n[resp]\nsocket = \"a.sock\"\n", "t.toml").has_value());
  CHECK(IsLoopback(HostPort{"::1", 6380}));
  CHECK_FALSE(IsLoopback(HostPort{"10.0.0.1", 6380}));
}

}  // namespace
}  // namespace kvd::daemon
