#include "lazyfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>  // RENAME_NOREPLACE, RENAME_EXCHANGE
#include <cstring>

namespace lazyfs {
namespace {

std::string Parent(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? "." : rel.substr(0, slash);
}

}  // namespace

int LazyFs::Open(const std::string& backing, std::unique_ptr<LazyFs>* out) {
  int root = ::open(backing.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return -errno;
  if (::mkdirat(root, kTrashDir, 0700) != 0 && errno != EEXIST) {
    int err = errno;
    ::close(root);
    return -err;
  }
  // Trash left behind means a lazyfs died without a cut or an unmount: what
  // it would have undone is unknown, so the backing directory is no disk image.
  int tfd = ::openat(root, kTrashDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = tfd < 0 ? nullptr : ::fdopendir(tfd);
  if (d == nullptr) {
    int err = errno;
    if (tfd >= 0) ::close(tfd);
    ::close(root);
    return -err;
  }
  bool empty = true;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) empty = false;
  }
  ::closedir(d);
  if (!empty) {
    ::close(root);
    return -ENOTEMPTY;
  }
  out->reset(new LazyFs(root));
  return 0;
}

LazyFs::~LazyFs() {
  caches_.clear();
  ::close(root_);
}

bool LazyFs::Hidden(const std::string& rel) {
  const size_t n = std::strlen(kTrashDir);
  return rel.compare(0, n, kTrashDir) == 0 && (rel.size() == n || rel[n] == '/');
}

int LazyFs::Usable(const OpenFile* f) const {
  if (!power_on_) return -EIO;
  if (f != nullptr && f->epoch != epoch_) return -EIO;  // opened before a power cut
  return 0;
}

int LazyFs::CacheFor(const std::string& rel, std::shared_ptr<FileCache>* out) {
  struct stat st;
  if (::fstatat(root_, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  if (S_ISDIR(st.st_mode)) return -EISDIR;
  if (!S_ISREG(st.st_mode)) return -EPERM;
  if (auto it = caches_.find(st.st_ino); it != caches_.end()) {
    *out = it->second;
    return 0;
  }
  int fd = ::openat(root_, rel.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -errno;
  auto cache = std::make_shared<FileCache>(fd, static_cast<uint64_t>(st.st_size));
  caches_[st.st_ino] = cache;
  *out = std::move(cache);
  return 0;
}

int LazyFs::GetAttr(const std::string& rel, const OpenFile* file, struct stat* st) {
  if (rel != "." && !power_on_) return -EIO;
  if (Hidden(rel)) return -ENOENT;
  if (file != nullptr) {
    if (int rc = Usable(file); rc < 0) return rc;
    if (::fstat(file->cache->fd(), st) != 0) return -errno;
    st->st_size = static_cast<off_t>(file->cache->size());
  } else {
    if (::fstatat(root_, rel.c_str(), st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
    if (auto it = caches_.find(st->st_ino); it != caches_.end() && S_ISREG(st->st_mode)) {
      st->st_size = static_cast<off_t>(it->second->size());
    }
  }
  st->st_blocks = (st->st_size + 511) / 512;
  return 0;
}

int LazyFs::OpenFileAt(const std::string& rel, int flags, std::unique_ptr<OpenFile>* out) {
  if (int rc = Usable(nullptr); rc < 0) return rc;
  if (Hidden(rel)) return -ENOENT;
  std::shared_ptr<FileCache> cache;
  if (int rc = CacheFor(rel, &cache); rc < 0) return rc;
  if ((flags & O_TRUNC) != 0 && (flags & O_ACCMODE) != O_RDONLY) cache->Truncate(0);
  out->reset(new OpenFile{std::move(cache), epoch_, (flags & O_APPEND) != 0});
  return 0;
}

int LazyFs::Create(const std::string& rel, mode_t mode, int flags, std::unique_ptr<OpenFile>* out) {
  if (int rc = Usable(nullptr); rc < 0) return rc;
  if (Hidden(rel)) return -EACCES;
  int fd = ::openat(root_, rel.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    if (errno == EEXIST && (flags & O_EXCL) == 0) return OpenFileAt(rel, flags, out);
    return -errno;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    ::unlinkat(root_, rel.c_str(), 0);
    return -err;
  }
  log_.Record({DirOp::Kind::kCreate, Parent(rel), rel, "", "", 0});
  auto cache = std::make_shared<FileCache>(fd, 0);
  caches_[st.st_ino] = cache;
  out->reset(new OpenFile{std::move(cache), epoch_, (flags & O_APPEND) != 0});
  return 0;
}

ssize_t LazyFs::Read(const OpenFile& f, char* buf, size_t len, uint64_t off) {
  if (int rc = Usable(&f); rc < 0) return rc;
  return f.cache->Read(buf, len, off);
}

ssize_t LazyFs::Write(const OpenFile& f, const char* buf, size_t len, uint64_t off) {
  if (int rc = Usable(&f); rc < 0) return rc;
  // Without the kernel's writeback cache the file system owns O_APPEND.
  return f.cache->Write(buf, len, f.append ? f.cache->size() : off);
}

int LazyFs::Truncate(const std::string& rel, const OpenFile* file, uint64_t size) {
  if (int rc = Usable(file); rc < 0) return rc;
  if (file != nullptr) {
    file->cache->Truncate(size);
    return 0;
  }
  if (Hidden(rel)) return -ENOENT;
  std::shared_ptr<FileCache> cache;
  if (int rc = CacheFor(rel, &cache); rc < 0) return rc;
  cache->Truncate(size);
  return 0;
}

int LazyFs::Allocate(const OpenFile& f, int mode, uint64_t off, uint64_t len) {
  if (int rc = Usable(&f); rc < 0) return rc;
  if (mode == FALLOC_FL_KEEP_SIZE) return 0;  // reserves blocks only: nothing to see or lose
  if (mode != 0) return -EOPNOTSUPP;
  f.cache->Allocate(off, len);
  return 0;
}

int LazyFs::Fsync(const OpenFile& f) {
  if (int rc = Usable(&f); rc < 0) return rc;
  ++stats_.fsyncs;
  return f.cache->Sync();
}

void LazyFs::Release(std::unique_ptr<OpenFile> f) {
  // A clean cache nobody else holds has nothing the backing file lacks.
  auto cache = std::move(f->cache);
  f.reset();
  if (!cache->clean() || cache.use_count() > 2) return;
  struct stat st;
  if (::fstat(cache->fd(), &st) != 0) return;
  if (auto it = caches_.find(st.st_ino); it != caches_.end() && it->second == cache) caches_.erase(it);
}

int LazyFs::Unlink(const std::string& rel) {
  if (int rc = Usable(nullptr); rc < 0) return rc;
  if (Hidden(rel)) return -ENOENT;
  struct stat st;
  if (::fstatat(root_, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  if (S_ISDIR(st.st_mode)) return -EISDIR;
  std::string trash = log_.NewTrashPath();
  if (::renameat(root_, rel.c_str(), root_, trash.c_str()) != 0) return -errno;
  log_.Record({DirOp::Kind::kUnlink, Parent(rel), rel, "", std::move(trash), 0});
  return 0;
}

int LazyFs::Mkdir(const std::string& rel, mode_t mode) {
  if (int rc = Usable(nullptr); rc < 0) return rc;
  if (Hidden(rel)) return -EACCES;
  if (::mkdirat(root_, rel.c_str(), mode) != 0) return -errno;
  log_.Record({DirOp::Kind::kMkdir, Parent(rel), rel, "", "", 0});
  return 0;
}

int LazyFs::Rmdir(const std::string& rel) {
  if (int rc = Usable(nullptr); rc < 0) return rc;
  if (Hidden(rel)) return -ENOENT;
  struct stat st;
  if (::fstatat(root_, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  if (::unlinkat(root_, rel.c_str(), AT_REMOVEDIR) != 0) return -errno;
  log_.Record({DirOp::Kind::kRmdir, Parent(rel), rel, "", "", st.st_mode & 07777});
  return 0;
}

int LazyFs::Rename(const std::string& from, const std::string& to, unsigned flags) {
  if (int rc = Usable(nullptr); rc < 0) return rc;
  if (Hidden(from) || Hidden(to)) return -EACCES;
  if ((flags & RENAME_EXCHANGE) != 0) return -EINVAL;
  struct stat st;
  if (::fstatat(root_, from.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  // The model keeps each directory's log apart: renames of directories or
  // across directories would tie two logs together (kvd does neither).
  if (S_ISDIR(st.st_mode) || Parent(from) != Parent(to)) return -EXDEV;
  if (from == to) return 0;
  std::string trash;
  struct stat target;
  if (::fstatat(root_, to.c_str(), &target, AT_SYMLINK_NOFOLLOW) == 0) {
    if ((flags & RENAME_NOREPLACE) != 0) return -EEXIST;
    if (S_ISDIR(target.st_mode)) return -EISDIR;
    trash = log_.NewTrashPath();
    if (::renameat(root_, to.c_str(), root_, trash.c_str()) != 0) return -errno;
  } else if (errno != ENOENT) {
    return -errno;
  }
  if (::renameat(root_, from.c_str(), root_, to.c_str()) != 0) {
    int err = errno;
    if (!trash.empty()) ::renameat(root_, trash.c_str(), root_, to.c_str());
    return -err;
  }
  log_.Record({DirOp::Kind::kRename, Parent(to), to, from, std::move(trash), 0});
  return 0;
}

int LazyFs::DeleteTrash(const std::vector<std::string>& trash) {
  int rc = 0;
  for (const auto& path : trash) {
    struct stat st;
    if (::fstatat(root_, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) caches_.erase(st.st_ino);
    if (::unlinkat(root_, path.c_str(), 0) != 0 && rc == 0) rc = -errno;
  }
  return rc;
}

int LazyFs::FsyncDir(const std::string& rel) {
  if (int rc = Usable(nullptr); rc < 0) return rc;
  ++stats_.dirsyncs;
  return DeleteTrash(log_.Commit(rel));
}

int LazyFs::ReadDir(const std::string& rel, const std::function<void(const char*)>& emit) {
  if (int rc = Usable(nullptr); rc < 0) return rc;
  if (Hidden(rel)) return -ENOENT;
  int fd = ::openat(root_, rel.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  while (struct dirent* e = ::readdir(d)) {
    if (rel == "." && std::strcmp(e->d_name, kTrashDir) == 0) continue;
    emit(e->d_name);
  }
  ::closedir(d);
  return 0;
}

int LazyFs::Chmod(const std::string& rel, mode_t mode) {
  if (int rc = Usable(nullptr); rc < 0) return rc;
  if (Hidden(rel)) return -ENOENT;
  return ::fchmodat(root_, rel.c_str(), mode, 0) == 0 ? 0 : -errno;
}

int LazyFs::Utimens(const std::string& rel, const struct timespec tv[2]) {
  if (int rc = Usable(nullptr); rc < 0) return rc;
  if (Hidden(rel)) return -ENOENT;
  return ::utimensat(root_, rel.c_str(), tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

int LazyFs::StatFs(struct statvfs* st) { return ::fstatvfs(root_, st) == 0 ? 0 : -errno; }

void LazyFs::PowerCut() {
  if (!power_on_) return;
  for (const auto& [ino, cache] : caches_) {
    stats_.dropped_bytes += cache->dirty_bytes();
    if (!cache->clean()) ++stats_.dropped_files;
  }
  stats_.dropped_dirops += log_.pending();
  stats_.revert_errors += static_cast<uint64_t>(log_.Revert());
  caches_.clear();  // open files keep theirs, but can no longer use them (epoch)
  ++stats_.cuts;
  ++epoch_;
  power_on_ = false;
}

int LazyFs::SyncAll() {
  if (int rc = Usable(nullptr); rc < 0) return rc;
  int rc = 0;
  for (const auto& [ino, cache] : caches_) {
    if (int r = cache->Sync(); r < 0 && rc == 0) rc = r;
  }
  if (int r = DeleteTrash(log_.CommitAll()); r < 0 && rc == 0) rc = r;
  return rc;
}

int LazyFs::Control(const std::string& command) {
  std::string c = command;
  while (!c.empty() && (c.back() == '\n' || c.back() == ' ')) c.pop_back();
  if (c == "cut") {
    PowerCut();
    return 0;
  }
  if (c == "sync") return SyncAll();
  return -EINVAL;
}

std::string LazyFs::Status() const {
  uint64_t dirty = 0, unsynced_files = 0;
  for (const auto& [ino, cache] : caches_) {
    dirty += cache->dirty_bytes();
    if (!cache->clean()) ++unsynced_files;
  }
  std::string s;
  auto line = [&s](const char* name, uint64_t v) { s += std::string(name) + " " + std::to_string(v) + "\n"; };
  line("power_on", power_on_ ? 1 : 0);
  line("dirty_bytes", dirty);
  line("unsynced_files", unsynced_files);
  line("pending_dirops", log_.pending());
  line("fsyncs", stats_.fsyncs);
  line("dirsyncs", stats_.dirsyncs);
  line("cuts", stats_.cuts);
  line("dropped_bytes", stats_.dropped_bytes);
  line("dropped_files", stats_.dropped_files);
  line("dropped_dirops", stats_.dropped_dirops);
  line("revert_errors", stats_.revert_errors);
  return s;
}

}  // namespace lazyfs
