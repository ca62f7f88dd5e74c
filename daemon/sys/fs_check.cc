#include "sys/fs_check.h"

#include <sys/vfs.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace kvd::daemon {
namespace {

enum class Risk { kNone, kVolatile, kWeakSync };

struct FsType {
  uint64_t magic;
  std::string_view name;
  Risk risk;
};

// Values from <linux/magic.h> (and fs sources for those it lacks), spelled
// out so the list reads as one table.
constexpr FsType kTypes[] = {
    {0xEF53, "ext4", Risk::kNone},  // ext2/ext3/ext4 share the magic
    {0x58465342, "xfs", Risk::kNone},
    {0x9123683E, "btrfs", Risk::kNone},
    {0x2FC12FC1, "zfs", Risk::kNone},
    {0xF2F52010, "f2fs", Risk::kNone},
    {0x4D44, "vfat", Risk::kNone},
    {0x5346544E, "ntfs", Risk::kNone},
    {0x01021994, "tmpfs", Risk::kVolatile},
    {0x858458F6, "ramfs", Risk::kVolatile},
    {0x6969, "nfs", Risk::kWeakSync},
    {0xFF534D42, "cifs", Risk::kWeakSync},
    {0xFE534D42, "smb2", Risk::kWeakSync},
    {0x794C7630, "overlay", Risk::kWeakSync},
    {0x65735546, "fuse", Risk::kWeakSync},
    {0x01021997, "9p", Risk::kWeakSync},
    {0x00C36400, "ceph", Risk::kWeakSync},
    {0x73717368, "squashfs", Risk::kNone},
};

struct Lookup {
  const FsType* type = nullptr;
  uint64_t magic = 0;
  int error = 0;
};

Lookup Find(const std::string& dir) {
  std::string path = dir.empty() ? "." : dir;
  struct statfs st {};
  while (::statfs(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return {nullptr, 0, errno};
    // Not created yet: the nearest existing parent is where it will live.
    // (assign(n, c) rather than operator= of a literal: g++ 12 -O3 reports a
    // false -Wrestrict on the latter.)
    const size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) {
      path.assign(1, '.');
    } else if (slash == 0) {
      path.assign(1, '/');
    } else {
      path.resize(slash);
    }
    if (path == "." || path == "/") {
      if (::statfs(path.c_str(), &st) != 0) return {nullptr, 0, errno};
      break;
    }
  }
  Lookup out;
  out.magic = static_cast<uint64_t>(static_cast<uint32_t>(st.f_type));
  for (const FsType& t : kTypes) {
    if (t.magic == out.magic) out.type = &t;
  }
  return out;
}

}  // namespace

std::string FileSystemName(const std::string& dir) {
  const Lookup l = Find(dir);
  if (l.error != 0) return "unknown (statfs: " + std::string(std::strerror(l.error)) + ")";
  if (l.type != nullptr) return std::string(l.type->name);
  char hex[32];
  std::snprintf(hex, sizeof hex, "unknown (0x%llx)", static_cast<unsigned long long>(l.magic));
  return hex;
}

std::optional<std::string> FileSystemWarning(const std::string& dir) {
  const Lookup l = Find(dir);
  if (l.type == nullptr) return std::nullopt;
  const std::string where = dir + " is on " + std::string(l.type->name);
  switch (l.type->risk) {
    case Risk::kNone: return std::nullopt;
    case Risk::kVolatile:
      return where + ": it lives in memory, so no data survives a reboot or power loss, whatever the "
                     "durability mode";
    case Risk::kWeakSync:
      return where + ": fdatasync may not reach stable storage there, so acknowledged writes can be lost "
                     "on a crash of the host or server";
  }
  return std::nullopt;
}

}  // namespace kvd::daemon
