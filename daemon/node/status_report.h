// STATUS: the server's state as one JSON object (kvctl status [--json]).
// Field names are part of the interface (docs/wire_protocol.md, STATUS).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "kvd/engine.h"
#include "serve/server_stats.h"
#include "node/snapshot_scheduler.h"

namespace kvd::daemon {

struct StatusInputs {
  const Config* config = nullptr;
  const Engine* engine = nullptr;
  const RecoveryReport* recovery = nullptr;
  const ServerCounters* counters = nullptr;
  size_t parked_reads = 0;  // reads waiting for their minimum LSN now
  // Reply bytes held for clients now: the sum over connections and the
  // largest one (a slow reader shows here, bounded by max_pending_reply_bytes).
  uint64_t reply_bytes = 0;
  uint64_t largest_client_reply_bytes = 0;
  const SnapshotHistory* snapshots = nullptr;
  std::chrono::steady_clock::time_point started;
  bool snapshot_running = false;
  Lsn snapshot_running_lsn = 0;
  std::chrono::steady_clock::time_point snapshot_started;
  uint64_t snapshot_wal_grown = 0;            // SnapshotScheduler::wal_grown
  uint64_t snapshot_wal_growth_threshold = 0; // SnapshotScheduler::wal_growth_threshold
  bool stopping = false;
  std::string_view role = "primary";
  // Warnings about the data directories' file systems (tmpfs ...); may be null.
  const std::vector<std::string>* storage_warnings = nullptr;
  // The "replication" object as JSON text (repl/replication.h); empty: off.
  std::string replication_json;
};

std::string BuildStatusJson(const StatusInputs& in);

// Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown.
uint64_t ProcessRssBytes();

}  // namespace kvd::daemon
