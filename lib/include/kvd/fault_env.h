// FaultEnv: an Env that can lose power, tear writes and fail syscalls.
//
// Wraps a real Env (usually Env::Default() on a temp directory) and keeps
// enough bookkeeping to undo whatever a power cut would take away:
//   - per file, every change (write, allocate, truncate) since its last
//     Sync/SyncAll, with the bytes it overwrote (an undo log);
//   - per directory, every creation, rename and removal since its last
//     SyncDir. An unsynced removal moves the file to a hidden ".fault-trash-N"
//     name (invisible through this Env) so that it can come back;
//   - per file, the writes whose Sync failed. Linux marks their pages clean
//     after a failed fsync, so a later Sync that succeeds does not make them
//     durable: a power cut takes them anyway (a retry-then-acknowledge bug
//     loses data here as it would on ext4).
// SimulatePowerLoss() reverts all of it: files get their last synced content
// and size back, unsynced creations/renames/removals are undone. With
// Options::torn_writes a random prefix of the unsynced changes of each file
// survives instead, the last one cut at a random byte (page cache flushed
// part of the way). With Options::torn_pages, about half the power cuts keep
// a random subset of the 4 KiB pages the unsynced writes touched, in any
// order: a later page may survive while an earlier one is lost, as kernel
// writeback has no order. Modelled on LevelDB's db/fault_injection_test.cc
// and RocksDB's utilities/fault_injection_fs.h.
//
// Write-through-on-sync mode (Options::write_through_on_sync, for killing a
// whole daemon with SIGKILL): writes, allocations and truncations are kept in
// process memory and reach the real file only on Sync/SyncAll, so a SIGKILL
// loses exactly the file data a power cut would (a failed Sync drops them for
// good). Directory operations reach the disk at once but are first written to
// a hidden journal in their directory (".fault-dirops"); the next FaultEnv to
// touch that directory -- the restarted daemon -- undoes what no SyncDir
// made durable. With Options::writeback random pages of unsynced writes reach
// the file early, in any order, so a SIGKILL may keep a later page and lose an
// earlier one. Limit of that mode: reads through NewRandomAccessFile /
// ReadFileToString see only the data that reached the file.
//
// Thread safety: every method may be called from any thread; one mutex
// serialises all operations (the real I/O happens under it, which is fine for
// tests). A file object keeps working only until the next power loss: after
// that every call on it fails with kIOError ("stale handle").
// Fork: the mutex is held across fork() (pthread_atfork), so a forked child
// (kvd's snapshot writer) can keep using the Env; the child's bookkeeping is
// its own copy.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kvd/env.h"

namespace kvd {

class FaultEnv : public Env {
 public:
  enum class Op : uint8_t {
    kWrite,     // WritableFile::WriteAt
    kSync,      // WritableFile::Sync and SyncAll
    kSyncDir,   // Env::SyncDir
    kAllocate,  // WritableFile::Allocate
    kTruncate,  // WritableFile::Truncate
    kRename,    // Env::RenameFile
    kCreate,    // NewWritableFile that creates or truncates a file
    kRemove,    // Env::RemoveFile
  };
  static constexpr int kNumOps = 8;

  struct Options {
    uint64_t seed = 1;
    // On power loss keep a random prefix of each file's unsynced changes,
    // the last kept write cut at a random byte, instead of dropping them all.
    bool torn_writes = false;
    // Page-granular loss on power cut (see the file comment); normal mode.
    bool torn_pages = false;
    // The unit torn_pages and writeback keep or lose (the kernel's page; tests
    // with tiny files may use a smaller one).
    uint64_t page_size = 4096;
    // See the file comment.
    bool write_through_on_sync = false;
    // Write-through mode: unsynced pages reach the file early, in random order.
    bool writeback = false;
    // An injected write failure first writes a random prefix of the data
    // (as a real write() may before it fails); callers must cut it back.
    bool partial_write_on_error = true;
  };

  explicit FaultEnv(Env* base);
  FaultEnv(Env* base, Options options);
  ~FaultEnv() override;

  // ---- power -----------------------------------------------------------------
  // Drops everything not made durable (see the file comment). Files opened
  // before become stale. The power stays on: open new files and go on.
  void SimulatePowerLoss();
  // Power loss, and the power stays off: every later call fails with kIOError
  // until PowerOn(). Lets a test stop a running engine "mid-flight".
  void CutPower();
  // CutPower() just before the n+1-th mutating operation from now (any Op);
  // that operation and everything after fail. n = 0: the very next one.
  void CutPowerAfter(uint64_t n);
  void PowerOn();
  bool power_off() const;

  // ---- injected errors ---------------------------------------------------------
  // The next `count` operations of kind op (on a path containing
  // path_contains, if not empty) fail with err (EIO, ENOSPC, EOPNOTSUPP for
  // kAllocate, ...).
  void FailNext(Op op, int err, int count = 1, std::string path_contains = "");
  // As FailNext, after `successes` matching operations succeeded.
  void FailAfter(Op op, int successes, int err, int count = 1, std::string path_contains = "");
  void ClearFailures();

  // ---- a stalled disk --------------------------------------------------------------
  // While the file `path` exists (checked through the base Env every few
  // ms), every WritableFile::Sync / SyncAll blocks before it starts, at most
  // `max_stall` per call (then it goes on: a forgotten file slows a test, it
  // does not hang it). Lets a test hold a daemon's fdatasync and release it
  // by removing the file (kvd --fault-env stall-sync-file=PATH). The wait
  // holds no lock: other threads' writes and reads go on. Empty path: off.
  void StallSyncWhileFileExists(std::string path, std::chrono::milliseconds max_stall = std::chrono::seconds(60));
  // Syncs blocked by the stall right now, and in all so far.
  uint64_t syncs_stalled_now() const;
  uint64_t syncs_stalled() const;

  // ---- a full disk ---------------------------------------------------------------
  // Bytes that files written through this Env may occupy in total (their
  // sizes; files never opened for writing do not count). Past it, WriteAt
  // writes what fits and fails with ENOSPC, Allocate fails with ENOSPC.
  // Removing files frees space. 0 = no limit.
  void SetSpaceLimit(uint64_t bytes);
  uint64_t space_used() const;

  // ---- observation -----------------------------------------------------------------
  // Operations of kind op that reached the base Env (successful or not).
  uint64_t count(Op op) const;
  // Files with changes not yet synced, and directory operations not yet synced.
  size_t unsynced_files() const;
  size_t unsynced_dir_ops() const;
  // How often a power loss took unsynced data (of one file, in whole or in
  // part) away: lets a test prove its power cuts were not all harmless.
  uint64_t files_hit_by_power_loss() const;

  // ---- Env ---------------------------------------------------------------------------
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        OpenMode mode) override;
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override;
  bool FileExists(const std::string& path) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status CreateDirs(const std::string& dir) override;
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

 private:
  class File;
  friend class File;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvd
