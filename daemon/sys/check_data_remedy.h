// The remedies kvd --check-data offers: for each recovery_mode that would
// start on this data directory, exactly what it keeps and what it drops
// (records, keys, LSN ranges, bytes), least destructive first. Everything is
// a dry run of RecoverWal over the real files: nothing on disk changes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kvd/env.h"
#include "kvd/wal.h"

namespace kvd::daemon {

// A segment after the damage: recovery sets it aside without replaying it.
struct LaterSegment {
  std::string path;
  uint64_t bytes = 0;
  uint64_t records = 0;  // good records in it, counted on its own
  Lsn first_lsn = 0;     // of those records (0: none)
  Lsn last_lsn = 0;
};

// What recovery in one mode would do.
struct DryRun {
  RecoveryMode mode = RecoveryMode::kTolerateTail;
  Status status;  // OK, kCorruption (refusal / undecodable record), or an I/O error
  WalRecoveryReport report;
  std::optional<SegmentReport> damaged;  // the segment where it stopped, if any
  std::vector<LaterSegment> later;
  // Kept: the snapshot's state plus records (start_lsn, report.last_lsn].
  uint64_t keys = 0;  // keys in the recovered state
  // Dropped: the damaged bytes, the valid records after them in the same
  // segment and every record of the later segments.
  uint64_t dropped_bytes = 0;
  uint64_t dropped_records = 0;  // valid records among them: all follow the damage
  Lsn dropped_first_lsn = 0;     // LSN range of those records (0: none)
  Lsn dropped_last_lsn = 0;
  // Keys whose value (or presence) differs from replaying, on top of what is
  // kept, every dropped valid record too (in LSN order).
  uint64_t keys_changed = 0;
};

// Dry-runs recovery of wal_dir in mode from the snapshot at snapshot_path
// (empty: none; start_lsn its LSN), applying records to a scratch state.
DryRun RunRecovery(Env* env, const std::string& wal_dir, RecoveryMode mode, Lsn start_lsn,
                   const std::string& snapshot_path);

// A way to start: move the stray files away (if any), then start kvd in mode.
struct Remedy {
  RecoveryMode mode;
  bool as_configured = false;  // mode is the configured one: nothing to change
  DryRun run;
};

// Every mode that would start, least destructive first (fewest valid records
// dropped, then fewest bytes, then the configured mode, then the stricter
// mode); a mode with the same outcome as one before it is left out.
std::vector<Remedy> Remedies(Env* env, const std::string& wal_dir, RecoveryMode configured, Lsn start_lsn,
                             const std::string& snapshot_path);

}  // namespace kvd::daemon
