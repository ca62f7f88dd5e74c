// FaultEnv's internal state, shared by fault_env.cc (the Env and its files)
// and fault_env_power.cc (what a power loss does to them). Not a public API.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "kvd/fault_env.h"
#include "testing/fault_dir_journal.h"

namespace kvd {
namespace fault {

inline constexpr std::string_view kTrashPrefix = ".fault-trash-";

inline std::string NormDir(std::string_view dir) {
  std::string d(dir);
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}
inline std::string DirOf(const std::string& path) { return NormDir(DirName(path)); }
// The env's own files (trash, the directory journal): invisible through it.
inline bool IsFaultName(std::string_view name) { return name.starts_with(kFaultPrefix); }

// One change to a file's data since its last sync. old_bytes are the bytes
// the change overwrote or cut, starting at `offset` (truncate: at new size).
struct Change {
  enum Kind : uint8_t { kWrite, kAllocate, kTruncate } kind;
  uint64_t offset = 0;
  uint64_t len = 0;       // write/allocate length; truncate: the new size
  uint64_t old_size = 0;  // file size before the change
  std::string old_bytes;  // normal mode only
  std::string data;       // write-through mode only: the bytes still to write
};

// A write whose fsync failed (normal mode). Linux marks such pages clean: a
// later successful fsync does not write them, so a power cut loses them
// whatever was synced after -- except where a later synced write covered them.
struct Doomed {
  Change write;
  std::vector<std::pair<uint64_t, uint64_t>> covered;  // [from, to) synced later
  uint64_t synced_end = 0;                              // end of the furthest write synced later
};

struct FileState {
  uint64_t size = 0;  // logical size, including unsynced changes
  bool in_trash = false;
  std::vector<Change> changes;
  std::vector<Doomed> doomed;
};
using StatePtr = std::shared_ptr<FileState>;

struct DirOp {
  enum Kind : uint8_t { kCreate, kRemove, kRename } kind;
  std::set<std::string> unsynced_dirs;  // the op is durable once this is empty
  std::string path;                     // create/remove: the file; rename: `to`
  std::string from;                     // rename only
  std::string trash;                    // remove: where the file went; rename: the replaced file
};

struct Failure {
  FaultEnv::Op op;
  int err;
  int skip;
  int count;
  std::string path_contains;
};

// len bytes at offset (fewer at the end of the file).
Status ReadRange(RandomAccessFile* f, uint64_t offset, uint64_t len, std::string* out);
// The bytes [from, to) of a file, without its trailing zeros.
Status ReadTail(RandomAccessFile* f, uint64_t from, uint64_t to, std::string* out);

}  // namespace fault

struct FaultEnv::Impl {
  using Change = fault::Change;
  using Doomed = fault::Doomed;
  using FileState = fault::FileState;
  using StatePtr = fault::StatePtr;
  using DirOp = fault::DirOp;
  using Failure = fault::Failure;

  Env* base;
  Options opt;
  mutable std::mutex mu;
  std::mt19937_64 rng;
  uint64_t generation = 0;
  bool power_off = false;
  int64_t cut_after = -1;
  std::vector<Failure> failures;
  uint64_t counts[kNumOps] = {};
  uint64_t space_limit = 0;
  std::map<std::string, StatePtr> files;  // by current path (trash names included)
  std::vector<DirOp> dir_ops;             // unsynced, oldest first (normal mode)
  uint64_t trash_seq = 0;
  uint64_t files_hit = 0;  // see files_hit_by_power_loss()
  // Write-through mode: directories whose journal this process has replayed
  // (the "power on" after the previous process was killed) or written.
  std::set<std::string> powered_dirs;

  // StallSyncWhileFileExists: guarded by mu, read before a sync takes it.
  std::string stall_file;
  std::chrono::milliseconds stall_max{0};
  std::atomic<uint64_t> stalled_now{0}, stalled_total{0};
  // Blocks while the stall file exists (bounded); called without mu held.
  void MaybeStallSync();

  bool through() const { return opt.write_through_on_sync; }

  // Write-through: the first touch of a directory undoes what its journal
  // lists, as the power cut that killed the previous process would have.
  void PowerOnDir(const std::string& dir) {
    if (!through() || dir.empty() || powered_dirs.contains(dir)) return;
    powered_dirs.insert(dir);
    fault::RevertDirJournal(base, dir);
  }
  void PowerOnPath(const std::string& path) { PowerOnDir(fault::DirOf(path)); }

  // Records an unsynced directory operation (memory, or the journal in write-through mode).
  Status RecordDirOp(DirOp op) {
    if (through()) {
      const fault::DirJournalEntry::Kind kind = op.kind == DirOp::kCreate   ? fault::DirJournalEntry::kCreate
                                         : op.kind == DirOp::kRemove ? fault::DirJournalEntry::kRemove
                                                                     : fault::DirJournalEntry::kRename;
      return fault::AppendDirJournal(fault::DirOf(op.path), {kind, op.path, op.from, op.trash});
    }
    dir_ops.push_back(std::move(op));
    return Status::Ok();
  }
  // The operation just recorded failed (normal mode; a journalled one undoes as a no-op).
  void ForgetDirOp() {
    if (!through()) dir_ops.pop_back();
  }

  uint64_t Used() const {
    uint64_t used = 0;
    for (const auto& [p, st] : files) used += st->in_trash ? 0 : st->size;
    return used;
  }
  uint64_t Rand(uint64_t n) { return n == 0 ? 0 : rng() % n; }
  bool Coin() { return (rng() & 1) != 0; }

  // Gate for every mutating operation: power, the scheduled cut, counters and
  // injected failures. Returns non-OK to fail the operation; *err is the
  // injected errno (0 if the failure is the power).
  Status Begin(Op op, std::string_view path, int* err) {
    *err = 0;
    if (power_off) return Status::IOError("fault env: power is off");
    if (cut_after == 0) {
      cut_after = -1;
      PowerLossLocked();
      power_off = true;
      return Status::IOError("fault env: power cut");
    }
    if (cut_after > 0) cut_after--;
    counts[static_cast<int>(op)]++;
    for (auto it = failures.begin(); it != failures.end(); ++it) {
      if (it->op != op) continue;
      if (!it->path_contains.empty() && path.find(it->path_contains) == std::string_view::npos) continue;
      if (it->skip > 0) {
        it->skip--;
        return Status::Ok();
      }
      *err = it->err;
      if (--it->count <= 0) failures.erase(it);
      if (*err == EOPNOTSUPP) return Status::Unsupported("fault env: injected EOPNOTSUPP on " + std::string(path));
      return Status::FromErrno(*err, "fault env: injected on " + std::string(path));
    }
    return Status::Ok();
  }

  Status PowerOk() const {
    return power_off ? Status::IOError("fault env: power is off") : Status::Ok();
  }

  StatePtr Take(const std::string& path) {
    auto it = files.find(path);
    if (it == files.end()) return nullptr;
    StatePtr st = it->second;
    files.erase(it);
    return st;
  }
  void Put(const std::string& path, StatePtr st) {
    if (st) files[path] = std::move(st);
  }

  std::string TrashName(const std::string& dir) {
    return JoinPath(dir, std::string(fault::kTrashPrefix) + std::to_string(++trash_seq));
  }

  // ---- power loss (fault_env_power.cc); called with mu held ----
  // Reverts (or, write-through, partially applies) one file's unsynced changes.
  void RevertFile(const std::string& path, FileState* st);
  void RevertPages(const std::string& path, FileState* st);
  void RevertDoomed(const std::string& path, FileState* st);
  void RevertChanges(const std::string& path, FileState* st);
  static void UndoChange(WritableFile* f, const Change& c);
  static Status ApplyChange(WritableFile* f, const Change& c);
  void PowerLossLocked();
};

}  // namespace kvd
