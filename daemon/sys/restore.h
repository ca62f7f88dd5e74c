// kvd --restore and kvd --salvage: offline tools around the backup file
// (the snapshot format, docs/backup.md).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "config/config.h"
#include "kvd/env.h"

namespace kvd::daemon {

// Loads a backup into the empty data directory config names: verifies the
// file (every CRC), refuses a wal_path or snapshot_path that holds anything
// but a LOCK file, installs the file as the snapshot for its LSN (temp,
// fsync, rename, fsync dir), then opens the engine once on it (which writes
// the epoch history and the first WAL segment) and checks that it recovered
// exactly that LSN and key count. Exit 0 done, 1 refused or failed.
int Restore(const Config& config, const std::string& file, std::ostream& out, std::ostream& err, Env* env);

// Reads every valid record from set-aside WAL files (SalvageWalFiles) and
// writes the keys they leave, at the last LSN found, to out_path in the
// snapshot format, so that Restore loads it. Reports records, keys, the LSN
// range and what could not be read. Exit 0 written, 1 nothing readable or
// out_path exists, 2 a file could not be read.
int Salvage(const std::vector<std::string>& files, const std::string& out_path, std::ostream& out, std::ostream& err,
            Env* env);

}  // namespace kvd::daemon
