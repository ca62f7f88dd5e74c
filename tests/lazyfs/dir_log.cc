#include "dir_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace lazyfs {

std::string DirLog::NewTrashPath() { return std::string(kTrashDir) + "/" + std::to_string(next_trash_++); }

std::vector<std::string> DirLog::Commit(const std::string& dir) {
  std::vector<std::string> trash;
  std::vector<DirOp> rest;
  for (auto& op : ops_) {
    if (op.dir != dir) {
      rest.push_back(std::move(op));
    } else if (!op.trash.empty()) {
      trash.push_back(op.trash);
    }
  }
  ops_ = std::move(rest);
  return trash;
}

std::vector<std::string> DirLog::CommitAll() {
  std::vector<std::string> trash;
  for (const auto& op : ops_) {
    if (!op.trash.empty()) trash.push_back(op.trash);
  }
  ops_.clear();
  return trash;
}

int DirLog::Revert() {
  int failures = 0;
  for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) {
    if (int rc = Undo(*it); rc != 0) {
      std::fprintf(stderr, "lazyfs: power cut: undoing an operation on %s failed: %s\n", it->path.c_str(),
                   std::strerror(-rc));
      ++failures;
    }
  }
  ops_.clear();
  return failures;
}

int DirLog::Undo(const DirOp& op) {
  using Kind = DirOp::Kind;
  switch (op.kind) {
    case Kind::kCreate:
      return ::unlinkat(root_, op.path.c_str(), 0) == 0 ? 0 : -errno;
    case Kind::kMkdir:
      // Its entries may have been committed by an fsync of the directory
      // itself: without its own entry in the parent they are lost as well.
      return RemoveTree(op.path);
    case Kind::kUnlink:
      return ::renameat(root_, op.trash.c_str(), root_, op.path.c_str()) == 0 ? 0 : -errno;
    case Kind::kRmdir:
      return ::mkdirat(root_, op.path.c_str(), op.mode) == 0 ? 0 : -errno;
    case Kind::kRename:
      if (::renameat(root_, op.path.c_str(), root_, op.from.c_str()) != 0) return -errno;
      if (!op.trash.empty() && ::renameat(root_, op.trash.c_str(), root_, op.path.c_str()) != 0) return -errno;
      return 0;
  }
  return -EINVAL;
}

int DirLog::RemoveTree(const std::string& path) {
  int fd = ::openat(root_, path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  int rc = 0;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    const std::string child = path + "/" + e->d_name;
    struct stat st;
    if (::fstatat(root_, child.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      rc = -errno;
    } else if (S_ISDIR(st.st_mode)) {
      if (int r = RemoveTree(child); r != 0) rc = r;
    } else if (::unlinkat(root_, child.c_str(), 0) != 0) {
      rc = -errno;
    }
  }
  ::closedir(d);
  if (::unlinkat(root_, path.c_str(), AT_REMOVEDIR) != 0 && rc == 0) rc = -errno;
  return rc;
}

}  // namespace lazyfs
