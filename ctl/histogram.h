// A log-linear latency histogram (HdrHistogram's bucket layout, simplified).
//
// Values are unsigned integers (kvctl records microseconds). Values below
// 2^kPrecisionBits are counted exactly; above, each power-of-two range is
// split into 2^(kPrecisionBits-1) equal sub-buckets, so a reported
// percentile is never off by more than 1/64 (1.6%) of the true value.
// Values above kMaxValue are clamped to it; the exact maximum is kept
// separately. Not thread-safe: one per thread, then Merge().
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvctl {

class Histogram {
 public:
  static constexpr int kPrecisionBits = 7;
  static constexpr uint64_t kMaxValue = (uint64_t{1} << 40) - 1;  // ~12.7 days in us

  Histogram();

  void Record(uint64_t value) { RecordN(value, 1); }
  void RecordN(uint64_t value, uint64_t n);
  void Merge(const Histogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }

  // The value at percentile q (0 < q <= 100): the smallest recorded value v
  // such that at least q% of the values are <= v, reported as the upper
  // edge of v's bucket (capped by max()). 0 when empty.
  uint64_t Percentile(double q) const;

  // Bucket layout, exposed for tests.
  static size_t BucketIndex(uint64_t value);
  static uint64_t BucketLow(size_t index);
  static uint64_t BucketHigh(size_t index);  // inclusive

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace kvctl
