// State internals: one pair = one malloc'd block
//   [varint32 key_len][varint32 value_len][key][value]
// 2 header bytes for short keys and values, so 16 + 100 data bytes fit
// glibc's 128-byte chunk. Only state.cc and state_leaf.h include this.
#pragma once

#include <malloc.h>
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

namespace kvd::state_internal {

// Per-chunk bookkeeping glibc malloc keeps in front of each block.
constexpr size_t kMallocOverhead = 8;

inline size_t VarintLen(uint32_t v) {
  size_t len = 1;
  while (v >= 128) {
    v >>= 7;
    ++len;
  }
  return len;
}

inline char* EncodeVarint(char* p, uint32_t v) {
  while (v >= 128) {
    *p++ = static_cast<char>(v | 128);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

inline const char* DecodeVarint(const char* p, uint32_t* v) {
  uint32_t b = static_cast<uint8_t>(*p++);
  if (b < 128) {
    *v = b;
    return p;
  }
  uint32_t result = b & 127;
  for (int shift = 7; shift <= 28; shift += 7) {
    b = static_cast<uint8_t>(*p++);
    result |= (b & 127) << shift;
    if (b < 128) break;
  }
  *v = result;
  return p;
}

struct Pair {
  const char* key;  // value follows the key immediately
  uint32_t klen;
  uint32_t vlen;
  std::string_view Key() const { return {key, klen}; }
  std::string_view Value() const { return {key + klen, vlen}; }
};

inline Pair Decode(const char* block) {
  Pair p;
  const char* q = DecodeVarint(block, &p.klen);
  p.key = DecodeVarint(q, &p.vlen);
  return p;
}

inline std::string_view KeyOf(const char* block) { return Decode(block).Key(); }

// Digest term of one pair (see kvd/state.h).
inline uint64_t HashPair(const Pair& p) {
  return XXH3_64bits_withSeed(p.key, size_t{p.klen} + p.vlen, p.klen);
}

inline size_t BlockSize(size_t klen, size_t vlen) {
  return VarintLen(static_cast<uint32_t>(klen)) + VarintLen(static_cast<uint32_t>(vlen)) + klen +
         vlen;
}

inline size_t Footprint(const char* block) {
  return malloc_usable_size(const_cast<char*>(block)) + kMallocOverhead;
}

inline char* NewBlock(std::string_view key, std::string_view value) {
  char* b = static_cast<char*>(std::malloc(BlockSize(key.size(), value.size())));
  if (b == nullptr) throw std::bad_alloc();  // as std::vector would
  char* p = EncodeVarint(b, static_cast<uint32_t>(key.size()));
  p = EncodeVarint(p, static_cast<uint32_t>(value.size()));
  // Empty views may have a null data(): memcpy must never see one.
  if (!key.empty()) std::memcpy(p, key.data(), key.size());
  if (!value.empty()) std::memcpy(p + key.size(), value.data(), value.size());
  return b;
}

}  // namespace kvd::state_internal
