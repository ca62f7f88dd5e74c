#include "tokenizer.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using kvctl::Tokenize;
using Tokens = std::vector<std::string>;

namespace {
Tokens Ok(std::string_view line) {
  auto r = Tokenize(line);
  REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
  return *r;
}
std::string Err(std::string_view line) {
  auto r = Tokenize(line);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == kvd::Code::kInvalidArgument);
  return r.error().message();
}
}  // namespace

TEST_CASE("bare tokens split on any whitespace") {
  CHECK(Ok("") == Tokens{});
  CHECK(Ok("   \t ") == Tokens{});
  CHECK(Ok("PUT x 100") == Tokens{"PUT", "x", "100"});
  CHECK(Ok("  get\t\tkey  \r\n") == Tokens{"get", "key"});
  // Quotes and backslashes inside a bare word are ordinary bytes.
  CHECK(Ok(R"(a"b c\d)") == Tokens{"a\"b", "c\\d"});
}

TEST_CASE("quoted tokens and escapes") {
  CHECK(Ok(R"(PUT "hello world" "")") == Tokens{"PUT", "hello world", ""});
  CHECK(Ok(R"("a\"b\\c")") == Tokens{"a\"b\\c"});
  CHECK(Ok(R"("\n\t\r")") == Tokens{"\n\t\r"});
  CHECK(Ok(R"("\x00\xff\x41\xAb")") == Tokens{std::string("\x00\xff" "A\xab", 4)});
  CHECK(Ok(R"(x "y"	z)") == Tokens{"x", "y", "z"});
  // A raw tab or other byte inside quotes is kept.
  CHECK(Ok("\"a\tb\"") == Tokens{"a\tb"});
}

TEST_CASE("errors name the problem") {
  CHECK(Err(R"(PUT "abc)").find("unterminated quote") != std::string::npos);
  CHECK(Err(R"("abc\)").find("unterminated") != std::string::npos);
  CHECK(Err(R"("\q")").find("bad escape") != std::string::npos);
  CHECK(Err(R"("\x4")").find("\\x") != std::string::npos);
  CHECK(Err(R"("\xg0")").find("\\x") != std::string::npos);
  CHECK(Err(R"("ab"cd)").find("followed by a space") != std::string::npos);
  CHECK(Err(R"(x "unterminated)").find("column 3") != std::string::npos);
}
