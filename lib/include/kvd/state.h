// State: the in-memory ordered map that WAL replay and live writes build.
//
// Ordered so SCAN by prefix or range works. Compact: each pair lives in one
// malloc'd block [varint32 key_len][varint32 value_len][key][value] (~128 B of
// heap for a 16-byte key and a 100-byte value). The index is a two-level
// B-tree: leaves of up to 128 sorted block pointers, each with a 4-byte slice
// of its key (big-endian, zero-padded) taken after a prefix all the leaf's keys
// share, and a top level holding each leaf's first block and an 8-byte slice
// of that key after a prefix the leaves' first keys share. Lookups binary-
// search the slices and read a key block only where slices tie, normally just
// the block being looked for. 1 M pairs of 16-byte keys and 100-byte values
// cost ~144 bytes a key against Redis's ~210 (bench/state_bench.cc reports
// bytes per key and operation rates; lib/storage/state.cc has the invariants).
//
// Digest: the sum mod 2^64, over all pairs, of
// XXH3_64bits_withSeed(key || value, seed = key length); order-independent,
// so it is kept up to date in O(1) per mutation, and the key-length seed makes
// ("ab","c") and ("a","bc") differ.
//
// Apply is deterministic: the same sequence of Put/Del gives the same map and
// the same Digest(), whatever happened before (recovery relies on it).
//
// Fork safety: the daemon forks and the child only reads (iterates) a State;
// nothing here uses threads or locks.
// Thread safety: none; one owner thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "kvd/types.h"

namespace kvd {

class State {
 public:
  State();
  ~State();
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  State(State&&) noexcept;
  State& operator=(State&&) noexcept;

  // Inserts or replaces. Returns true when the key existed before.
  bool Put(std::string_view key, std::string_view value);
  // Returns true when the key existed (and is now gone).
  bool Del(std::string_view key);
  // The value, valid until the next mutation of this State.
  std::optional<std::string_view> Get(std::string_view key) const;
  void Clear();

  size_t size() const;
  // Keys starting with prefix (O(matches)).
  size_t CountPrefix(std::string_view prefix) const;
  // Order-independent hash of the set of (key, value) pairs, kept up to date
  // on every mutation: equal maps have equal digests.
  uint64_t Digest() const;
  // Bytes of heap held (blocks + index nodes), an estimate from sizes.
  size_t MemoryBytes() const;
  // Sum of key and value lengths (the raw data size).
  size_t DataBytes() const;

  // Forward cursor in key order. Invalidated by any mutation.
  class Cursor {
   public:
    bool Valid() const;
    std::string_view key() const;
    std::string_view value() const;
    void Next();

   private:
    friend class State;
    struct Impl;
    std::shared_ptr<Impl> impl_;
  };
  Cursor Begin() const;
  // First key >= key.
  Cursor LowerBound(std::string_view key) const;
  // First key > key.
  Cursor UpperBound(std::string_view key) const;

 private:
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

// Deletes every key in r (a range delete, docs/wal_format.md §3.4) and
// returns how many there were. Deterministic like Put/Del: the same State
// and range give the same result.
uint64_t DeleteRange(State* state, const KeyRange& r);

}  // namespace kvd
