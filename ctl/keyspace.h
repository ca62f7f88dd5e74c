// Bench keys: a prefix ("bench:" by default, so a run's keys can be found
// and deleted) followed by 12 decimal digits, written in place so the load
// generator formats a key without allocating. Keys sort like their numbers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvctl {

inline constexpr size_t kBenchKeyDigits = 12;
inline constexpr uint64_t kMaxKeySpace = 1'000'000'000'000ull;  // 12 digits
inline constexpr std::string_view kDefaultBenchPrefix = "bench:";

class BenchKeys {
 public:
  explicit BenchKeys(std::string prefix = std::string(kDefaultBenchPrefix)) : prefix_(std::move(prefix)) {}

  const std::string& prefix() const { return prefix_; }
  size_t size() const { return prefix_.size() + kBenchKeyDigits; }

  // Writes the key for index i (< kMaxKeySpace) into out[0..size()).
  void Format(uint64_t i, char* out) const {
    prefix_.copy(out, prefix_.size());
    for (size_t pos = size(); pos-- > prefix_.size();) {
      out[pos] = static_cast<char>('0' + i % 10);
      i /= 10;
    }
  }

  std::string Key(uint64_t i) const {
    std::string s(size(), '\0');
    Format(i, s.data());
    return s;
  }

 private:
  std::string prefix_;
};

// A deterministic printable value of n bytes (not all one letter, so that a
// compressing file system cannot flatter the numbers much).
inline std::string BenchValue(size_t n) {
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string v(n, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v[i] = kAlphabet[x % kAlphabet.size()];
  }
  return v;
}

}  // namespace kvctl
