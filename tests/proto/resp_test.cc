// RESP parser and writer: Redis's request forms, its protocol error texts,
// every split point of a pipeline, hostile lengths, and both reply versions.
#include "kvd/resp.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kvd::resp {
namespace {

std::vector<std::string> Args(const CommandParser& p) {
  std::vector<std::string> v;
  for (std::string_view a : p.args()) v.emplace_back(a);
  return v;
}

// Parses `in` expecting one protocol error, and returns its text.
std::string ErrorOf(std::string_view in, ParserLimits limits = {}) {
  CommandParser p(limits);
  Parsed r = p.Parse(in);
  REQUIRE(r.outcome == ParseOutcome::kProtocolError);
  return std::string(r.error);
}

TEST_CASE("multibulk commands, binary-safe") {
  CommandParser p;
  const std::string in = std::string("*3\r\n$3\r\nSET\r\n$4\r\nk\r\nx\r\n$3\r\na") + '\0' + "b\r\n";
  Parsed r = p.Parse(in);
  REQUIRE(r.outcome == ParseOutcome::kCommand);
  CHECK(r.consumed == in.size());
  CHECK_FALSE(r.is_inline);
  CHECK(Args(p) == std::vector<std::string>{"SET", "k\r\nx", std::string("a\0b", 3)});
}

TEST_CASE("a pipeline parses command by command at every split point") {
  const std::vector<std::vector<std::string_view>> cmds = {
      {"SET", "key", "value"}, {"GET", "key"}, {"MSET", "a", "", "b", "1234567890"}};
  std::string in;
  std::vector<size_t> ends;
  for (const auto& c : cmds) {
    in += EncodeCommand(c);
    ends.push_back(in.size());
  }
  // Every prefix: the first command is either complete (and exact) or the
  // parser asks for more, never more than the command needs.
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    CommandParser p;
    Parsed r = p.Parse(std::string_view(in).substr(0, cut));
    if (cut < ends[0]) {
      REQUIRE(r.outcome == ParseOutcome::kNeedMore);
      CHECK(r.need_bytes > cut);
      CHECK(r.need_bytes <= ends[0]);
    } else {
      REQUIRE(r.outcome == ParseOutcome::kCommand);
      CHECK(r.consumed == ends[0]);
    }
  }
  CommandParser p;
  std::string_view rest = in;
  for (const auto& c : cmds) {
    Parsed r = p.Parse(rest);
    REQUIRE(r.outcome == ParseOutcome::kCommand);
    REQUIRE(p.args().size() == c.size());
    for (size_t i = 0; i < c.size(); ++i) CHECK(p.args()[i] == c[i]);
    rest.remove_prefix(r.consumed);
  }
  CHECK(rest.empty());
  CHECK(p.Parse(rest).outcome == ParseOutcome::kNeedMore);
}

TEST_CASE("empty commands are parsed with no arguments, as Redis skips them") {
  for (std::string_view in : {"*0\r\n", "*-1\r\n", "\r\n", "   \r\n", "\n"}) {
    CommandParser p;
    Parsed r = p.Parse(in);
    REQUIRE(r.outcome == ParseOutcome::kCommand);
    CHECK(r.consumed == in.size());
    CHECK(p.args().empty());
  }
}

TEST_CASE("protocol errors carry Redis's texts") {
  CHECK(ErrorOf("*abc\r\n") == "Protocol error: invalid multibulk length");
  CHECK(ErrorOf("*01\r\n") == "Protocol error: invalid multibulk length");
  CHECK(ErrorOf("*+1\r\n") == "Protocol error: invalid multibulk length");
  CHECK(ErrorOf("*2147483648\r\n") == "Protocol error: invalid multibulk length");
  CHECK(ErrorOf("*1\rX") == "Protocol error: invalid multibulk length");
  CHECK(ErrorOf("*2\r\n:1\r\n") == "Protocol error: expected '$', got ':'");
  CHECK(ErrorOf("*1\r\n$-5\r\n") == "Protocol error: invalid bulk length");
  CHECK(ErrorOf("*1\r\n$x\r\n") == "Protocol error: invalid bulk length");
  CHECK(ErrorOf("*1\r\n$1\r\nab\r\n") == "Protocol error: bulk string not followed by CRLF");
  CHECK(ErrorOf("SET \"a b\"c\r\n") == "Protocol error: unbalanced quotes in request");
  CHECK(ErrorOf("SET \"abc\r\n") == "Protocol error: unbalanced quotes in request");
  CHECK(ErrorOf("SET 'ab'c\r\n") == "Protocol error: unbalanced quotes in request");
}

TEST_CASE("lengths are read as Redis's string2ll reads them: no sign, no leading zero, no overflow") {
  // Short lengths take a fast path, long ones from_chars: both are checked.
  auto bulk_len = [](std::string_view len) {
    ParserLimits unbounded;
    unbounded.max_bulk_bytes = UINT64_MAX;  // the length's syntax alone decides
    CommandParser p(unbounded);
    return p.Parse("*1\r\n$" + std::string(len) + "\r\n");
  };
  CHECK(bulk_len("0").outcome == ParseOutcome::kNeedMore);
  CHECK(bulk_len("123456789012345678").outcome == ParseOutcome::kNeedMore);   // 18 digits
  CHECK(bulk_len("1234567890123456789").outcome == ParseOutcome::kNeedMore);  // 19 digits
  CHECK(bulk_len("1234567890123456789").need_bytes > 1234567890123456789ull);
  for (std::string_view bad : {"00", "01", "+1", "-1", "1a", "a1", "1 ", " 1", "-0", "", "9223372036854775808",
                               "99999999999999999999", "123456789012345678x"}) {
    CHECK_MESSAGE(bulk_len(bad).outcome == ParseOutcome::kProtocolError, bad);
  }
  CommandParser p;
  const Parsed r = p.Parse("*2\r\n$3\r\nGET\r\n$10\r\n0123456789\r\n");
  REQUIRE(r.outcome == ParseOutcome::kCommand);
  CHECK(p.args()[1] == "0123456789");
  CHECK(p.Parse("*-1\r\n").outcome == ParseOutcome::kCommand);  // a null array: an empty command
}

TEST_CASE("hostile lengths are refused or cost nothing until the bytes arrive") {
  ParserLimits limits;
  limits.max_bulk_bytes = 1024;
  limits.max_args = 100;
  CHECK(ErrorOf("*1\r\n$1025\r\n", limits) == "Protocol error: invalid bulk length");
  CHECK(ErrorOf("*101\r\n", limits) == "Protocol error: invalid multibulk length");
  CHECK(ErrorOf("SET" + std::string(64 * 1024, 'x')) == "Protocol error: too big inline request");
  CHECK(ErrorOf("*" + std::string(64 * 1024, '1')) == "Protocol error: too big mbulk count string");
  CHECK(ErrorOf("*1\r\n$" + std::string(64 * 1024, '1')) == "Protocol error: too big bulk count string");

  // A huge announced count is not allocated up front.
  CommandParser p;
  Parsed r = p.Parse("*1000000\r\n$3\r\nGET\r\n");
  REQUIRE(r.outcome == ParseOutcome::kNeedMore);
  // A bulk announced at the limit asks for exactly its bytes.
  CommandParser q(limits);
  r = q.Parse("*1\r\n$1024\r\nab");
  REQUIRE(r.outcome == ParseOutcome::kNeedMore);
  CHECK(r.need_bytes == std::string("*1\r\n$1024\r\n").size() + 1024 + 2);
}

TEST_CASE("inline commands split as redis-cli does") {
  CommandParser p;
  Parsed r = p.Parse("SET \"a b\" 'c\\'d' \"\\x41\\n\\t\\\\\" plain\r\nGET x\r\n");
  REQUIRE(r.outcome == ParseOutcome::kCommand);
  CHECK(r.is_inline);
  CHECK(Args(p) == std::vector<std::string>{"SET", "a b", "c'd", "A\n\t\\", "plain"});
  CHECK(r.consumed == std::string("SET \"a b\" 'c\\'d' \"\\x41\\n\\t\\\\\" plain\r\n").size());

  // A quote inside a word opens a quoted part of the same word (sdssplitargs).
  r = p.Parse("set ab\"c d\" e\n");
  REQUIRE(r.outcome == ParseOutcome::kCommand);
  CHECK(Args(p) == std::vector<std::string>{"set", "abc d", "e"});

  // A NUL byte ends the line, as sdssplitargs reads a C string.
  r = p.Parse(std::string("get k\0ignored\r\n", 15));
  REQUIRE(r.outcome == ParseOutcome::kCommand);
  CHECK(Args(p) == std::vector<std::string>{"get", "k"});
  CHECK(r.consumed == 15);

  CHECK(p.Parse("PING").outcome == ParseOutcome::kNeedMore);
}

TEST_CASE("replies in RESP2 and RESP3") {
  auto both = [](auto&& write) {
    std::string two, three;
    ReplyWriter w2(&two, 2), w3(&three, 3);
    write(w2);
    write(w3);
    return std::pair{two, three};
  };
  CHECK(both([](ReplyWriter& w) { w.Simple("OK"); }) == std::pair<std::string, std::string>{"+OK\r\n", "+OK\r\n"});
  CHECK(both([](ReplyWriter& w) { w.Error("ERR bad\r\nthing"); }).first == "-ERR bad  thing\r\n");
  CHECK(both([](ReplyWriter& w) { w.Integer(-42); }).first == ":-42\r\n");
  CHECK(both([](ReplyWriter& w) { w.Integer(INT64_MIN); }).first == ":-9223372036854775808\r\n");
  CHECK(both([](ReplyWriter& w) { w.Array(0); }).first == "*0\r\n");
  CHECK(both([](ReplyWriter& w) { w.Bulk(std::string("a\0\r\n", 4)); }).first ==
        std::string("$4\r\na\0\r\n\r\n", 10));
  CHECK(both([](ReplyWriter& w) { w.Null(); }) == std::pair<std::string, std::string>{"$-1\r\n", "_\r\n"});
  CHECK(both([](ReplyWriter& w) { w.NullArray(); }) == std::pair<std::string, std::string>{"*-1\r\n", "_\r\n"});
  CHECK(both([](ReplyWriter& w) { w.Map(2); }) == std::pair<std::string, std::string>{"*4\r\n", "%2\r\n"});
  CHECK(both([](ReplyWriter& w) { w.Set(3); }) == std::pair<std::string, std::string>{"*3\r\n", "~3\r\n"});
  CHECK(both([](ReplyWriter& w) { w.Bool(true); }) == std::pair<std::string, std::string>{":1\r\n", "#t\r\n"});
  CHECK(both([](ReplyWriter& w) { w.Double(1.5); }) ==
        std::pair<std::string, std::string>{"$3\r\n1.5\r\n", ",1.5\r\n"});
  CHECK(both([](ReplyWriter& w) { w.Double(-1.0 / 0.0); }).second == ",-inf\r\n");
  CHECK(both([](ReplyWriter& w) { w.Verbatim("a:b"); }) ==
        std::pair<std::string, std::string>{"$3\r\na:b\r\n", "=7\r\ntxt:a:b\r\n"});
}

TEST_CASE("EncodeCommand round-trips through the parser") {
  const std::vector<std::string_view> args = {"MSET", "", std::string_view("\0\r\n*$", 5), "v"};
  std::string in = EncodeCommand(args);
  CHECK(in.substr(0, 4) == "*4\r\n");
  CommandParser p;
  Parsed r = p.Parse(in);
  REQUIRE(r.outcome == ParseOutcome::kCommand);
  REQUIRE(p.args().size() == args.size());
  for (size_t i = 0; i < args.size(); ++i) CHECK(p.args()[i] == args[i]);
}

}  // namespace
}  // namespace kvd::resp
