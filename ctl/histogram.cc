#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace kvctl {
namespace {

constexpr uint64_t kExact = uint64_t{1} << Histogram::kPrecisionBits;  // 128
constexpr uint64_t kHalf = kExact / 2;                                  // 64 sub-buckets per octave

}  // namespace

// Index layout: [0, 128) exact; then for e = 1, 2, ...: the values with
// bit_width == kPrecisionBits + e land in [64 * (e + 1), 64 * (e + 2)),
// sub-bucket (value >> e) - 64.
size_t Histogram::BucketIndex(uint64_t value) {
  if (value < kExact) return static_cast<size_t>(value);
  const int e = std::bit_width(value) - kPrecisionBits;
  return static_cast<size_t>(static_cast<uint64_t>(e) * kHalf + (value >> e));
}

uint64_t Histogram::BucketLow(size_t index) {
  if (index < kExact) return index;
  const uint64_t e = index / kHalf - 1;
  const uint64_t sub = index % kHalf + kHalf;
  return sub << e;
}

uint64_t Histogram::BucketHigh(size_t index) {
  if (index < kExact) return index;
  const uint64_t e = index / kHalf - 1;
  return BucketLow(index) + (uint64_t{1} << e) - 1;
}

Histogram::Histogram() : counts_(BucketIndex(kMaxValue) + 1, 0) {}

void Histogram::RecordN(uint64_t value, uint64_t n) {
  if (n == 0) return;
  max_ = std::max(max_, value);
  min_ = std::min(min_, value);
  count_ += n;
  sum_ += value * n;
  counts_[BucketIndex(std::min(value, kMaxValue))] += n;
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = sum_ = max_ = 0;
  min_ = UINT64_MAX;
}

uint64_t Histogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 100.0);
  // Nearest rank (1-based) in sorted order: ceil(q/100 * count), in exact
  // integer arithmetic on q in thousandths of a percent, so 99.9% of 1000
  // values is rank 999 and not 1000 through a rounding error.
  const auto q_milli = static_cast<unsigned __int128>(std::llround(q * 1000.0));
  auto rank = static_cast<uint64_t>((q_milli * count_ + 99999) / 100000);
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(BucketHigh(i), max_);
  }
  return max_;
}

}  // namespace kvctl
