// WalSource: reads WAL records back from the segment files on disk, for a
// replica that is further behind than the WalFeed's in-memory cache
// (catch-up). Records are returned exactly as on disk, each CRC-checked.
//
// Only records the engine already reported written (<= `upto`, which the
// caller takes from the WalFeed) are read, so the reader never looks at
// bytes a concurrent write may still be filling. v1 segments (before
// epochs) cannot be streamed: they are reported as gone (a later slice
// sends a snapshot instead).
//
// Threading: the loop thread (a sender's catch-up reads are bounded by
// max_bytes per call, ~256 KiB).
#pragma once

#include <string>

#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd::daemon::repl {

class WalSource {
 public:
  explicit WalSource(std::string wal_dir) : dir_(std::move(wal_dir)) {}
  // Appends records from..(<= upto) to *out, about max_bytes (at least one
  // record), *last = the last one appended. kNotFound when the WAL no longer
  // holds `from` (deleted after a snapshot, or a v1 segment); kCorruption
  // for a record that does not verify.
  Status Read(Lsn from, Lsn upto, size_t max_bytes, std::string* out, Lsn* last);

 private:
  Status Seek(Lsn from);

  std::string dir_;
  // Cursor: where the record `next_` starts, to continue without a rescan.
  std::string seg_path_;
  Lsn seg_first_ = 0;
  uint64_t offset_ = 0;
  Lsn next_ = 0;
};

}  // namespace kvd::daemon::repl
