// Replays fuzz/regressions/kvctl_tokenizer/ and its corpus through the fuzz
// target's logic, so past findings stay fixed in the ordinary test run.
#include <doctest/doctest.h>

#include "fuzz/kvctl_tokenizer_target.h"
#include "fuzz/replay.h"

TEST_CASE("kvctl tokenizer fuzz inputs") {
  const auto files = kvd::fuzz::FuzzInputs("kvctl_tokenizer", /*include_corpus=*/true);
  CHECK(files.size() >= 10);  // the checked-in seeds are found
  for (const auto& f : files) {
    CAPTURE(f.string());
    const std::string input = kvd::fuzz::ReadInput(f);
    CHECK(kvd::fuzz::KvctlTokenizerTarget(reinterpret_cast<const uint8_t*>(input.data()), input.size()) == 0);
  }
}
