// Snapshots as a byte stream: the snapshot format (docs/snapshot_format.md)
// written to a descriptor that only appends, such as a pipe, for a replica's
// snapshot transfer (docs/replication.md §4.6). The bytes are exactly those
// WriteSnapshotFile would put in a file; nothing is fsynced or renamed (the
// receiver makes its copy durable).
#pragma once

#include <memory>
#include <string>

#include "kvd/env.h"
#include "kvd/state.h"
#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd {

// Writes `state` at `lsn` in the snapshot format to `out`, from offset 0
// upwards, each byte once (an append-only sink works); *bytes = the size.
// Fork-safe like WriteSnapshot: no threads, locks or logging.
Status WriteSnapshotStream(WritableFile* out, const State& state, Lsn lsn, uint64_t* bytes);

// A WritableFile over a descriptor that can only append (a pipe, a socket):
// WriteAt must continue exactly where the previous write ended (else
// kInvalidArgument); it loops over short writes and EINTR. Sync, SyncAll and
// Close do nothing the descriptor could not (Sync: OK; the caller owns fd and
// closes it). Allocate, Truncate and Size are kUnsupported. No allocation
// after construction: usable in a forked child.
std::unique_ptr<WritableFile> NewFdStreamFile(int fd, std::string name);

}  // namespace kvd
