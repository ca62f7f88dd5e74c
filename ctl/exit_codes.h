// kvctl's exit codes (documented in `kvctl --help`).
#pragma once

#include "kvd/status.h"

namespace kvctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitNotFound = 1;  // get/del of an absent key
inline constexpr int kExitUsage = 2;     // bad command line
inline constexpr int kExitServer = 3;    // server error, or the server is unreachable

inline int ExitCodeFor(const kvd::Status& s) {
  if (s.ok()) return kExitOk;
  return s.IsNotFound() ? kExitNotFound : kExitServer;
}

}  // namespace kvctl
