// BackupFiles: the snapshot files that BACKUP_BEGIN handed to clients
// (docs/backup.md), each held open by its descriptor until the client ends
// the backup or disconnects.
//
// A backup is a local snapshot, written by the forked snapshot child like
// any other; the descriptor keeps its bytes readable even after a newer
// snapshot prunes the file (an unlinked file lives while it is open). The
// client pulls it in chunks (BACKUP_READ), so the loop reads at most one
// bounded chunk per request and a slow client holds nothing but the fd.
//
// Threading: loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "kvd/fd.h"
#include "kvd/protocol.h"
#include "kvd/status.h"

namespace kvd::daemon {

class BackupFiles {
 public:
  explicit BackupFiles(size_t max_open = 8) : max_open_(max_open) {}

  // Opens the snapshot at path for session. kBusy when max_open backups are
  // open already; kIOError when the file cannot be opened.
  Result<proto::BackupBeginReply> Open(uint64_t session, const std::string& path);
  // Up to max_bytes from offset into *out (empty at the end of the file).
  // kInvalidArgument for an id this session does not hold.
  Status Read(uint64_t session, uint64_t id, uint64_t offset, uint32_t max_bytes, std::string* out);
  Status End(uint64_t session, uint64_t id);
  // The connection is gone: close whatever it held.
  void DropSession(uint64_t session);
  size_t open_count() const { return files_.size(); }

 private:
  struct File {
    uint64_t session = 0;
    Fd fd;
    uint64_t size = 0;
  };
  size_t max_open_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, File> files_;
};

}  // namespace kvd::daemon
