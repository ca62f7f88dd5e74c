// Applying configuration at run time (SIGHUP and CONFIG SET).
//
// Which keys may change is decided by config.cc's table (IsRuntimeKey); here
// we only carry the values over and push them into the running parts.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "kvd/engine.h"

namespace kvd::daemon {

// `current` with every runtime key taken from `loaded`; restart-only keys
// keep their running values (they take effect after a restart).
Config MergeRuntimeKeys(const Config& current, const Config& loaded);

// Pushes the runtime values of `next` into the engine (durability) and the
// logger (level). Returns the first failure; earlier steps stay applied.
Status ApplyEngineAndLogging(const Config& next, Engine* engine);

}  // namespace kvd::daemon
