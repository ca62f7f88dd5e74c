// The line protocol against an in-process fake kvd (tests/ctl/fake_kvd.h).
#include "repl.h"

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/fake_kvd.h"
#include "exit_codes.h"

using kvctl::ReplSession;
using kvctl::testing::FakeKvd;
using kvctl::testing::TempSocketPath;

namespace {
std::string Run(ReplSession& s, std::string_view line) {
  auto o = s.Execute(line);
  REQUIRE(o.reply.has_value());
  CHECK(o.reply->find('\n') == std::string::npos);  // one line per command
  return *o.reply;
}
}  // namespace

TEST_CASE("the original engine's commands, case-insensitive") {
  FakeKvd kvd(TempSocketPath("repl"));
  ReplSession s(kvd.path(), std::chrono::seconds(5), /*interactive=*/false);
  CHECK(Run(s, "PUT x 100") == "OK");
  CHECK(Run(s, "put y 200") == "OK");
  CHECK(Run(s, "Get x") == "100");
  CHECK(Run(s, "GET nope") == "(nil)");
  CHECK(Run(s, "SIZE") == "2");
  CHECK(Run(s, "FLUSH") == "OK lsn=2");
  CHECK(Run(s, "snap") == "OK lsn=2");
  CHECK(Run(s, "DEL x") == "OK");
  CHECK(Run(s, "DEL x") == "(nil)");
  CHECK(Run(s, "SETBATCH 5") == "OK");
  CHECK(kvd.Config("durability.batch_size") == "5");
  CHECK(Run(s, "SETBATCH 0").starts_with("ERR"));
  CHECK(Run(s, "SETBATCH five").starts_with("ERR"));
  const std::string bench = Run(s, "BENCH 200");
  CHECK(bench.starts_with("OK 200 puts in "));
  CHECK(bench.find(" ops/s") != std::string::npos);
  CHECK(kvd.Size() == 1 + 200);
  auto exit = s.Execute("exit");
  CHECK(exit.exit);
  CHECK(exit.reply == std::optional<std::string>("OK"));
  CHECK(s.Execute("QUIT").exit);
}

TEST_CASE("binary keys and values round trip through quoting") {
  FakeKvd kvd(TempSocketPath("repl"));
  ReplSession s(kvd.path(), std::chrono::seconds(5), false);
  CHECK(Run(s, R"(PUT "k\x00\xff" "a b\n\"c\"")") == "OK");
  CHECK(kvd.Value(std::string("k\0\xff", 3)) == std::optional<std::string>("a b\n\"c\""));
  CHECK(Run(s, R"(GET "k\x00\xff")") == R"("a b\n\"c\"")");
  CHECK(Run(s, R"x(PUT p "(nil)")x") == "OK");
  CHECK(Run(s, "GET p") == R"x("(nil)")x");  // never confused with an absent key
  CHECK(Run(s, R"(PUT e "")") == "OK");
  CHECK(Run(s, "GET e") == R"("")");
}

TEST_CASE("kvctl's own commands") {
  FakeKvd kvd(TempSocketPath("repl"));
  ReplSession s(kvd.path(), std::chrono::seconds(5), false);
  CHECK(Run(s, "PING") == "PONG");
  for (int i = 0; i < 5; ++i) CHECK(Run(s, "PUT a" + std::to_string(i) + " v" + std::to_string(i)) == "OK");
  CHECK(Run(s, "PUT b1 \"x y\"") == "OK");
  CHECK(Run(s, "COUNT a") == "5");
  CHECK(Run(s, "COUNT") == "6");
  kvd.set_scan_page(2);  // the REPL must follow continuations
  CHECK(Run(s, "SCAN a") == "a0 v0 a1 v1 a2 v2 a3 v3 a4 v4");
  CHECK(Run(s, "SCAN a 3") == "a0 v0 a1 v1 a2 v2");
  CHECK(Run(s, "SCAN b") == R"(b1 "x y")");
  CHECK(Run(s, "SCAN zzz") == "(empty)");
  CHECK(Run(s, "STATUS").starts_with("{\"version\":\"0.1.0\""));
  CHECK(Run(s, "CONFIG GET durability.mode") == "sync");
  CHECK(Run(s, "config set durability.mode batch") == "OK");
  CHECK(kvd.Config("durability.mode") == "batch");
  CHECK(Run(s, "CONFIG GET").starts_with("{"));
  CHECK(Run(s, "CONFIG SET nope 1").starts_with("ERR "));
  CHECK(Run(s, "CONFIG FROB").starts_with("ERR usage"));
}

TEST_CASE("errors are one ERR line and the session goes on") {
  FakeKvd kvd(TempSocketPath("repl"));
  ReplSession s(kvd.path(), std::chrono::seconds(5), false);
  CHECK(Run(s, "FROB x").starts_with("ERR unknown command"));
  CHECK(Run(s, "PUT x").starts_with("ERR wrong number of arguments"));
  CHECK(Run(s, "GET \"x").starts_with("ERR unterminated quote"));
  CHECK(Run(s, R"(GET "\q")").starts_with("ERR bad escape"));
  kvd.FailPuts(kvd::Code::kWritesRefused);
  CHECK(Run(s, "PUT a b") == "ERR injected failure");
  CHECK(Run(s, "BENCH 10").starts_with("ERR "));
  kvd.FailPuts(kvd::Code::kOk);
  CHECK(Run(s, "PUT a b") == "OK");
  CHECK_FALSE(s.Execute("").reply.has_value());
  CHECK_FALSE(s.Execute("   # comment").reply.has_value());
  CHECK(Run(s, "HELP").find("SETBATCH") != std::string::npos);
}

TEST_CASE("no server: ERR per command; a restarted server is picked up") {
  const std::string path = TempSocketPath("repl");
  ReplSession s(path, std::chrono::seconds(5), false);
  CHECK(Run(s, "GET x").starts_with("ERR "));
  CHECK(Run(s, "PUT x 1").starts_with("ERR "));
  {
    FakeKvd kvd(path);
    CHECK(Run(s, "PUT x 1") == "OK");
  }
  // The server went away under a live connection: reads retry once on a
  // fresh connection, so a restart is invisible to GET.
  FakeKvd again(path);
  again.Put("x", "restarted");
  CHECK(Run(s, "GET x") == "restarted");
}

TEST_CASE("RunRepl: exactly one reply line per command, in order, until EXIT") {
  FakeKvd kvd(TempSocketPath("repl"));
  std::istringstream in("PUT x 100\nPUT y 200\n\nFLUSH\nGET x\nGET \"y\"\nGET z\nbad \"\nSIZE\nEXIT\nGET x\n");
  std::ostringstream out;
  // The malformed line is answered with ERR in its place, and the exit status says so.
  CHECK(kvctl::RunRepl(kvd.path(), std::chrono::seconds(5), in, out, /*interactive=*/false) == kvctl::kExitUsage);
  CHECK(out.str() == "OK\nOK\nOK lsn=2\n100\n200\n(nil)\nERR unterminated quote at column 5\n2\nOK\n");
}

TEST_CASE("RunRepl from a pipe: exit 0 only when every command worked") {
  FakeKvd kvd(TempSocketPath("repl"));
  {
    std::istringstream in("PUT x 1\nGET x\nGET absent\nDEL absent\n");  // (nil) is an answer, not a failure
    std::ostringstream out;
    CHECK(kvctl::RunRepl(kvd.path(), std::chrono::seconds(5), in, out, false) == kvctl::kExitOk);
    CHECK(out.str() == "OK\n1\n(nil)\n(nil)\n");
  }
  {
    std::istringstream in("FROB\nPUT x 2\n");
    std::ostringstream out;
    CHECK(kvctl::RunRepl(kvd.path(), std::chrono::seconds(5), in, out, false) == kvctl::kExitUsage);
    CHECK(out.str() == "ERR unknown command 'FROB' (try HELP)\nOK\n");
  }
  {
    kvd.FailPuts(kvd::Code::kNoSpace);
    std::istringstream in("FROB\nPUT x 3\nGET x\n");  // a server failure outranks a usage error
    std::ostringstream out;
    CHECK(kvctl::RunRepl(kvd.path(), std::chrono::seconds(5), in, out, false) == kvctl::kExitServer);
    CHECK(out.str() == "ERR unknown command 'FROB' (try HELP)\nERR injected failure\n2\n");
  }
  {
    std::istringstream in("PING\n");
    std::ostringstream out;
    CHECK(kvctl::RunRepl(TempSocketPath("nobody"), std::chrono::seconds(5), in, out, false) == kvctl::kExitServer);
    CHECK(out.str().starts_with("ERR "));
  }
}
