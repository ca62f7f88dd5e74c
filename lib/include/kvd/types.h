// Vocabulary shared by the engine, the daemon and the protocol.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace kvd {

// Log sequence number: every mutation gets the next one, starting at 1.
// 0 means "nothing" (an empty log, no snapshot).
using Lsn = uint64_t;

// Epoch (term): which primary's reign a record was written in. Every WAL v2
// record carries one; the epoch history (epoch_history.h) maps LSN ranges to
// epochs. A fresh data directory starts in epoch 1; records written before
// epochs existed (WAL format v1) count as epoch 1. 0 means "none".
using Epoch = uint64_t;
inline constexpr Epoch kFirstEpoch = 1;

// Size limits that every layer enforces (configurable lower, never higher).
inline constexpr uint32_t kMaxKeyBytes = 64 * 1024;
inline constexpr uint32_t kMaxValueBytes = 16 * 1024 * 1024;
// One WAL record: a BATCH may carry many ops, but never more than this.
inline constexpr uint32_t kMaxRecordPayload = 64 * 1024 * 1024;

enum class OpType : uint8_t { kPut = 1, kDel = 2 };

// One operation of a BATCH; views into the caller's buffer.
struct BatchOp {
  OpType type;
  std::string_view key;
  std::string_view value;  // empty for kDel
};

// The keys a range delete covers (docs/wal_format.md §3.4): every key that
// starts with `a` (prefix), or every key k with a <= k < b (range; an empty b
// is unbounded). Views into the caller's buffer.
struct KeyRange {
  bool prefix = true;
  std::string_view a;
  std::string_view b;  // range end (exclusive); empty for a prefix
};
// Whether key is in r (bytewise unsigned order, as the State orders keys).
bool KeyRangeContains(const KeyRange& r, std::string_view key);

// When a write is acknowledged (docs/durability.md has the exact promises).
enum class DurabilityMode : uint8_t {
  kSync,   // after the fdatasync that covers it returned (default)
  kBatch,  // at once, with at most batch_size / flush_interval not yet durable
  kNone,   // at once; fdatasync only on FLUSH and shutdown
};

// How recovery treats a damaged WAL (like RocksDB's WALRecoveryMode).
enum class RecoveryMode : uint8_t {
  kTolerateTail,  // cut a torn tail of the last segment; refuse mid-log corruption (default)
  kAbsolute,      // refuse any damage, a torn tail included
  kPointInTime,   // stop at the first damage anywhere; set everything after it aside
};

std::string_view ToString(DurabilityMode m);
std::string_view ToString(RecoveryMode m);
std::optional<DurabilityMode> ParseDurabilityMode(std::string_view s);
std::optional<RecoveryMode> ParseRecoveryMode(std::string_view s);

}  // namespace kvd
