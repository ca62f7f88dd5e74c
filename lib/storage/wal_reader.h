// Reads and validates one WAL segment (docs/wal_format.md §4-6).
// Internal to lib/storage: RecoverWal drives it, tests use it directly.
#pragma once

#include <functional>
#include <string_view>

#include "kvd/status.h"
#include "kvd/wal.h"

namespace kvd::wal {

struct SegmentScanOptions {
  Lsn name_lsn = 0;     // from the file name
  Lsn start_lsn = 0;    // the snapshot's LSN: records <= it are checked only
  Lsn prev_lsn = 0;     // last record of the earlier segments (0: none)
  Epoch prev_epoch = 0; // its epoch: epochs never go back along the log
  bool last_segment = false;
  // Most payload bytes the damage classifier may CRC while looking for a
  // valid record after the damage (the byte scan itself is O(segment)).
  uint64_t resync_crc_budget = 64ull << 20;
};

// Validates data (the whole segment file) and calls fn for each good record
// (all of them, covered or not), in order, before the first damage. Fills
// *rep except rep->path. A torn-looking damage in a segment that is not the
// last is reported as corruption. Returns non-OK only if fn did.
Status ScanSegment(std::string_view data, const SegmentScanOptions& opts,
                   const std::function<Status(const WalRecord&)>& fn, SegmentReport* rep);

// Offset just past the last non-zero byte of data (0 if all zero).
size_t EndOfNonZero(std::string_view data);
bool AllZero(std::string_view data);

}  // namespace kvd::wal
