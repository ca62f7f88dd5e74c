// Salvage: every valid WAL record from files that recovery set aside
// (`wal-<N>.log.broken[.<k>]`, docs/wal_format.md §1 and §6), as a State
// that `kvd --salvage` writes in the snapshot format for `kvd --restore`.
//
// Offline and read-only. Deliberately separate from recovery: recovery
// decides what the log *is*; salvage only finds what can still be read in
// files recovery already gave up on, and never feeds them back into a WAL.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kvd/env.h"
#include "kvd/state.h"
#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd {

struct SalvageFileReport {
  std::string path;
  uint64_t bytes = 0;
  bool segment_header = false;  // a whole segment set aside (else: bytes cut from a segment)
  uint64_t records = 0;         // records that verified (CRC, type, payload)
  Lsn first_lsn = 0, last_lsn = 0;
  // Byte ranges [begin, end) that no valid record covers and that are not
  // zeros (zeros are preallocated space, not data).
  std::vector<std::pair<uint64_t, uint64_t>> unreadable;
  uint64_t unreadable_bytes = 0;
};

struct SalvageReport {
  std::vector<SalvageFileReport> files;
  uint64_t records = 0;       // distinct LSNs applied
  uint64_t duplicates = 0;    // the same record (same LSN and bytes) in more than one place
  uint64_t conflicts = 0;     // an LSN seen with different contents: the first file's is kept
  Lsn first_lsn = 0, last_lsn = 0;
  uint64_t missing_lsns = 0;  // LSNs between first and last that no file holds
  uint64_t delete_records = 0;  // DEL, DEL_RANGE and BATCHes with deletes: absent keys are not in a snapshot
  uint64_t keys = 0;          // keys in the result
};

// Reads every file, finds every record that verifies (v2 framing, and v1
// where v2 does not verify; a file that starts with a segment header is read
// with its version), and applies the records to *state (cleared first) in
// LSN order. kInvalidArgument when a file cannot be read at all.
Status SalvageWalFiles(Env* env, const std::vector<std::string>& paths, State* state, SalvageReport* report);

}  // namespace kvd
