// Snapshots: a point-in-time image of the State and the LSN it covers.
// Format: docs/snapshot_format.md. Files are named snap-<20-digit LSN>.kvs in
// the snapshot directory, written as <name>.tmp, fsynced, renamed into place,
// and the directory fsynced.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kvd/env.h"
#include "kvd/state.h"
#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd {

struct SnapshotInfo {
  std::string path;
  Lsn lsn = 0;
  uint64_t entries = 0;
  uint64_t bytes = 0;  // file size
};

std::string SnapshotFileName(Lsn lsn);
// Parses "snap-<lsn>.kvs"; nullopt for anything else (temp files included).
std::optional<Lsn> ParseSnapshotFileName(std::string_view name);

// Writes `state` as the snapshot for `lsn` into dir, atomically and durably.
// Safe in a forked child of a multi-threaded process: it takes no locks, starts
// no threads and touches nothing but `state`, env and its own buffers.
// On failure the temp file is removed and no existing snapshot is touched.
Result<SnapshotInfo> WriteSnapshot(Env* env, const std::string& dir, const State& state, Lsn lsn);

// The same, to any path (path.tmp, fsync, rename, fsync of path's
// directory): backups and `kvd --salvage` output share the snapshot format.
Result<SnapshotInfo> WriteSnapshotFile(Env* env, const std::string& path, const State& state, Lsn lsn);

// Reads and verifies a snapshot (header, every entry, body checksum) into
// *state, which is cleared first. On any failure *state is left empty and the
// error is kCorruption naming the file and offset.
Result<SnapshotInfo> LoadSnapshot(Env* env, const std::string& path, State* state);

// Only verifies (for kvd --check-data); does not build a State.
Result<SnapshotInfo> VerifySnapshot(Env* env, const std::string& path);

// Snapshot files in dir, newest (highest LSN) first. Temp files are ignored.
Result<std::vector<SnapshotInfo>> ListSnapshots(Env* env, const std::string& dir);

// After the snapshot at `newest` is durable: removes every older snapshot but
// the one just before it (kept as a fallback) and stray *.tmp files; fsyncs dir.
Status PruneSnapshots(Env* env, const std::string& dir, Lsn newest);

}  // namespace kvd
