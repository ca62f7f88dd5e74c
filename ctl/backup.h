// kvctl backup FILE (docs/backup.md): pulls an online backup from kvd and
// writes it atomically, verified before it says OK.
#pragma once

#include <string>

#include "commands.h"

namespace kvctl {

// Writes FILE.tmp-<pid> next to FILE, fsyncs it, verifies it with the
// snapshot reader (every CRC, the LSN, entry count and size the server
// announced), renames it to FILE and fsyncs the directory; then prints
// "OK lsn=N keys=K bytes=B path=FILE". On any failure the temp file is
// removed, FILE is untouched, and one line on err says why (exit 3).
int CmdBackup(const CommandContext& c, const std::string& file);

}  // namespace kvctl
