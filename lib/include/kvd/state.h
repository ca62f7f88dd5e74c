// State: the in-memory ordered map that WAL replay and live writes build.
//
// Ordered so SCAN by prefix or range works. Compact: each pair lives in one
// heap block [u32 key_len][u32 value_len][key][value], indexed by an ordered
// set of pointers, so 1 M pairs of 16-byte keys and 100-byte values cost well
// under Redis's ~210 bytes a key (bench/ reports bytes per key).
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

}  // namespace kvd
