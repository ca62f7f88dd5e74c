#include "histogram.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <vector>

using kvctl::Histogram;

namespace {

// Nearest-rank percentile of a sorted array; q in thousandths of a percent.
uint64_t Reference(const std::vector<uint64_t>& sorted, uint64_t q_milli) {
  uint64_t rank = (q_milli * sorted.size() + 99999) / 100000;
  rank = std::clamp<uint64_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void CheckAgainstReference(const Histogram& h, std::vector<uint64_t> values) {
  std::sort(values.begin(), values.end());
  REQUIRE(h.count() == values.size());
  CHECK(h.max() == values.back());
  CHECK(h.min() == values.front());
  for (uint64_t q_milli : {1000ull, 10000ull, 50000ull, 90000ull, 99000ull, 99900ull, 99990ull, 100000ull}) {
    const uint64_t want = Reference(values, q_milli);
    const uint64_t got = h.Percentile(static_cast<double>(q_milli) / 1000.0);
    CAPTURE(q_milli);
    CAPTURE(want);
    CAPTURE(got);
    // Reported as the top of the true value's bucket: never below it, and
    // at most one bucket width (<= 1/64 of the value) above.
    CHECK(got >= want);
    CHECK(got - want <= want / 64);
    CHECK(Histogram::BucketIndex(got) == Histogram::BucketIndex(want));
  }
}

}  // namespace

TEST_CASE("bucket layout is contiguous and bounded") {
  for (size_t i = 0; i + 1 < Histogram::BucketIndex(Histogram::kMaxValue); ++i) {
    CAPTURE(i);
    REQUIRE(Histogram::BucketLow(i) <= Histogram::BucketHigh(i));
    REQUIRE(Histogram::BucketHigh(i) + 1 == Histogram::BucketLow(i + 1));
    REQUIRE(Histogram::BucketIndex(Histogram::BucketLow(i)) == i);
    REQUIRE(Histogram::BucketIndex(Histogram::BucketHigh(i)) == i);
    const uint64_t width = Histogram::BucketHigh(i) - Histogram::BucketLow(i);
    REQUIRE(width <= Histogram::BucketLow(i) / 64);
  }
}

TEST_CASE("small values are exact") {
  Histogram h;
  std::vector<uint64_t> v;
  for (uint64_t i = 1; i <= 100; ++i) {
    h.Record(i);
    v.push_back(i);
  }
  CHECK(h.Percentile(50) == 50);
  CHECK(h.Percentile(99) == 99);
  CHECK(h.Percentile(99.9) == 100);
  CHECK(h.Percentile(100) == 100);
  CHECK(h.mean() == doctest::Approx(50.5));
  CheckAgainstReference(h, v);
}

TEST_CASE("empty histogram reports zeros") {
  Histogram h;
  CHECK(h.count() == 0);
  CHECK(h.Percentile(50) == 0);
  CHECK(h.max() == 0);
  CHECK(h.min() == 0);
}

TEST_CASE("random latency-like distributions match a sorted-array reference") {
  const unsigned seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> lognormal(5.0, 1.2);  // ~150 us median, long tail
  for (int round = 0; round < 5; ++round) {
    Histogram h;
    std::vector<uint64_t> v;
    const size_t n = 1 + rng() % 200000;
    for (size_t i = 0; i < n; ++i) {
      uint64_t x = static_cast<uint64_t>(lognormal(rng));
      if (rng() % 1000 == 0) x = rng() % 50'000'000;  // rare huge outliers
      h.Record(x);
      v.push_back(x);
    }
    CheckAgainstReference(h, v);
  }
}

TEST_CASE("merging equals recording everything in one") {
  const unsigned seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  Histogram parts[3];
  Histogram all;
  std::vector<uint64_t> v;
  for (int i = 0; i < 30000; ++i) {
    // Threads with very different latencies: merged percentiles are not
    // averages of the per-thread ones.
    const int t = i % 3;
    const uint64_t x = (rng() % 1000) * (t == 2 ? 100 : 1);
    parts[t].Record(x);
    all.Record(x);
    v.push_back(x);
  }
  Histogram merged;
  for (auto& p : parts) merged.Merge(p);
  for (double q : {50.0, 90.0, 99.0, 99.9}) CHECK(merged.Percentile(q) == all.Percentile(q));
  CHECK(merged.max() == all.max());
  CheckAgainstReference(merged, v);
}

TEST_CASE("values past the range are clamped but max stays exact") {
  Histogram h;
  h.Record(Histogram::kMaxValue * 4);
  h.Record(1);
  CHECK(h.max() == Histogram::kMaxValue * 4);
  CHECK(h.Percentile(100) >= Histogram::BucketLow(Histogram::BucketIndex(Histogram::kMaxValue)));
  h.Reset();
  CHECK(h.count() == 0);
}
