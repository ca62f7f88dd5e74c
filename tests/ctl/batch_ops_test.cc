// `kvctl batch` operation syntax: arguments and stdin lines.
#include "batch_ops.h"

#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

using namespace kvctl;

TEST_CASE("arguments: put KEY VALUE and del KEY, verbs in any case") {
  const std::vector<std::string> args = {"put", "a", "1", "DEL", "b", "Put", "c", ""};
  auto r = ParseBatchArgs(args);
  REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
  REQUIRE(r->size() == 3);
  CHECK(((*r)[0].type == kvd::OpType::kPut && (*r)[0].key == "a" && (*r)[0].value == "1"));
  CHECK(((*r)[1].type == kvd::OpType::kDel && (*r)[1].key == "b"));
  CHECK(((*r)[2].type == kvd::OpType::kPut && (*r)[2].key == "c" && (*r)[2].value.empty()));
  const auto ops = BatchOpsOf(*r);
  REQUIRE(ops.size() == 3);
  CHECK(ops[1].type == kvd::OpType::kDel);
  CHECK(ops[2].key == "c");
}

TEST_CASE("arguments: malformed batches are refused with the place") {
  using Args = std::vector<std::string>;
  for (const auto& [args, want] : std::vector<std::pair<Args, std::string>>{
           {{}, "no operations"},
           {{"put", "a"}, "argument 1: put needs KEY VALUE"},
           {{"del"}, "argument 1: del needs KEY"},
           {{"put", "a", "1", "frob", "x"}, "argument 4: expected put or del, got 'frob'"}}) {
    auto r = ParseBatchArgs(args);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == kvd::Code::kInvalidArgument);
    CHECK_MESSAGE(r.error().message().find(want) != std::string::npos, r.error().message());
  }
}

TEST_CASE("stdin: one operation per line, REPL tokens, comments and blank lines skipped") {
  std::istringstream in("# set up\nPUT a 1\n\n  del b\nput \"k\\x00\" \"two words\"\n");
  auto r = ParseBatchLines(in);
  REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
  REQUIRE(r->size() == 3);
  CHECK((*r)[1].type == kvd::OpType::kDel);
  CHECK((*r)[2].key == std::string("k\0", 2));
  CHECK((*r)[2].value == "two words");
}

TEST_CASE("stdin: errors name the line") {
  for (const auto& [text, want] : std::vector<std::pair<std::string, std::string>>{
           {"", "no operations"},
           {"# nothing\n", "no operations"},
           {"PUT a 1\nPUT a 1 DEL b\n", "line 2: one operation per line"},
           {"PUT a 1\nDEL\n", "line 2: del needs KEY"},
           {"PUT \"a 1\n", "line 1"},
           {"GET a\n", "line 1: expected put or del, got 'GET'"}}) {
    std::istringstream in(text);
    auto r = ParseBatchLines(in);
    REQUIRE_FALSE(r.has_value());
    CHECK_MESSAGE(r.error().message().find(want) != std::string::npos, r.error().message());
  }
}
