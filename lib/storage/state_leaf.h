// State internals: prefix-relative key slices and the index leaf.
//
// Why slices: a lookup that compares keys through block pointers takes one
// cache miss per probe (~21 for 1 M keys). Instead every index level keeps a
// prefix shared by all keys it indexes, and for each key a "slice": the next
// sizeof(U) key bytes after that prefix, big-endian, zero-padded. Real keys
// share long prefixes ("k000000000123456", "key:000000123456"), so the slice
// is taken after the shared prefix, not from byte 0. Then:
//   key < other  =>  Slice(key) <= Slice(other)   (zero padding sorts first)
// so a binary search on the integer slices finds the answer and reads a key
// block only where slices tie (the found key itself, or rare real ties).
//
// The prefix of a node is ANY common prefix of its keys (not necessarily the
// longest). Admitting a key outside it shrinks the prefix, and slices are
// re-expressed at the shorter offset from the prefix bytes alone (no block
// reads); they lose resolution, which Refresh() regains by re-reading the
// blocks after a split or merge. Deleting keys never invalidates a prefix.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "storage/state_block.h"

namespace kvd::state_internal {

// Pointers a leaf holds. 128 keeps a leaf search within a few cache lines of
// slices; memory per key does not depend on it (see state.cc).
constexpr uint32_t kLeafCap = 128;
// Longest prefix a node stores; keys sharing more than this tie more often.
constexpr size_t kMaxPrefix = 60;

// sizeof(U) bytes of p[0, len) as a big-endian integer, zero-padded.
template <typename U>
inline U LoadSlice(const char* p, size_t len) {
  U v = 0;
  // len may be 0 with p null (an empty key's bytes): memcpy must not see that.
  if (len != 0) std::memcpy(&v, p, std::min(len, sizeof(U)));
  if constexpr (std::endian::native == std::endian::little) {
    if constexpr (sizeof(U) == 8) {
      v = __builtin_bswap64(v);
    } else {
      v = __builtin_bswap32(v);
    }
  }
  return v;
}

// The slice of key after its first off bytes (off <= key.size()).
template <typename U>
inline U SliceAt(std::string_view key, size_t off) {
  return LoadSlice<U>(key.data() + off, key.size() - off);
}

inline size_t CommonPrefix(std::string_view a, std::string_view b, size_t cap) {
  size_t m = std::min({a.size(), b.size(), cap});
  size_t i = 0;
  while (i < m && a[i] == b[i]) ++i;
  return i;
}

// < 0: key sorts before every key starting with prefix; > 0: after them all;
// 0: key starts with prefix.
inline int ComparePrefix(std::string_view key, std::string_view prefix) {
  size_t m = std::min(key.size(), prefix.size());
  int c = m == 0 ? 0 : std::memcmp(key.data(), prefix.data(), m);
  if (c != 0) return c;
  return key.size() < prefix.size() ? -1 : 0;
}

// Re-expresses n slices taken after prefix[0, old_len) as slices after
// prefix[0, new_len) (new_len <= old_len): every key they stand for starts
// with prefix, so the dropped prefix bytes become the slices' high bytes.
template <typename U>
inline void ShiftSlices(U* slices, size_t n, const char* prefix, size_t old_len, size_t new_len) {
  size_t d = old_len - new_len;
  if (d == 0) return;
  U high = LoadSlice<U>(prefix + new_len, std::min(d, sizeof(U)));
  if (d >= sizeof(U)) {
    std::fill(slices, slices + n, high);
    return;
  }
  for (size_t i = 0; i < n; ++i) slices[i] = high | static_cast<U>(slices[i] >> (8 * d));
}

// A sorted run of block pointers with a u32 slice each (parallel arrays so
// the search reads only slices). Invariant: every key in items[0, n) starts
// with prefix[0, plen), and slices[i] == SliceAt<uint32_t>(key i, plen).
struct Leaf {
  uint16_t n = 0;
  uint8_t plen = 0;
  char prefix[kMaxPrefix];
  uint32_t slices[kLeafCap];
  char* items[kLeafCap];

  std::string_view Prefix() const { return {prefix, plen}; }
  std::string_view Key(uint32_t i) const { return KeyOf(items[i]); }

  // First position whose key is >= key, in [0, n]; *found when it equals key.
  // Reads blocks only for slots whose slice equals the key's.
  uint32_t LowerBound(std::string_view key, bool* found) const {
    *found = false;
    int c = ComparePrefix(key, Prefix());
    if (c != 0) return c < 0 ? 0 : n;
    const uint32_t s = SliceAt<uint32_t>(key, plen);
    uint32_t lo = static_cast<uint32_t>(std::lower_bound(slices, slices + n, s) - slices);
    if (lo == n || slices[lo] != s) return lo;
    uint32_t hi = static_cast<uint32_t>(std::upper_bound(slices + lo, slices + n, s) - slices);
    char* const* pos = std::lower_bound(items + lo, items + hi, key, [](const char* b,
                                                                        std::string_view k) {
      return KeyOf(b) < k;
    });
    uint32_t p = static_cast<uint32_t>(pos - items);
    *found = p < hi && Key(p) == key;  // slots from hi on have larger slices
    return p;
  }

  void ShrinkPrefix(size_t new_len) {
    ShiftSlices(slices, n, prefix, plen, new_len);
    plen = static_cast<uint8_t>(new_len);
  }

  // Makes the prefix a prefix of key too, so key can be inserted here.
  void Admit(std::string_view key) {
    if (n == 0) {
      plen = static_cast<uint8_t>(std::min(key.size(), kMaxPrefix));
      if (plen != 0) std::memcpy(prefix, key.data(), plen);
    } else {
      ShrinkPrefix(CommonPrefix(key, Prefix(), plen));
    }
  }

  // Inserts block (whose key is key) at p; needs room and Admit(key) done.
  void Insert(uint32_t p, char* block, std::string_view key) {
    std::memmove(items + p + 1, items + p, (n - p) * sizeof(char*));
    std::memmove(slices + p + 1, slices + p, (n - p) * sizeof(uint32_t));
    items[p] = block;
    slices[p] = SliceAt<uint32_t>(key, plen);
    ++n;
  }

  void Erase(uint32_t p) {
    std::memmove(items + p, items + p + 1, (n - p - 1) * sizeof(char*));
    std::memmove(slices + p, slices + p + 1, (n - p - 1) * sizeof(uint32_t));
    --n;
  }

  // Appends src's items [from, from + k) (room checked by the caller).
  void AppendFrom(const Leaf& src, uint32_t from, uint32_t k) {
    Adopt(src);
    std::memcpy(items + n, src.items + from, k * sizeof(char*));
    std::memcpy(slices + n, src.slices + from, k * sizeof(uint32_t));
    ShiftSlices(slices + n, k, src.prefix, src.plen, plen);
    n = static_cast<uint16_t>(n + k);
  }

  // Puts src's items [from, from + k) in front of this leaf's.
  void PrependFrom(const Leaf& src, uint32_t from, uint32_t k) {
    Adopt(src);
    std::memmove(items + k, items, n * sizeof(char*));
    std::memmove(slices + k, slices, n * sizeof(uint32_t));
    std::memcpy(items, src.items + from, k * sizeof(char*));
    std::memcpy(slices, src.slices + from, k * sizeof(uint32_t));
    ShiftSlices(slices, k, src.prefix, src.plen, plen);
    n = static_cast<uint16_t>(n + k);
  }

  void EraseFront(uint32_t k) {
    std::memmove(items, items + k, (n - k) * sizeof(char*));
    std::memmove(slices, slices + k, (n - k) * sizeof(uint32_t));
    n = static_cast<uint16_t>(n - k);
  }

  // Lengthens the prefix to what the first and last keys share, re-reading
  // every block only when that gains something (after splits and merges,
  // which narrow a leaf's key range).
  void Refresh() {
    if (n == 0) return;
    std::string_view first = Key(0);
    size_t len = CommonPrefix(first, Key(n - 1), kMaxPrefix);
    if (len <= plen) return;
    std::memcpy(prefix, first.data(), len);
    plen = static_cast<uint8_t>(len);
    for (uint32_t i = 0; i < n; ++i) slices[i] = SliceAt<uint32_t>(Key(i), plen);
  }

 private:
  // Shortens the prefix to one src's keys share too (items about to move in).
  void Adopt(const Leaf& src) {
    if (n == 0) {
      plen = src.plen;
      std::memcpy(prefix, src.prefix, plen);
    } else {
      ShrinkPrefix(CommonPrefix(Prefix(), src.Prefix(), kMaxPrefix));
    }
  }
};

}  // namespace kvd::state_internal
