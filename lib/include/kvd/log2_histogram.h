// Log2Histogram: counts of values in power-of-two buckets, the shape a
// Prometheus histogram exposes (cumulative `le` buckets, a count and a sum).
//
// Bucket i (0 <= i < kBounds) counts values v with
// Bound(i-1) < v <= Bound(i), where Bound(i) = 2^(kMinShift + i); bucket 0
// also counts everything <= 2^kMinShift, and the last bucket (index
// kBounds) counts everything above the largest bound (+Inf).
//
// Add() is a few instructions and never allocates: it is meant for hot
// paths. Not thread-safe: one owner thread writes it; others read copies
// the owner hands over.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace kvd {

template <int kMinShift, int kMaxShift>
class Log2Histogram {
  static_assert(0 <= kMinShift && kMinShift < kMaxShift && kMaxShift < 63);

 public:
  static constexpr size_t kBounds = static_cast<size_t>(kMaxShift - kMinShift + 1);

  // The inclusive upper bound of bucket i < kBounds.
  static constexpr uint64_t Bound(size_t i) { return uint64_t{1} << (static_cast<size_t>(kMinShift) + i); }

  void Add(uint64_t v) {
    // bit_width(v - 1) is k for v in (2^(k-1), 2^k].
    const int w = v <= 1 ? 0 : static_cast<int>(std::bit_width(v - 1));
    const int i = w <= kMinShift ? 0 : (w > kMaxShift ? static_cast<int>(kBounds) : w - kMinShift);
    ++counts_[static_cast<size_t>(i)];
    sum_ += v;
  }

  // counts()[i]: values in bucket i (not cumulative); counts()[kBounds]: above the last bound.
  const std::array<uint64_t, kBounds + 1>& counts() const { return counts_; }
  uint64_t sum() const { return sum_; }
  uint64_t count() const {
    uint64_t n = 0;
    for (uint64_t c : counts_) n += c;
    return n;
  }

 private:
  std::array<uint64_t, kBounds + 1> counts_{};
  uint64_t sum_ = 0;
};

// fdatasync latency in microseconds: 16 us .. 16.8 s.
using SyncLatencyHistogram = Log2Histogram<4, 24>;
// Records per synced group: 1 .. 65536.
using GroupSizeHistogram = Log2Histogram<0, 16>;

}  // namespace kvd
