// What file system a data directory lives on, and whether it can keep the
// durability promise (kvd logs both at start-up).
#pragma once

#include <optional>
#include <string>

namespace kvd::daemon {

// "ext4", "xfs", "btrfs", "tmpfs", "nfs", "overlay", ... by statfs(2) magic;
// "unknown (0x1234)" for others. A directory that does not exist yet is
// looked up through its nearest existing parent (where it will be created).
// "unknown (statfs: <error>)" if even that fails.
std::string FileSystemName(const std::string& dir);

// A warning sentence when the file system cannot keep the promise:
// tmpfs/ramfs (nothing survives a reboot), nfs/cifs/overlay/fuse/9p (fsync
// may not reach stable storage). nullopt when there is nothing to say.
std::optional<std::string> FileSystemWarning(const std::string& dir);

}  // namespace kvd::daemon
