// RunDaemon: the whole life of a serving kvd, after the config is loaded.
//   lock the data directories -> check file systems -> recover (Engine::Open)
//   -> listen (or take the socket from systemd) -> READY=1 -> serve until
//   SIGTERM/SIGINT -> drain, fdatasync -> exit.
#pragma once

#include "config/config.h"
#include "kvd/env.h"

namespace kvd::daemon {

// Returns the process exit code: 0 after a clean shutdown, 1 when start-up
// failed (the reason is logged), 3 after a fatal runtime error.
int RunDaemon(const Config& config, Env* env);

}  // namespace kvd::daemon
