// Fuzz target logic for kvctl's line tokenizer and token formatting
// (ctl/tokenizer.h, ctl/format.h). Shared by fuzz/kvctl_tokenizer_fuzz.cc
// (libFuzzer) and tests/ctl/kvctl_fuzz_regression_test.cc (replays
// fuzz/regressions/kvctl_tokenizer/ and the corpus).
//
// Invariants, for any input line:
//  - Tokenize never crashes; an error is kInvalidArgument;
//  - if it tokenizes, joining FormatToken() of each token with spaces
//    tokenizes back to the same list (what the REPL prints can be typed back);
//  - the whole input taken as one value: FormatToken and Quote each
//    tokenize back to exactly that value, and EscapeForLine has no tab,
//    newline or non-printable byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "format.h"
#include "fuzz/fuzz_check.h"
#include "tokenizer.h"

namespace kvd::fuzz {

inline int KvctlTokenizerTarget(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  auto tokens = kvctl::Tokenize(line);
  if (tokens.has_value()) {
    std::string joined;
    for (const std::string& t : *tokens) {
      KVD_FUZZ_CHECK(t.size() <= line.size());
      joined += kvctl::FormatToken(t);
      joined += ' ';
    }
    auto again = kvctl::Tokenize(joined);
    KVD_FUZZ_CHECK(again.has_value());
    KVD_FUZZ_CHECK(*again == *tokens);
  } else {
    KVD_FUZZ_CHECK(tokens.error().code() == Code::kInvalidArgument);
  }
  for (const std::string& rendered : {kvctl::FormatToken(line), kvctl::Quote(line)}) {
    auto one = kvctl::Tokenize(rendered);
    KVD_FUZZ_CHECK(one.has_value());
    KVD_FUZZ_CHECK(one->size() == 1);
    KVD_FUZZ_CHECK((*one)[0] == line);
  }
  for (const char c : kvctl::EscapeForLine(line)) KVD_FUZZ_CHECK(c >= 0x20 && c <= 0x7e);
  return 0;
}

}  // namespace kvd::fuzz
