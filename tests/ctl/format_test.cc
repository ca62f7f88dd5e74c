#include "format.h"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "tokenizer.h"

using namespace kvctl;

namespace {
void CheckRoundTrip(const std::string& s) {
  auto formatted = Tokenize(FormatToken(s));
  REQUIRE(formatted.has_value());
  REQUIRE(formatted->size() == 1);
  CHECK((*formatted)[0] == s);
  auto quoted = Tokenize(Quote(s));
  REQUIRE(quoted.has_value());
  REQUIRE(quoted->size() == 1);
  CHECK((*quoted)[0] == s);
  const std::string line = EscapeForLine(s);
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line.find('\t') == std::string::npos);
  for (char c : line) CHECK((c >= 0x20 && c <= 0x7e));
}
}  // namespace

TEST_CASE("every single byte round-trips through FormatToken and Quote") {
  for (int b = 0; b < 256; ++b) {
    CAPTURE(b);
    const std::string s(1, static_cast<char>(b));
    CheckRoundTrip(s);
    CheckRoundTrip("k" + s + "v");
    // A plain printable byte needs no quotes; everything else does.
    const bool plain = b >= 0x21 && b <= 0x7e && b != '"' && b != '\\' && b != '(';
    CHECK(NeedsQuoting(s) == !plain);
  }
}

TEST_CASE("all 256 byte values in one string, and random strings") {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  CheckRoundTrip(all);
  CheckRoundTrip("");
  const unsigned seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 20, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    CheckRoundTrip(s);
  }
}

TEST_CASE("a line of formatted tokens re-tokenizes to the same list") {
  const std::vector<std::string> tokens = {"PUT", "", "a b", "(nil)", std::string("\0\x01", 2), "\"q\"", "x\\y"};
  std::string line;
  for (const auto& t : tokens) line += FormatToken(t) + " ";
  auto again = Tokenize(line);
  REQUIRE(again.has_value());
  CHECK(*again == tokens);
}

TEST_CASE("exact renderings") {
  CHECK(FormatToken("hello") == "hello");
  CHECK(FormatToken("") == "\"\"");
  CHECK(FormatToken("a b") == "\"a b\"");
  CHECK(FormatToken("(nil)") == "\"(nil)\"");
  CHECK(Quote(std::string("\x00\xff\n\"\\", 5)) == R"("\x00\xff\n\"\\")");
  CHECK(EscapeForLine(std::string("a b\tc\\\x7f", 7)) == R"(a b\tc\\\x7f)");
}

TEST_CASE("human units") {
  CHECK(HumanBytes(0) == "0 B");
  CHECK(HumanBytes(1023) == "1023 B");
  CHECK(HumanBytes(1536) == "1.5 KiB");
  CHECK(HumanBytes(64ull << 20) == "64.0 MiB");
  CHECK(HumanSeconds(0.0005) == "500 us");
  CHECK(HumanSeconds(0.0123) == "12.3 ms");
  CHECK(HumanSeconds(4.2) == "4.20 s");
  CHECK(HumanSeconds(185) == "3m05s");
  CHECK(HumanSeconds(3725) == "1h02m");
  CHECK(HumanSeconds(2 * 86400 + 3 * 3600) == "2d03h");
}

TEST_CASE("EscapeForTerminal: text stays readable, no byte can drive the terminal") {
  CHECK(EscapeForTerminal("hello world") == "hello world");
  CHECK(EscapeForTerminal("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x99\x82") == "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x99\x82");
  CHECK(EscapeForTerminal("\x1b[31mred\x1b]0;title\x07") == "\\x1b[31mred\\x1b]0;title\\x07");
  CHECK(EscapeForTerminal("a\nb\tc\r\\") == "a\\nb\\tc\\r\\\\");
  CHECK(EscapeForTerminal(std::string("\0\x7f", 2)) == "\\x00\\x7f");
  CHECK(EscapeForTerminal("\xc2\x9b" "2J") == "\\xc2\\x9b2J");   // C1 CSI encoded as UTF-8
  CHECK(EscapeForTerminal("\x9b" "2J") == "\\x9b2J");            // raw C1 CSI
  CHECK(EscapeForTerminal("\xc0\xaf") == "\\xc0\\xaf");          // overlong '/'
  CHECK(EscapeForTerminal("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // a surrogate
  CHECK(EscapeForTerminal("\xe2\x82") == "\\xe2\\x82");          // truncated sequence
  // Whatever the input, the output is printable text on one line.
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  for (const char ch : EscapeForTerminal(all)) {
    const auto c = static_cast<unsigned char>(ch);
    CHECK((c >= 0x20 && c != 0x7f));
    CHECK((c < 0x80 || c > 0x9f));
  }
}
