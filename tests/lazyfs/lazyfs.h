// kvd_lazyfs's file system model, behind the FUSE glue (fuse_main.cc).
//
// A passthrough over a backing directory that behaves like a disk with a
// volatile page cache and no journal ordering to lean on (what POSIX and
// fsync(2) promise, not what ext4 happens to do; docs/testing.md, "The
// power-cut file system"):
//   * file data, truncations and fallocate growth stay in memory (FileCache)
//     until fsync or fdatasync of that file writes them to the backing file;
//   * creations, removals and renames reach the backing directory at once but
//     are undone by a power cut unless an fsync of their directory came after
//     them (DirLog);
//   * PowerCut() drops every unsynced byte and undoes every uncommitted
//     directory operation: the backing directory then holds exactly what was
//     made durable. The power stays off (every call fails with EIO) until the
//     file system is mounted again, as a machine stays down until it reboots.
// Paths are relative to the backing root ("." is the root). Every method
// returns a value >= 0 or a negative errno. Not thread-safe: the FUSE loop is
// single-threaded, so operations are serialised in the order the kernel
// delivers them (an fsync that returned before a cut was requested is durable).
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "dir_log.h"
#include "page_cache.h"

namespace lazyfs {

inline constexpr char kCtlName[] = ".lazyfs-ctl";

struct Stats {
  uint64_t fsyncs = 0, dirsyncs = 0, cuts = 0;
  uint64_t dropped_bytes = 0;   // dirty page bytes the cuts dropped
  uint64_t dropped_files = 0;   // files whose unsynced changes (data or size) the cuts dropped
  uint64_t dropped_dirops = 0;  // directory operations the cuts undid
  uint64_t revert_errors = 0;   // undo steps that failed (a broken model; must stay 0)
};

// An open file: the cache it writes into and the power epoch it was opened in.
struct OpenFile {
  std::shared_ptr<FileCache> cache;
  uint64_t epoch;
  bool append;
};

class LazyFs {
 public:
  // root_fd: the backing directory, owned. Its trash directory must be empty
  // (a non-empty one is left by a lazyfs that died: Open refuses it).
  static int Open(const std::string& backing, std::unique_ptr<LazyFs>* out);
  ~LazyFs();

  bool power_on() const { return power_on_; }
  const Stats& stats() const { return stats_; }
  // Hidden from the mounted tree: the trash directory.
  static bool Hidden(const std::string& rel);

  int GetAttr(const std::string& rel, const OpenFile* file, struct stat* st);
  int OpenFileAt(const std::string& rel, int flags, std::unique_ptr<OpenFile>* out);
  int Create(const std::string& rel, mode_t mode, int flags, std::unique_ptr<OpenFile>* out);
  ssize_t Read(const OpenFile& f, char* buf, size_t len, uint64_t off);
  ssize_t Write(const OpenFile& f, const char* buf, size_t len, uint64_t off);
  int Truncate(const std::string& rel, const OpenFile* file, uint64_t size);
  int Allocate(const OpenFile& f, int mode, uint64_t off, uint64_t len);
  int Fsync(const OpenFile& f);
  void Release(std::unique_ptr<OpenFile> f);
  int Unlink(const std::string& rel);
  int Mkdir(const std::string& rel, mode_t mode);
  int Rmdir(const std::string& rel);
  int Rename(const std::string& from, const std::string& to, unsigned flags);
  int FsyncDir(const std::string& rel);
  int ReadDir(const std::string& rel, const std::function<void(const char*)>& emit);
  int Chmod(const std::string& rel, mode_t mode);
  int Utimens(const std::string& rel, const struct timespec tv[2]);
  int StatFs(struct statvfs* st);

  // The control file: "cut" (power cut), "sync" (sync(1): every file and
  // directory made durable). Status(): counters, one "name value" per line.
  int Control(const std::string& command);
  std::string Status() const;
  void PowerCut();
  int SyncAll();

 private:
  explicit LazyFs(int root_fd) : root_(root_fd), log_(root_fd) {}
  int Usable(const OpenFile* f) const;
  int CacheFor(const std::string& rel, std::shared_ptr<FileCache>* out);
  int DeleteTrash(const std::vector<std::string>& trash);

  int root_;
  bool power_on_ = true;
  uint64_t epoch_ = 0;
  DirLog log_;
  // Caches by backing inode number. A cache keeps its backing file open, so
  // the inode (and its number) cannot be reused while it is here.
  std::unordered_map<ino_t, std::shared_ptr<FileCache>> caches_;
  Stats stats_;
};

}  // namespace lazyfs
