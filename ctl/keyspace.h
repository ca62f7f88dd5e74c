// Bench keys: "key:" + 12 decimal digits, 16 bytes, written in place so the
// load generator formats a key without allocating.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvctl {

inline constexpr size_t kBenchKeyBytes = 16;
inline constexpr uint64_t kMaxKeySpace = 1'000'000'000'000ull;  // 12 digits

// Writes the key for index i (< kMaxKeySpace) into out[0..16).
inline void FormatBenchKey(uint64_t i, char* out) {
  out[0] = 'k';
  out[1] = 'e';
  out[2] = 'y';
  out[3] = ':';
  for (int pos = 15; pos >= 4; --pos) {
    out[pos] = static_cast<char>('0' + i % 10);
    i /= 10;
  }
}

inline std::string BenchKey(uint64_t i) {
  std::string s(kBenchKeyBytes, '\0');
  FormatBenchKey(i, s.data());
  return s;
}

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
