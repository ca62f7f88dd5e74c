// kvd --check-data: examine the WAL and snapshots offline, change nothing,
// and say what recovery would do (like redis-check-aof or etcdutl).
#pragma once

#include <ostream>

#include "config/config.h"
#include "kvd/env.h"

namespace kvd::daemon {

// Exit codes of kvd --check-data.
inline constexpr int kCheckClean = 0;      // recovery would lose nothing
inline constexpr int kCheckDataLoss = 1;   // it would drop data, or refuse to start
inline constexpr int kCheckCannotRun = 2;  // usage, config or I/O error: nothing examined

// Lists the snapshots (each verified), then dry-runs WAL recovery from the
// newest valid snapshot in config.recovery_mode, and prints per segment what
// it found and an overall verdict; with json, one JSON object instead.
// Opens files read-only: no byte and no name on disk changes.
int CheckData(const Config& config, bool json, std::ostream& out);
// Same, through env (tests use a FaultEnv to prove that nothing was written).
int CheckData(const Config& config, bool json, std::ostream& out, Env* env);

}  // namespace kvd::daemon
