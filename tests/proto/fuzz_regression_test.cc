// Replays every checked-in input of the frame decoder's fuzz target (its
// crash regressions and its seed corpus) through the same entry function the
// fuzzer calls, plus a short run on random bytes. A failing invariant aborts
// with the condition; the file being replayed is printed first.
#include <doctest/doctest.h>

#include <cstdio>
#include <random>

#include "fuzz/frame_decoder_target.h"
#include "fuzz/replay.h"

namespace kvd::fuzz {

TEST_CASE("frame_decoder: checked-in regressions and corpus replay cleanly") {
  const auto files = FuzzInputs("frame_decoder", /*include_corpus=*/true);
  // The seed corpus is checked in: an empty list means the path is wrong.
  REQUIRE(files.size() >= 12);
  for (const auto& f : files) {
    std::fprintf(stderr, "replay %s\n", f.c_str());
    const std::string data = ReadInput(f);
    CHECK(FrameDecoderTarget(reinterpret_cast<const uint8_t*>(data.data()), data.size()) == 0);
  }
}

TEST_CASE("frame_decoder: mutated seeds") {
  const uint32_t seed = std::random_device{}();
  CAPTURE(seed);
  std::fprintf(stderr, "mutation seed %u\n", seed);
  std::mt19937 rng(seed);
  const auto files = FuzzInputs("frame_decoder", /*include_corpus=*/true);
  REQUIRE_FALSE(files.empty());
  for (int i = 0; i < 5000; i++) {
    std::string data = ReadInput(files[rng() % files.size()]);
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int j = 0; j < flips && !data.empty(); j++) data[rng() % data.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0 && !data.empty()) data.resize(rng() % data.size());
    CHECK(FrameDecoderTarget(reinterpret_cast<const uint8_t*>(data.data()), data.size()) == 0);
  }
}

}  // namespace kvd::fuzz
