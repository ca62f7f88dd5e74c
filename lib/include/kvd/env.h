// Env: the one seam through which the engine touches the file system and
// reads the clock.
//
// Modelled on LevelDB's Env. The engine never calls open/write/fsync
// directly, so tests can substitute FaultEnv (kvd/fault_env.h) to simulate
// power loss, torn writes and failing syscalls, and it reads time only
// through Now(), so tests can drive time-based policy with FakeClockEnv
// (kvd/fake_clock_env.h) instead of sleeping. Keep it small: one interface,
// only what the WAL, snapshots, recovery and the engine's timers need.
//
// Thread safety: an Env may be used from several threads at once; a single
// file object is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvd/status.h"

namespace kvd {

// The engine's clock: monotonic, for intervals and deadlines, never wall time.
using Clock = std::chrono::steady_clock;

// A file written at explicit offsets. The WAL preallocates segments and then
// writes into them, so appends are positional rather than O_APPEND.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of data at offset (loops over short writes). On failure some
  // prefix of data may have reached the file: callers cut it back with
  // Truncate or by rewriting.
  virtual Status WriteAt(uint64_t offset, std::span<const std::byte> data) = 0;
  // fdatasync. A failure is final for this file (see docs/durability.md):
  // callers must never retry and then report success.
  virtual Status Sync() = 0;
  // fsync (data and metadata), for files whose size changed.
  virtual Status SyncAll() = 0;
  // Reserves [offset, offset+len) and extends the size to cover it (fallocate
  // mode 0). Returns Code::kUnsupported where the file system cannot
  // (EOPNOTSUPP); callers then grow the file by writing.
  virtual Status Allocate(uint64_t offset, uint64_t len) = 0;
  virtual Status Truncate(uint64_t size) = 0;
  // Current size in bytes (fstat).
  virtual Result<uint64_t> Size() = 0;
  // Closes the descriptor; the destructor closes too but cannot report.
  virtual Status Close() = 0;
  virtual const std::string& path() const = 0;
};

// A half-open byte range of a file.
struct ByteRange {
  uint64_t begin = 0;
  uint64_t end = 0;
  bool operator==(const ByteRange&) const = default;
};

class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to out.size() bytes at offset; returns the count (short at EOF).
  virtual Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> out) = 0;
  virtual Result<uint64_t> Size() = 0;
  virtual const std::string& path() const = 0;
  // The ranges [begin, end) of the file that may hold non-zero bytes, in
  // order (lseek SEEK_DATA/SEEK_HOLE); every byte outside them reads as zero.
  // May over-report (a written or cached zero page counts as data) but never
  // under-report. The default, for Envs and file systems that cannot tell,
  // is the whole file. Recovery uses it to skip a segment's preallocated,
  // never-written region without reading it.
  virtual Result<std::vector<ByteRange>> DataRanges();
};

// Held while a data directory is in use; released on destruction.
class FileLock {
 public:
  virtual ~FileLock() = default;
  // The descriptor the flock is held on, or -1. A forked child that keeps it
  // open shares the lock: it is released only when both have closed it.
  virtual int fd() const { return -1; }
};

enum class OpenMode {
  kCreateTruncate,  // create or truncate to zero (temp files)
  kCreateExclusive, // create; fail with kBusy if it exists
  kExisting,        // open an existing file for writing, keep its content
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX implementation.
  static Env* Default();

  // The time every time-based policy of the engine reads (batch mode's
  // flush_interval, none mode's write interval; later leases and timeouts),
  // as LevelDB's Env::NowMicros. Monotonic. The default, and the POSIX Env's,
  // is Clock::now() (steady_clock); a test Env may return a time it sets.
  // Measurements of real work (fdatasync latency) use the real clock.
  // May be called from any thread.
  virtual Clock::time_point Now();

  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                                OpenMode mode) = 0;
  virtual Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) = 0;
  // Reads a whole file (up to max_bytes; kTooLarge beyond).
  Result<std::string> ReadFileToString(const std::string& path, uint64_t max_bytes = UINT64_MAX);

  virtual bool FileExists(const std::string& path) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  // Names (not paths) of the entries of dir, without "." and "..", unsorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // mkdir -p; existing directories are fine.
  virtual Status CreateDirs(const std::string& dir) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // rename(2): atomic replace. Durable only after SyncDir of the directory.
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // fsync of a directory, making creations, renames and removals in it durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // flock(LOCK_EX|LOCK_NB) on path (created if absent). kBusy if another
  // process holds it; the message then names the path.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
};

// An Env that forwards every call to another one: derive from it and
// override only what a view or a fault needs (LevelDB's EnvWrapper).
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path, OpenMode mode) override {
    return target_->NewWritableFile(path, mode);
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    return target_->NewRandomAccessFile(path);
  }
  bool FileExists(const std::string& path) override { return target_->FileExists(path); }
  Result<uint64_t> FileSize(const std::string& path) override { return target_->FileSize(path); }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override { return target_->ListDir(dir); }
  Status CreateDirs(const std::string& dir) override { return target_->CreateDirs(dir); }
  Status RemoveFile(const std::string& path) override { return target_->RemoveFile(path); }
  Status RenameFile(const std::string& from, const std::string& to) override {
    return target_->RenameFile(from, to);
  }
  Status SyncDir(const std::string& dir) override { return target_->SyncDir(dir); }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override { return target_->LockFile(path); }
  Clock::time_point Now() override { return target_->Now(); }

 private:
  Env* target_;
};

// Helpers built on any Env.
std::string JoinPath(std::string_view dir, std::string_view name);
std::string DirName(std::string_view path);
// Writes data to path atomically and durably: write to path + ".tmp", fsync,
// rename over path, fsync the directory.
Status WriteFileAtomic(Env* env, const std::string& path, std::span<const std::byte> data);

inline std::span<const std::byte> AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string_view AsStringView(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace kvd
