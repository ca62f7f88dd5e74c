// State: a compact ordered map.
//
// Layout (chosen for memory: ~140 B a key for 16-byte keys and 100-byte
// values, against ~190 B for std::set<Block*> and ~250 B for std::map of
// strings; bench/state_bench.cc measures it):
// - every pair is ONE malloc'd block [varint32 klen][varint32 vlen][key][value]
//   (2 header bytes for short keys and values, so 116 data bytes fit glibc's
//   128-byte chunk);
// - the index is a two-level B-tree: a vector of leaves in key order, each a
//   sorted array of up to kLeafCap block pointers. A leaf's separator is
//   simply its current first key, read through its first block, so no
//   separator can ever dangle after a delete.
// Invariants: no leaf is empty; keys are strictly increasing across leaves;
// count/digest/data_bytes/block_bytes always match the blocks held.
//
// Digest: sum mod 2^64 of XXH3_64bits_withSeed(key||value, seed = key length)
// over the pairs: order-independent, so it is maintained in O(1) a mutation
// and equal maps (however reached) have equal digests.
//
// Fork safety: no threads, no locks; a forked child only reads.
#include "kvd/state.h"

#include <malloc.h>
#include <xxhash.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

namespace kvd {
namespace {

constexpr uint32_t kLeafCap = 256;
// Per-chunk bookkeeping glibc malloc keeps in front of each block.
constexpr size_t kMallocOverhead = 8;

struct Leaf {
  uint32_t n = 0;
  char* items[kLeafCap];
};

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

char* NewBlock(std::string_view key, std::string_view value) {
  char* b = static_cast<char*>(std::malloc(BlockSize(key.size(), value.size())));
  if (b == nullptr) throw std::bad_alloc();  // as std::vector would
  char* p = EncodeVarint(b, static_cast<uint32_t>(key.size()));
  p = EncodeVarint(p, static_cast<uint32_t>(value.size()));
  std::memcpy(p, key.data(), key.size());
  std::memcpy(p + key.size(), value.data(), value.size());
  return b;
}

}  // namespace

struct State::Rep {
  std::vector<std::unique_ptr<Leaf>> leaves;
  // heads[i] == leaves[i]->items[0], kept in step with every change, so the
  // leaf-level search reads one contiguous array plus one block per probe
  // instead of leaf header and block (about 1.5x the lookup rate).
  std::vector<const char*> heads;
  size_t count = 0;
  uint64_t digest = 0;
  size_t data_bytes = 0;
  size_t block_bytes = 0;

  ~Rep() { Clear(); }

  void Clear() {
    for (auto& leaf : leaves) {
      for (uint32_t i = 0; i < leaf->n; ++i) std::free(leaf->items[i]);
    }
    leaves.clear();
    leaves.shrink_to_fit();
    heads.clear();
    heads.shrink_to_fit();
    count = 0;
    digest = 0;
    data_bytes = 0;
    block_bytes = 0;
  }

  std::string_view LastKey() const {
    const Leaf& l = *leaves.back();
    return KeyOf(l.items[l.n - 1]);
  }

  // Position of the first key >= key: (leaf, pos) with pos < n, or
  // (leaves.size(), 0) past the end. *found tells whether it equals key.
  std::pair<size_t, uint32_t> Seek(std::string_view key, bool* found) const {
    *found = false;
    if (leaves.empty()) return {0, 0};
    // Last leaf whose first key <= key (leaf 0 if key precedes everything).
    auto it = std::upper_bound(heads.begin() + 1, heads.end(), key,
                               [](std::string_view k, const char* b) { return k < KeyOf(b); });
    size_t li = static_cast<size_t>(it - heads.begin()) - 1;
    const Leaf& leaf = *leaves[li];
    char* const* pos =
        std::lower_bound(leaf.items, leaf.items + leaf.n, key,
                         [](const char* b, std::string_view k) { return KeyOf(b) < k; });
    uint32_t p = static_cast<uint32_t>(pos - leaf.items);
    if (p == leaf.n) return {li + 1, 0};  // next leaf's first key > key
    *found = KeyOf(leaf.items[p]) == key;
    return {li, p};
  }

  void Account(const char* block, bool add) {
    Pair p = Decode(block);
    uint64_t h = HashPair(p);
    size_t fp = Footprint(block);
    size_t data = size_t{p.klen} + p.vlen;
    if (add) {
      digest += h;
      block_bytes += fp;
      data_bytes += data;
    } else {
      digest -= h;
      block_bytes -= fp;
      data_bytes -= data;
    }
  }

  void Append(char* block) {
    if (leaves.empty() || leaves.back()->n == kLeafCap) {
      leaves.push_back(std::make_unique<Leaf>());
      heads.push_back(block);
    }
    Leaf& l = *leaves.back();
    l.items[l.n++] = block;
  }

  // Inserts block at (li, p) where p <= n; li == leaves.size() means "end".
  void InsertAt(size_t li, uint32_t p, char* block) {
    if (li == leaves.size()) {  // past the end: append to the last leaf
      Append(block);
      return;
    }
    Leaf* leaf = leaves[li].get();
    if (leaf->n == kLeafCap) {
      auto right = std::make_unique<Leaf>();
      uint32_t half = kLeafCap / 2;
      right->n = kLeafCap - half;
      std::memcpy(right->items, leaf->items + half, right->n * sizeof(char*));
      leaf->n = half;
      Leaf* r = right.get();
      leaves.insert(leaves.begin() + static_cast<ptrdiff_t>(li) + 1, std::move(right));
      heads.insert(heads.begin() + static_cast<ptrdiff_t>(li) + 1, r->items[0]);
      if (p > half) {
        leaf = r;
        p -= half;
        ++li;
      }
    }
    std::memmove(leaf->items + p + 1, leaf->items + p, (leaf->n - p) * sizeof(char*));
    leaf->items[p] = block;
    ++leaf->n;
    if (p == 0) heads[li] = block;
  }

  // Keeps every leaf but a lone one at least a quarter full.
  void Rebalance(size_t li) {
    Leaf* leaf = leaves[li].get();
    if (leaf->n == 0) {
      leaves.erase(leaves.begin() + static_cast<ptrdiff_t>(li));
      heads.erase(heads.begin() + static_cast<ptrdiff_t>(li));
      return;
    }
    if (leaf->n >= kLeafCap / 4 || leaves.size() == 1) return;
    size_t left_i = li + 1 < leaves.size() ? li : li - 1;
    Leaf* a = leaves[left_i].get();
    Leaf* b = leaves[left_i + 1].get();
    uint32_t total = a->n + b->n;
    if (total <= kLeafCap) {
      std::memcpy(a->items + a->n, b->items, b->n * sizeof(char*));
      a->n = total;
      leaves.erase(leaves.begin() + static_cast<ptrdiff_t>(left_i) + 1);
      heads.erase(heads.begin() + static_cast<ptrdiff_t>(left_i) + 1);
      return;
    }
    uint32_t want_a = total / 2;
    if (a->n < want_a) {  // move b's head to a's tail
      uint32_t k = want_a - a->n;
      std::memcpy(a->items + a->n, b->items, k * sizeof(char*));
      std::memmove(b->items, b->items + k, (b->n - k) * sizeof(char*));
      a->n += k;
      b->n -= k;
    } else {  // move a's tail to b's head
      uint32_t k = a->n - want_a;
      std::memmove(b->items + k, b->items, b->n * sizeof(char*));
      std::memcpy(b->items, a->items + want_a, k * sizeof(char*));
      a->n -= k;
      b->n += k;
    }
    heads[left_i + 1] = b->items[0];  // a keeps its first item either way
  }
};

State::State() : rep_(std::make_unique<Rep>()) {}
State::~State() = default;
// A moved-from State is empty and usable.
State::State(State&& o) noexcept : rep_(std::exchange(o.rep_, std::make_unique<Rep>())) {}
State& State::operator=(State&& o) noexcept {
  if (this != &o) {
    std::swap(rep_, o.rep_);
    o.rep_->Clear();
  }
  return *this;
}

bool State::Put(std::string_view key, std::string_view value) {
  assert(key.size() <= UINT32_MAX && value.size() <= UINT32_MAX);
  Rep& r = *rep_;
  // Fast path: keys arriving in increasing order (snapshot load, sequential
  // writers) go straight to the end without a search.
  if (r.leaves.empty() || r.LastKey() < key) {
    char* b = NewBlock(key, value);
    r.Append(b);
    r.Account(b, true);
    ++r.count;
    return false;
  }
  bool found;
  auto [li, p] = r.Seek(key, &found);
  if (!found) {
    char* b = NewBlock(key, value);
    r.InsertAt(li, p, b);
    r.Account(b, true);
    ++r.count;
    return false;
  }
  char*& slot = r.leaves[li]->items[p];
  char* old = slot;
  size_t need = BlockSize(key.size(), value.size());
  size_t usable = malloc_usable_size(old);
  r.Account(old, false);
  if (need <= usable && usable <= need + need / 4 + 32) {
    // Same size class: rewrite in place. value may alias this block (memmove);
    // the key bytes stay where the old block had them until moved.
    Pair op = Decode(old);
    char hdr[10];
    char* he = EncodeVarint(EncodeVarint(hdr, op.klen), static_cast<uint32_t>(value.size()));
    size_t hlen = static_cast<size_t>(he - hdr);
    size_t old_hlen = static_cast<size_t>(op.key - old);
    if (hlen != old_hlen) {
      // Rare (value length crossed a varint boundary): build a fresh block.
      char* b = NewBlock(key, value);
      std::free(old);
      slot = b;
    } else {
      std::memmove(old + hlen + op.klen, value.data(), value.size());
      std::memcpy(old, hdr, hlen);
    }
  } else {
    char* b = NewBlock(key, value);
    std::free(old);
    slot = b;
  }
  if (p == 0) r.heads[li] = slot;
  r.Account(slot, true);
  return true;
}

bool State::Del(std::string_view key) {
  Rep& r = *rep_;
  bool found;
  auto [li, p] = r.Seek(key, &found);
  if (!found) return false;
  Leaf& leaf = *r.leaves[li];
  char* b = leaf.items[p];
  r.Account(b, false);
  std::free(b);
  std::memmove(leaf.items + p, leaf.items + p + 1, (leaf.n - p - 1) * sizeof(char*));
  --leaf.n;
  --r.count;
  if (p == 0 && leaf.n > 0) r.heads[li] = leaf.items[0];
  r.Rebalance(li);
  return true;
}

std::optional<std::string_view> State::Get(std::string_view key) const {
  bool found;
  auto [li, p] = rep_->Seek(key, &found);
  if (!found) return std::nullopt;
  return Decode(rep_->leaves[li]->items[p]).Value();
}

void State::Clear() { rep_->Clear(); }
size_t State::size() const { return rep_->count; }
uint64_t State::Digest() const { return rep_->digest; }
size_t State::DataBytes() const { return rep_->data_bytes; }

size_t State::MemoryBytes() const {
  const Rep& r = *rep_;
  return sizeof(Rep) + r.block_bytes + r.leaves.size() * (sizeof(Leaf) + kMallocOverhead) +
         r.leaves.capacity() * sizeof(std::unique_ptr<Leaf>) + r.heads.capacity() * sizeof(char*);
}

size_t State::CountPrefix(std::string_view prefix) const {
  const Rep& r = *rep_;
  if (prefix.empty()) return r.count;
  bool found;
  auto [li, p] = r.Seek(prefix, &found);
  size_t n = 0;
  for (; li < r.leaves.size(); ++li, p = 0) {
    const Leaf& leaf = *r.leaves[li];
    // Keys in [first, last] of a leaf are sorted: if the last matches, all
    // from p on do, so whole leaves are counted without touching their keys.
    if (KeyOf(leaf.items[leaf.n - 1]).starts_with(prefix)) {
      n += leaf.n - p;
      continue;
    }
    for (; p < leaf.n && KeyOf(leaf.items[p]).starts_with(prefix); ++p) ++n;
    break;
  }
  return n;
}

struct State::Cursor::Impl {
  const Rep* rep;
  size_t leaf;
  uint32_t pos;
};

bool State::Cursor::Valid() const { return impl_ && impl_->leaf < impl_->rep->leaves.size(); }
std::string_view State::Cursor::key() const {
  return KeyOf(impl_->rep->leaves[impl_->leaf]->items[impl_->pos]);
}
std::string_view State::Cursor::value() const {
  return Decode(impl_->rep->leaves[impl_->leaf]->items[impl_->pos]).Value();
}
void State::Cursor::Next() {
  if (++impl_->pos == impl_->rep->leaves[impl_->leaf]->n) {
    ++impl_->leaf;
    impl_->pos = 0;
  }
}

State::Cursor State::Begin() const {
  Cursor c;
  c.impl_ = std::make_shared<Cursor::Impl>(Cursor::Impl{rep_.get(), 0, 0});
  return c;
}

State::Cursor State::LowerBound(std::string_view key) const {
  bool found;
  auto [li, p] = rep_->Seek(key, &found);
  Cursor c;
  c.impl_ = std::make_shared<Cursor::Impl>(Cursor::Impl{rep_.get(), li, p});
  return c;
}

State::Cursor State::UpperBound(std::string_view key) const {
  Cursor c = LowerBound(key);
  if (c.Valid() && c.key() == key) c.Next();
  return c;
}

}  // namespace kvd
