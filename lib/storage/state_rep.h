// State internals: the index (State::Rep), a two-level B-tree over blocks.
// Included only by state.cc.
//
// Layout (bench/state_bench.cc measures it):
// - every pair is ONE malloc'd block (storage/state_block.h), ~128 B of heap
//   for a 16-byte key and a 100-byte value;
// - leaves (storage/state_leaf.h): sorted runs of up to kLeafCap block
//   pointers, each with a 4-byte slice of its key taken after a prefix all the
//   leaf's keys share: 12 B a slot, ~15 B a key at the ~80% fill random
//   inserts leave (a full leaf spills into a neighbour before it splits);
// - the top level: per leaf its first block (heads) and an 8-byte slice of
//   that first key after a prefix all heads but the first share.
// A lookup binary-searches the top slices, then the leaf's slices, and reads
// a key block only where slices tie, normally just the block it was looking
// for: ~3 dependent cache misses (leaf, its slot, the block) instead of ~21
// for 1 M keys.
//
// Invariants (checked by tests/storage/state_test.cc through the public API):
// - no leaf is empty; keys strictly increase within and across leaves;
// - heads[i] == leaves[i]->items[0], updated on every change of a first item,
//   so no separator ever points to a freed block;
// - for i >= 1, key(heads[i]) starts with top_prefix and head_slices[i] is its
//   slice after it; head_slices[0] is unused (leaf 0 takes every key below
//   heads[1], so one outlying smallest key cannot cost every lookup);
// - count/digest/data_bytes/block_bytes always match the blocks held.
//
// Digest: sum mod 2^64 of XXH3_64bits_withSeed(key||value, seed = key length)
// over the pairs: order-independent, so it is maintained in O(1) a mutation
// and equal maps (however reached) have equal digests.
//
// Fork safety: no threads, no locks; a forked child only reads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "kvd/state.h"
#include "storage/state_block.h"
#include "storage/state_leaf.h"

namespace kvd {

// Only state.cc includes this header, so these names stay out of others' way.
using state_internal::CommonPrefix;
using state_internal::ComparePrefix;
using state_internal::Decode;
using state_internal::KeyOf;
using state_internal::kLeafCap;
using state_internal::kMaxPrefix;
using state_internal::Leaf;
using state_internal::Pair;
using state_internal::SliceAt;

struct State::Rep {
  std::vector<std::unique_ptr<Leaf>> leaves;
  std::vector<const char*> heads;
  std::vector<uint64_t> head_slices;
  uint8_t top_plen = 0;
  char top_prefix[kMaxPrefix];
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
    head_slices.clear();
    head_slices.shrink_to_fit();
    top_plen = 0;
    count = 0;
    digest = 0;
    data_bytes = 0;
    block_bytes = 0;
  }

  std::string_view TopPrefix() const { return {top_prefix, top_plen}; }

  // The last leaf whose first key is <= key (leaf 0 if key precedes them all).
  // Reads head blocks only where head slices tie with the key's.
  size_t FindLeaf(std::string_view key) const {
    const size_t n = heads.size();
    if (n <= 1) return 0;
    int c = ComparePrefix(key, TopPrefix());
    if (c != 0) return c < 0 ? 0 : n - 1;
    const uint64_t s = SliceAt<uint64_t>(key, top_plen);
    const uint64_t* hs = head_slices.data();
    // Heads [1, lo) have smaller slices, so smaller keys; from hi on, larger.
    size_t lo = static_cast<size_t>(std::lower_bound(hs + 1, hs + n, s) - hs);
    if (lo == n || hs[lo] != s) return lo - 1;
    size_t hi = static_cast<size_t>(std::upper_bound(hs + lo, hs + n, s) - hs);
    auto it = std::upper_bound(heads.begin() + static_cast<ptrdiff_t>(lo),
                               heads.begin() + static_cast<ptrdiff_t>(hi), key,
                               [](std::string_view k, const char* h) { return k < KeyOf(h); });
    return static_cast<size_t>(it - heads.begin()) - 1;
  }

  // (leaf, position in [0, n]) where key is or would be inserted.
  std::pair<size_t, uint32_t> Locate(std::string_view key, bool* found) const {
    size_t li = FindLeaf(key);
    const Leaf* leaf = leaves[li].get();
    // The header and slices would otherwise miss one after another as the
    // binary search walks them; fetched together they cost about one miss.
    const char* bytes = reinterpret_cast<const char*>(leaf);
    for (size_t off = 0; off < offsetof(Leaf, items); off += 64) __builtin_prefetch(bytes + off);
    return {li, leaf->LowerBound(key, found)};
  }

  // Position of the first key >= key: (leaf, pos) with pos < n, or
  // (leaves.size(), 0) past the end.
  std::pair<size_t, uint32_t> Seek(std::string_view key, bool* found) const {
    *found = false;
    if (leaves.empty()) return {0, 0};
    auto [li, p] = Locate(key, found);
    if (p == leaves[li]->n) return {li + 1, 0};  // next leaf's first key > key
    return {li, p};
  }

  // Whether key sorts after every key held (the sorted-insert fast path).
  bool IsPastEnd(std::string_view key) const {
    if (leaves.empty()) return true;
    const Leaf& l = *leaves.back();
    int c = ComparePrefix(key, l.Prefix());
    if (c != 0) return c > 0;
    uint32_t s = SliceAt<uint32_t>(key, l.plen), last = l.slices[l.n - 1];
    if (s != last) return s > last;
    return l.Key(l.n - 1) < key;
  }

  // Re-reads heads[i] from its leaf and keeps the top prefix and slices valid.
  void SetHead(size_t i) {
    heads[i] = leaves[i]->items[0];
    if (i == 0) {
      head_slices[0] = 0;
      return;
    }
    std::string_view k = KeyOf(heads[i]);
    if (heads.size() == 2) {  // the only head constrained: take all it offers
      top_plen = static_cast<uint8_t>(std::min(k.size(), kMaxPrefix));
      std::memcpy(top_prefix, k.data(), top_plen);
    } else {
      size_t len = CommonPrefix(k, TopPrefix(), top_plen);
      if (len < top_plen) {
        state_internal::ShiftSlices(head_slices.data() + 1, heads.size() - 1, top_prefix,
                                    top_plen, len);
        top_plen = static_cast<uint8_t>(len);
      }
    }
    head_slices[i] = SliceAt<uint64_t>(k, top_plen);
  }

  // Lengthens the top prefix to what heads[1] and the last head share (it
  // only ever shrinks otherwise). Reads every head block, but only when the
  // prefix grows, which needs an earlier shrink that a split or merge at the
  // edge of the key range undid.
  void RegrowTop() {
    const size_t n = heads.size();
    if (n < 2) return;
    std::string_view first = KeyOf(heads[1]);
    size_t len = CommonPrefix(first, KeyOf(heads[n - 1]), kMaxPrefix);
    if (len <= top_plen) return;
    std::memcpy(top_prefix, first.data(), len);
    top_plen = static_cast<uint8_t>(len);
    for (size_t i = 1; i < n; ++i) head_slices[i] = SliceAt<uint64_t>(KeyOf(heads[i]), top_plen);
  }

  void InsertLeaf(size_t i, std::unique_ptr<Leaf> leaf) {
    auto at = static_cast<ptrdiff_t>(i);
    leaves.insert(leaves.begin() + at, std::move(leaf));
    heads.insert(heads.begin() + at, nullptr);
    head_slices.insert(head_slices.begin() + at, 0);
    SetHead(i);
    RegrowTop();
  }

  void EraseLeaf(size_t i) {
    auto at = static_cast<ptrdiff_t>(i);
    leaves.erase(leaves.begin() + at);
    heads.erase(heads.begin() + at);
    head_slices.erase(head_slices.begin() + at);
    if (i == 0 && !heads.empty()) head_slices[0] = 0;
    RegrowTop();
  }

  void Account(const char* block, bool add) {
    Pair p = Decode(block);
    uint64_t h = state_internal::HashPair(p);
    size_t fp = state_internal::Footprint(block);
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

  // Adds block (whose key exceeds every key held) at the end.
  void Append(char* block, std::string_view key) {
    if (!leaves.empty() && leaves.back()->n < kLeafCap) {
      Leaf& l = *leaves.back();
      l.Admit(key);
      l.Insert(l.n, block, key);
      return;
    }
    auto leaf = std::make_unique<Leaf>();
    leaf->Admit(key);
    leaf->Insert(0, block, key);
    InsertLeaf(leaves.size(), std::move(leaf));
  }

  // Makes room in full leaf li by moving some of its items into a neighbour
  // with room, and returns where the key Locate() put at p now goes; (li, p)
  // is unchanged if neither neighbour has room. Random inserts then leave
  // leaves ~80% full instead of ~70% (3 B a key less), at the cost of
  // moving slices and re-reading the receiving leaf's keys if its prefix can
  // grow back after adopting the neighbour's (else lookups there tie more).
  std::pair<size_t, uint32_t> Spill(size_t li, uint32_t p) {
    constexpr uint32_t kMinRoom = kLeafCap / 8;
    Leaf* leaf = leaves[li].get();
    if (li + 1 < leaves.size() && kLeafCap - leaves[li + 1]->n >= kMinRoom) {
      Leaf* right = leaves[li + 1].get();
      uint32_t k = (kLeafCap - right->n) / 2;
      uint32_t keep = kLeafCap - k;
      right->PrependFrom(*leaf, keep, k);
      leaf->n = static_cast<uint16_t>(keep);
      right->Refresh();
      SetHead(li + 1);
      // A key landing exactly between the two stays in leaf: heads unchanged.
      if (p > keep) return {li + 1, p - keep};
      return {li, p};
    }
    if (li > 0 && kLeafCap - leaves[li - 1]->n >= kMinRoom) {
      Leaf* left = leaves[li - 1].get();
      uint32_t k = (kLeafCap - left->n) / 2;
      uint32_t left_n = left->n;
      left->AppendFrom(*leaf, 0, k);
      leaf->EraseFront(k);
      left->Refresh();
      SetHead(li);
      if (p <= k) return {li - 1, left_n + p};
      return {li, p - k};
    }
    return {li, p};
  }

  // Inserts block at (li, p), p <= n, as Locate() returned for its key.
  void InsertAt(size_t li, uint32_t p, char* block, std::string_view key) {
    if (leaves[li]->n == kLeafCap) std::tie(li, p) = Spill(li, p);
    Leaf* leaf = leaves[li].get();
    if (leaf->n == kLeafCap) {
      constexpr uint32_t kHalf = kLeafCap / 2;
      auto right = std::make_unique<Leaf>();
      right->AppendFrom(*leaf, kHalf, kLeafCap - kHalf);
      leaf->n = kHalf;
      leaf->Refresh();  // each half spans a narrower range: longer prefixes
      right->Refresh();
      Leaf* r = right.get();
      InsertLeaf(li + 1, std::move(right));
      if (p > kHalf) {
        leaf = r;
        p -= kHalf;
        ++li;
      }
    }
    leaf->Admit(key);
    leaf->Insert(p, block, key);
    if (p == 0) SetHead(li);
  }

  // After a delete from leaf li: drops it if empty, else keeps every leaf
  // but a lone one at least a quarter full.
  void Rebalance(size_t li) {
    Leaf* leaf = leaves[li].get();
    if (leaf->n == 0) {
      EraseLeaf(li);
      return;
    }
    if (leaf->n >= kLeafCap / 4 || leaves.size() == 1) return;
    size_t left_i = li + 1 < leaves.size() ? li : li - 1;
    Leaf* a = leaves[left_i].get();
    Leaf* b = leaves[left_i + 1].get();
    uint32_t total = uint32_t{a->n} + b->n;
    if (total <= kLeafCap) {
      a->AppendFrom(*b, 0, b->n);
      a->Refresh();
      EraseLeaf(left_i + 1);
      return;
    }
    uint32_t want_a = total / 2;
    if (a->n < want_a) {  // move b's head to a's tail
      uint32_t k = want_a - a->n;
      a->AppendFrom(*b, 0, k);
      b->EraseFront(k);
    } else {  // move a's tail to b's head
      uint32_t k = a->n - want_a;
      b->PrependFrom(*a, want_a, k);
      a->n = static_cast<uint16_t>(want_a);
    }
    a->Refresh();
    b->Refresh();
    SetHead(left_i + 1);  // a keeps its first item either way
  }
};

}  // namespace kvd
