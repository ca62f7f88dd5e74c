// Log2Histogram: bucket edges (inclusive upper bounds), overflow, count and sum.
#include "kvd/log2_histogram.h"

#include <doctest/doctest.h>

namespace kvd {
namespace {

TEST_CASE("values land in the bucket whose inclusive upper bound is the next power of two") {
  Log2Histogram<4, 8> h;  // bounds 16 32 64 128 256, then +Inf
  static_assert(Log2Histogram<4, 8>::kBounds == 5);
  CHECK(h.Bound(0) == 16);
  CHECK(h.Bound(4) == 256);
  for (uint64_t v : {0u, 1u, 15u, 16u}) h.Add(v);  // all <= 16
  h.Add(17);                                        // (16, 32]
  h.Add(32);
  h.Add(33);   // (32, 64]
  h.Add(256);  // last bound, inclusive
  h.Add(257);  // above every bound
  h.Add(~uint64_t{0} >> 1);
  CHECK(h.counts()[0] == 4);
  CHECK(h.counts()[1] == 2);
  CHECK(h.counts()[2] == 1);
  CHECK(h.counts()[3] == 0);
  CHECK(h.counts()[4] == 1);
  CHECK(h.counts()[5] == 2);
  CHECK(h.count() == 10);
  CHECK(h.sum() == 0 + 1 + 15 + 16 + 17 + 32 + 33 + 256 + 257 + (~uint64_t{0} >> 1));
}

TEST_CASE("a histogram starting at 1 separates 1 and 2") {
  GroupSizeHistogram h;
  h.Add(1);
  h.Add(2);
  h.Add(3);
  CHECK(h.counts()[0] == 1);
  CHECK(h.counts()[1] == 1);
  CHECK(h.counts()[2] == 1);
  CHECK(h.Bound(16) == 65536);
}

}  // namespace
}  // namespace kvd
