// The directory-operation journal of FaultEnv's write-through mode.
//
// In write-through mode the process that uses FaultEnv dies by SIGKILL, so
// the undo information for creations, renames and removals not yet made
// durable by a directory fsync cannot live in memory: it is appended to a
// hidden file `<dir>/.fault-dirops` before the operation reaches the disk.
// The next FaultEnv that touches the directory (the restarted daemon) undoes
// what the journal lists, newest first, as a power cut would have. SyncDir
// commits it: removed files (kept under a trash name) really go, and the
// journal is emptied. The file is the only record, so a forked child and its
// parent share it. Limits: a rename between two directories is journalled
// in the target's directory only.
#pragma once

#include <string>
#include <string_view>

#include "kvd/env.h"

namespace kvd::fault {

inline constexpr std::string_view kFaultPrefix = ".fault-";
inline constexpr std::string_view kJournalName = ".fault-dirops";

struct DirJournalEntry {
  enum Kind : char { kCreate = 'C', kRemove = 'R', kRename = 'N' } kind;
  std::string path;   // create/remove: the file; rename: `to`
  std::string from;   // rename only
  std::string trash;  // remove: where the file went; rename: the replaced file (may be empty)
};

// Appends one entry (written and fdatasynced before the caller changes the directory).
Status AppendDirJournal(const std::string& dir, const DirJournalEntry& e);
// Undoes every journalled operation of dir, newest first, then drops the
// journal. Idempotent: a kill half-way through is repaired by running it again.
void RevertDirJournal(Env* base, const std::string& dir);
// The directory was fsynced: removals become final (trash deleted), the journal goes.
void CommitDirJournal(Env* base, const std::string& dir);

}  // namespace kvd::fault
