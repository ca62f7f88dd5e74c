// The epoch history: which epoch (term) owns which LSNs, kept durably in the
// file `epochs` beside the WAL segments (docs/wal_format.md §8).
//
// A history is a list of (epoch, first LSN) entries, epochs strictly
// increasing, first LSNs non-decreasing (an epoch that began and wrote
// nothing before the next one began has the same first LSN as its
// successor). Entry i owns the LSNs [first_lsn_i, first_lsn_{i+1}). Like a
// PostgreSQL timeline history file or Raft's (term, index) check: two nodes
// compare histories to find the last LSN on which their logs agree.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kvd/env.h"
#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd {

struct EpochStart {
  Epoch epoch = 0;
  Lsn first_lsn = 0;
  bool operator==(const EpochStart&) const = default;
};

class EpochHistory {
 public:
  EpochHistory() = default;  // empty: owns no LSN
  // What a fresh data directory starts with: epoch 1 from first_lsn.
  static EpochHistory Initial(Lsn first_lsn = 1) {
    EpochHistory h;
    h.entries_.push_back({kFirstEpoch, first_lsn});
    return h;
  }

  const std::vector<EpochStart>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  // The newest epoch (new records get it); 0 if empty.
  Epoch current() const { return entries_.empty() ? 0 : entries_.back().epoch; }
  // The epoch owning lsn: the last entry with first_lsn <= lsn; 0 if none.
  Epoch EpochOf(Lsn lsn) const;
  // Adds (epoch, first_lsn). kInvalidArgument unless epoch > current(),
  // epoch > 0, first_lsn >= 1 and first_lsn >= the last entry's first LSN.
  Status Append(Epoch epoch, Lsn first_lsn);
  // Moves every entry that starts after next_lsn back to next_lsn (the
  // records it was begun for were lost: a cut torn tail, LSNs handed out
  // again after ENOSPC). Returns whether anything changed.
  bool ClampTo(Lsn next_lsn);
  // Forgets the epochs that begin after lsn (the log was cut there: they
  // were the divergent tail's); an empty result becomes Initial(). Returns
  // whether anything changed.
  bool TruncateAfter(Lsn lsn);

  // The file's bytes (format in docs/wal_format.md §8) and back. Decode
  // refuses (kCorruption) a torn or altered file and broken invariants.
  std::string Encode() const;
  static Result<EpochHistory> Decode(std::string_view data);

  bool operator==(const EpochHistory&) const = default;

 private:
  std::vector<EpochStart> entries_;
};

// The last LSN on which two logs agree: the largest L <= min(my_last,
// their_last) such that every LSN up to L has the same epoch in both
// histories. My records after it are a divergent tail; 0 means nothing is
// shared (an LSN that a history does not cover never agrees).
Lsn ForkPoint(const EpochHistory& mine, Lsn my_last, const EpochHistory& theirs, Lsn their_last);

inline constexpr std::string_view kEpochHistoryFileName = "epochs";

// Reads <dir>/epochs: kNotFound if there is none, kCorruption if it does not
// verify.
Result<EpochHistory> LoadEpochHistory(Env* env, const std::string& dir);
// Replaces <dir>/epochs atomically and durably: epochs.tmp, fsync, rename,
// fsync the directory. On failure the old file (if any) is still in place.
Status SaveEpochHistory(Env* env, const std::string& dir, const EpochHistory& history);

// The highest epoch this node has seen in a replication frame (a newer
// primary's, or a replica's that followed one), kept in <dir>/seen_epoch so
// that a restart does not forget it (docs/wal_format.md §8.5). It may be
// above every epoch of the history: an epoch heard of before any record of it
// arrived, or one that fenced this node as an old primary.
inline constexpr std::string_view kSeenEpochFileName = "seen_epoch";

// 0 if there is no file; kCorruption if it does not verify.
Result<Epoch> LoadSeenEpoch(Env* env, const std::string& dir);
// Replaces <dir>/seen_epoch atomically and durably: seen_epoch.tmp, fsync,
// rename, fsync the directory. On failure the old file (if any) is in place.
Status SaveSeenEpoch(Env* env, const std::string& dir, Epoch epoch);

}  // namespace kvd
