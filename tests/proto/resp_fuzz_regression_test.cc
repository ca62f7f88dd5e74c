// Replays the RESP parser's checked-in fuzz inputs (seed corpus and any crash
// regressions) and mutations of them through the fuzz target's own checks.
#include <doctest/doctest.h>

#include <cstdio>
#include <random>

#include "fuzz/replay.h"
#include "fuzz/resp_parser_target.h"

namespace kvd::fuzz {

TEST_CASE("resp_parser: checked-in inputs replay cleanly") {
  const auto files = FuzzInputs("resp_parser", /*include_corpus=*/true);
  REQUIRE(files.size() >= 8);  // the seed corpus is checked in
  for (const auto& f : files) {
    std::fprintf(stderr, "replay %s\n", f.c_str());
    const std::string data = ReadInput(f);
    CHECK(RespParserTarget(reinterpret_cast<const uint8_t*>(data.data()), data.size()) == 0);
  }
}

TEST_CASE("resp_parser: mutated seeds") {
  const uint32_t seed = std::random_device{}();
  CAPTURE(seed);
  std::fprintf(stderr, "mutation seed %u\n", seed);
  std::mt19937 rng(seed);
  const auto files = FuzzInputs("resp_parser", /*include_corpus=*/true);
  REQUIRE_FALSE(files.empty());
  for (int i = 0; i < 20000; i++) {
    std::string data = ReadInput(files[rng() % files.size()]);
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int j = 0; j < flips && !data.empty(); j++) data[rng() % data.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0 && !data.empty()) data.resize(rng() % data.size());
    CHECK(RespParserTarget(reinterpret_cast<const uint8_t*>(data.data()), data.size()) == 0);
  }
}

}  // namespace kvd::fuzz
