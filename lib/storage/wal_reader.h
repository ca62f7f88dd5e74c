// Reads and validates one WAL segment (docs/wal_format.md §4-6).
// Internal to lib/storage: RecoverWal drives it, tests use it directly.
#pragma once

#include <functional>
#include <string_view>

#include "kvd/env.h"
#include "kvd/status.h"
#include "kvd/wal.h"

namespace kvd::wal {

struct SegmentScanOptions {
  Lsn name_lsn = 0;     // from the file name
  Lsn start_lsn = 0;    // the snapshot's LSN: records <= it are checked only
  Lsn prev_lsn = 0;     // last record of the earlier segments (0: none)
  Epoch prev_epoch = 0; // its epoch: epochs never go back along the log
  bool last_segment = false;
  // The file's size when data is only its first bytes (ReadSegmentData: the
  // rest reads as zeros); 0: data is the whole file.
  uint64_t file_bytes = 0;
  // The size the writer preallocates segments to (0: unknown). A segment
  // whose header says it was preallocated, that is shorter than this and
  // whose last record runs past the end of the file (in record bytes, not
  // zeros) was shrunk, which a crash does not do: corruption, not a torn tail.
  uint64_t preallocated_bytes = 0;
  // Most payload bytes the damage classifier may CRC while looking for a
  // valid record after the damage (the byte scan itself is O(segment)).
  uint64_t resync_crc_budget = 64ull << 20;
  // Called for each valid-looking record found after damage (not applied).
  std::function<void(const WalRecord&)> on_dropped;
};

// Validates data (the whole segment file) and calls fn for each good record
// (all of them, covered or not), in order, before the first damage. Fills
// *rep except rep->path. A torn-looking damage in a segment that is not the
// last is reported as corruption. Returns non-OK only if fn did.
Status ScanSegment(std::string_view data, const SegmentScanOptions& opts,
                   const std::function<Status(const WalRecord&)>& fn, SegmentReport* rep);

// A file in the WAL directory named like a segment.
struct SegmentFile {
  Lsn lsn;           // from the name
  std::string name;  // not a path
};

// What the WAL directory holds: the segment files by LSN, and the files that
// are not segments of this log kvd wrote (a name like a segment's that does
// not parse, LSN 0, a bad header other than one torn while the last segment
// was created, a header naming another LSN than the name). Strays are not
// in segments. Reads 32 bytes of each file.
struct WalInventory {
  std::vector<SegmentFile> segments;
  std::vector<StrayFile> strays;  // by path
};
Result<WalInventory> TakeWalInventory(Env* env, const std::string& dir);

// A segment's bytes up to the end of its records. The zeros after them (the
// preallocated, never-written region) are found through the file's data
// ranges and a backward read of the last non-zero range, not read: bytes
// holds the file up to its last non-zero byte, plus zeros so that every
// record that begins before it is whole (capped at the file's size).
struct SegmentData {
  std::string bytes;
  uint64_t file_bytes = 0;  // the file's size
  uint64_t bytes_read = 0;  // read from the file (tests, and --check-data)
};
Result<SegmentData> ReadSegmentData(Env* env, const std::string& path);

// Offset just past the last non-zero byte of data (0 if all zero).
size_t EndOfNonZero(std::string_view data);
bool AllZero(std::string_view data);

}  // namespace kvd::wal
