// KVD_FUZZ_CHECK: an invariant of a fuzz target. On failure it prints the
// condition and aborts, which libFuzzer records as a crash (and saves the
// input), and which fails the regression test that replays that input.
#pragma once

#include <cstdio>
#include <cstdlib>

#define KVD_FUZZ_CHECK(cond)                                                              \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)
