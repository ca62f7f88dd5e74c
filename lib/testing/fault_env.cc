// FaultEnv: see kvd/fault_env.h for the model of what survives a power cut.
#include "kvd/fault_env.h"

#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "testing/fault_dir_journal.h"

namespace kvd {
namespace {

using fault::DirJournalEntry;
constexpr std::string_view kTrashPrefix = ".fault-trash-";

std::string NormDir(std::string_view dir) {
  std::string d(dir);
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}
std::string DirOf(const std::string& path) { return NormDir(DirName(path)); }
// The env's own files (trash, the directory journal): invisible through it.
bool IsFaultName(std::string_view name) { return name.starts_with(fault::kFaultPrefix); }

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

Status ReadRange(RandomAccessFile* f, uint64_t offset, uint64_t len, std::string* out) {
  out->assign(len, '\0');
  KVD_ASSIGN_OR_RETURN(size_t n, f->ReadAt(offset, {reinterpret_cast<std::byte*>(out->data()), len}));
  out->resize(n);
  return Status::Ok();
}

// Position just past the last non-zero byte of data (0 if all zeros).
size_t NonZeroEnd(std::string_view data) {
  static const char kZeros[4096] = {};
  size_t end = data.size();
  while (end > 0) {
    size_t n = std::min<size_t>(end, sizeof(kZeros));
    if (std::memcmp(data.data() + end - n, kZeros, n) != 0) break;
    end -= n;
  }
  while (end > 0 && data[end - 1] == '\0') --end;
  return end;
}

// The bytes [from, to) of a file, without its trailing zeros (undoing a
// truncation zero-extends first). Scans from the end so that trimming a
// large preallocated, zero-filled file costs little.
Status ReadTail(RandomAccessFile* f, uint64_t from, uint64_t to, std::string* out) {
  std::string chunk;
  uint64_t end = to;
  while (end > from) {
    uint64_t n = std::min<uint64_t>(end - from, 1 << 20);
    KVD_RETURN_IF_ERROR(ReadRange(f, end - n, n, &chunk));
    size_t nz = NonZeroEnd(chunk);
    if (nz > 0) {
      end = end - n + nz;
      break;
    }
    end -= n;
  }
  if (end <= from) {
    out->clear();
    return Status::Ok();
  }
  return ReadRange(f, from, end - from, out);
}

}  // namespace

struct FaultEnv::Impl {
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

  bool through() const { return opt.write_through_on_sync; }

  // Write-through: the first touch of a directory undoes what its journal
  // lists, as the power cut that killed the previous process would have.
  void PowerOnDir(const std::string& dir) {
    if (!through() || dir.empty() || powered_dirs.contains(dir)) return;
    powered_dirs.insert(dir);
    fault::RevertDirJournal(base, dir);
  }
  void PowerOnPath(const std::string& path) { PowerOnDir(DirOf(path)); }

  // Records an unsynced directory operation (memory, or the journal in write-through mode).
  Status RecordDirOp(DirOp op) {
    if (through()) {
      const DirJournalEntry::Kind kind = op.kind == DirOp::kCreate   ? DirJournalEntry::kCreate
                                         : op.kind == DirOp::kRemove ? DirJournalEntry::kRemove
                                                                     : DirJournalEntry::kRename;
      return fault::AppendDirJournal(DirOf(op.path), {kind, op.path, op.from, op.trash});
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
    return JoinPath(dir, std::string(kTrashPrefix) + std::to_string(++trash_seq));
  }

  // Reverts (or, write-through, partially applies) one file's unsynced changes.
  void RevertFile(const std::string& path, FileState* st) {
    if (!through() && opt.torn_pages && !st->changes.empty() && Coin()) {
      RevertPages(path, st);
    } else {
      RevertChanges(path, st);
    }
    RevertDoomed(path, st);
  }

  // Page-granular loss: each page an unsynced write touched reached the disk
  // (in its newest content) or not, independently -- writeback has no order,
  // so a later page may survive an earlier one.
  void RevertPages(const std::string& path, FileState* st) {
    const uint64_t page = std::max<uint64_t>(opt.page_size, 1);
    std::set<uint64_t> pages;
    for (const Change& c : st->changes) {
      if (c.kind != Change::kWrite || c.len == 0) continue;
      for (uint64_t p = c.offset / page; p <= (c.offset + c.len - 1) / page; ++p) pages.insert(p);
    }
    std::vector<std::pair<uint64_t, std::string>> kept;
    auto reader = base->NewRandomAccessFile(path);
    if (!reader) {
      st->changes.clear();
      return;
    }
    for (uint64_t p : pages) {
      if (!Coin() || p * page >= st->size) continue;
      std::string bytes;
      if (!ReadRange(reader->get(), p * page, std::min(page, st->size - p * page), &bytes).ok()) continue;
      kept.emplace_back(p * page, std::move(bytes));
    }
    reader->reset();
    auto file_or = base->NewWritableFile(path, OpenMode::kExisting);
    if (!file_or) {
      st->changes.clear();
      return;
    }
    WritableFile* f = file_or->get();
    for (size_t i = st->changes.size(); i-- > 0;) UndoChange(f, st->changes[i]);
    for (const auto& [off, bytes] : kept) (void)f->WriteAt(off, AsBytes(bytes));
    if (kept.size() < pages.size()) files_hit++;
    st->size = f->Size().value_or(0);
    (void)f->Close();
    st->changes.clear();
  }

  // Writes whose fsync failed are lost, except what a later synced write covered.
  void RevertDoomed(const std::string& path, FileState* st) {
    if (st->doomed.empty()) return;
    auto file_or = base->NewWritableFile(path, OpenMode::kExisting);
    if (!file_or) {
      st->doomed.clear();
      return;
    }
    WritableFile* f = file_or->get();
    for (size_t i = st->doomed.size(); i-- > 0;) {
      const Doomed& d = st->doomed[i];
      files_hit++;
      std::string old = d.write.old_bytes;
      old.resize(d.write.len, '\0');  // bytes the write appended read back as zeros (unwritten extent)
      for (uint64_t b = 0; b < d.write.len;) {
        uint64_t at = d.write.offset + b, end = d.write.offset + d.write.len;
        for (const auto& [from, to] : d.covered) {
          if (from <= at && at < to) at = to;  // skip what a later synced write holds
        }
        if (at >= end) break;
        uint64_t stop = end;
        for (const auto& [from, to] : d.covered) {
          if (from > at && from < stop) stop = from;
        }
        (void)f->WriteAt(at, AsBytes(std::string_view(old).substr(at - d.write.offset, stop - at)));
        b = stop - d.write.offset;
      }
      // Nothing durable beyond it: the file ends where it did before that write.
      const uint64_t keep = std::max(d.write.old_size, d.synced_end);
      if (f->Size().value_or(0) > keep && d.write.offset + d.write.len >= f->Size().value_or(0)) {
        (void)f->Truncate(keep);
      }
    }
    st->size = f->Size().value_or(0);
    (void)f->Close();
    st->doomed.clear();
  }

  // A prefix of the changes survives (torn_writes), the last kept one cut at a random byte.
  void RevertChanges(const std::string& path, FileState* st) {
    if (st->changes.empty()) return;
    size_t n = st->changes.size();
    // Keep changes [0, keep) whole and a prefix of change `keep` (a write).
    size_t keep = opt.torn_writes ? Rand(n + 1) : 0;
    uint64_t cut = 0;
    if (keep < n && st->changes[keep].kind == Change::kWrite && opt.torn_writes) {
      cut = Rand(st->changes[keep].len);
    }
    if (keep < n) files_hit++;
    auto file_or = base->NewWritableFile(path, OpenMode::kExisting);
    if (!file_or) {
      st->changes.clear();
      return;
    }
    WritableFile* f = file_or->get();
    if (through()) {
      for (size_t i = 0; i < keep; ++i) (void)ApplyChange(f, st->changes[i]);
      if (keep < n && cut > 0) {
        Change c = st->changes[keep];
        c.data.resize(cut);
        c.len = cut;
        (void)ApplyChange(f, c);
      }
      st->size = f->Size().value_or(0);
    } else {
      for (size_t i = n; i-- > keep + 1;) UndoChange(f, st->changes[i]);
      if (keep < n) {
        const Change& c = st->changes[keep];
        if (cut > 0) {
          // A torn write: bytes [offset, offset+cut) reached the disk.
          uint64_t keep_end = c.offset + cut;
          (void)f->Truncate(std::max(c.old_size, keep_end));
          uint64_t old_end = c.offset + c.old_bytes.size();
          if (keep_end < old_end) {
            (void)f->WriteAt(keep_end, AsBytes(std::string_view(c.old_bytes).substr(cut)));
          }
        } else {
          UndoChange(f, c);
        }
      }
      st->size = f->Size().value_or(0);
    }
    (void)f->Close();
    st->changes.clear();
  }

  static void UndoChange(WritableFile* f, const Change& c) {
    switch (c.kind) {
      case Change::kWrite:
        if (!c.old_bytes.empty()) (void)f->WriteAt(c.offset, AsBytes(c.old_bytes));
        (void)f->Truncate(c.old_size);
        break;
      case Change::kAllocate:
        (void)f->Truncate(c.old_size);
        break;
      case Change::kTruncate:
        (void)f->Truncate(c.old_size);  // zero-extends; old_bytes is the non-zero prefix
        if (!c.old_bytes.empty()) (void)f->WriteAt(c.len, AsBytes(c.old_bytes));
        break;
    }
  }

  static Status ApplyChange(WritableFile* f, const Change& c) {
    switch (c.kind) {
      case Change::kWrite: return f->WriteAt(c.offset, AsBytes(c.data));
      case Change::kAllocate: return f->Allocate(c.offset, c.len);
      case Change::kTruncate: return f->Truncate(c.len);
    }
    return Status::Ok();
  }

  void PowerLossLocked() {
    generation++;
    for (auto& [path, st] : files) RevertFile(path, st.get());
    if (through()) {
      // The same as a restart after SIGKILL: every journalled directory operation is undone.
      for (const std::string& dir : powered_dirs) fault::RevertDirJournal(base, dir);
      files.clear();  // sizes are read from the disk again on the next open
      return;
    }
    for (size_t i = dir_ops.size(); i-- > 0;) {
      const DirOp& op = dir_ops[i];
      switch (op.kind) {
        case DirOp::kCreate:
          (void)base->RemoveFile(op.path);
          files.erase(op.path);
          break;
        case DirOp::kRemove:
          (void)base->RenameFile(op.trash, op.path);
          Put(op.path, Take(op.trash));
          if (auto it = files.find(op.path); it != files.end()) it->second->in_trash = false;
          break;
        case DirOp::kRename:
          (void)base->RenameFile(op.path, op.from);
          Put(op.from, Take(op.path));
          if (!op.trash.empty()) {
            (void)base->RenameFile(op.trash, op.path);
            Put(op.path, Take(op.trash));
            if (auto it = files.find(op.path); it != files.end()) it->second->in_trash = false;
          }
          break;
      }
    }
    dir_ops.clear();
  }
};

// ---- the file -------------------------------------------------------------------

class FaultEnv::File final : public WritableFile {
 public:
  File(Impl* env, std::string path, std::unique_ptr<WritableFile> base,
       std::unique_ptr<RandomAccessFile> reader, StatePtr state)
      : env_(env), path_(std::move(path)), base_(std::move(base)), reader_(std::move(reader)),
        state_(std::move(state)), generation_(env->generation) {}

  Status WriteAt(uint64_t offset, std::span<const std::byte> data) override {
    std::lock_guard<std::mutex> l(env_->mu);
    KVD_RETURN_IF_ERROR(Alive());
    int err = 0;
    Status s = env_->Begin(Op::kWrite, path_, &err);
    if (!s.ok()) {
      if (err != 0 && env_->opt.partial_write_on_error) {
        (void)DoWrite(offset, data.first(env_->Rand(data.size() + 1)));
      }
      return s;
    }
    if (env_->space_limit != 0) {
      uint64_t used = env_->Used();
      uint64_t end = offset + data.size();
      uint64_t extra = end > state_->size ? end - state_->size : 0;
      if (used + extra > env_->space_limit) {
        uint64_t room = env_->space_limit > used ? env_->space_limit - used : 0;
        uint64_t max_end = state_->size + room;
        uint64_t fits = max_end > offset ? std::min<uint64_t>(data.size(), max_end - offset) : 0;
        (void)DoWrite(offset, data.first(fits));
        return Status::FromErrno(ENOSPC, "fault env: disk full writing " + path_);
      }
    }
    KVD_RETURN_IF_ERROR(DoWrite(offset, data));
    if (env_->through() && env_->opt.writeback && env_->Rand(4) == 0) WriteBackOnePage();
    return Status::Ok();
  }

  Status Sync() override { return DoSync(false); }
  Status SyncAll() override { return DoSync(true); }

  // Write-through + writeback: one page of one unsynced write reaches the
  // file early, as the kernel's background writeback does in no particular
  // order. Only a piece that no later change touches, so the file never goes
  // back to older bytes.
  void WriteBackOnePage() {
    const uint64_t page = std::max<uint64_t>(env_->opt.page_size, 1);
    std::vector<Change>& ch = state_->changes;
    if (ch.empty()) return;
    const size_t i = env_->Rand(ch.size());
    const Change& c = ch[i];
    if (c.kind != Change::kWrite || c.len == 0) return;
    const uint64_t first = c.offset / page, last = (c.offset + c.len - 1) / page;
    const uint64_t pick = first + env_->Rand(last - first + 1);
    const uint64_t from = std::max(c.offset, pick * page), to = std::min(c.offset + c.len, (pick + 1) * page);
    for (size_t j = i + 1; j < ch.size(); ++j) {
      const Change& later = ch[j];
      if (later.kind == Change::kTruncate) return;
      if (later.kind == Change::kWrite && later.offset < to && later.offset + later.len > from) return;
    }
    (void)base_->WriteAt(from, AsBytes(std::string_view(c.data).substr(from - c.offset, to - from)));
  }

  Status Allocate(uint64_t offset, uint64_t len) override {
    std::lock_guard<std::mutex> l(env_->mu);
    KVD_RETURN_IF_ERROR(Alive());
    int err = 0;
    KVD_RETURN_IF_ERROR(env_->Begin(Op::kAllocate, path_, &err));
    uint64_t end = offset + len;
    uint64_t extra = end > state_->size ? end - state_->size : 0;
    if (env_->space_limit != 0 && env_->Used() + extra > env_->space_limit) {
      return Status::FromErrno(ENOSPC, "fault env: disk full allocating " + path_);
    }
    Change c{Change::kAllocate, offset, len, state_->size, {}, {}};
    if (!env_->opt.write_through_on_sync) KVD_RETURN_IF_ERROR(base_->Allocate(offset, len));
    state_->changes.push_back(std::move(c));
    state_->size = std::max(state_->size, end);
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    std::lock_guard<std::mutex> l(env_->mu);
    KVD_RETURN_IF_ERROR(Alive());
    int err = 0;
    KVD_RETURN_IF_ERROR(env_->Begin(Op::kTruncate, path_, &err));
    Change c{Change::kTruncate, 0, size, state_->size, {}, {}};
    if (!env_->opt.write_through_on_sync) {
      if (size < state_->size) {
        KVD_RETURN_IF_ERROR(ReadTail(reader_.get(), size, state_->size, &c.old_bytes));
      }
      KVD_RETURN_IF_ERROR(base_->Truncate(size));
    }
    state_->changes.push_back(std::move(c));
    state_->size = size;
    return Status::Ok();
  }

  Result<uint64_t> Size() override {
    std::lock_guard<std::mutex> l(env_->mu);
    KVD_RETURN_IF_ERROR(Alive());
    return state_->size;
  }
  Status Close() override {
    std::lock_guard<std::mutex> l(env_->mu);
    reader_.reset();
    return base_->Close();
  }
  const std::string& path() const override { return path_; }

 private:
  Status Alive() const {
    KVD_RETURN_IF_ERROR(env_->PowerOk());
    if (generation_ != env_->generation) {
      return Status::IOError("fault env: " + path_ + ": stale handle (opened before a power loss)");
    }
    return Status::Ok();
  }

  // Called with the lock held.
  Status DoWrite(uint64_t offset, std::span<const std::byte> data) {
    if (data.empty()) return Status::Ok();
    Change c{Change::kWrite, offset, data.size(), state_->size, {}, {}};
    if (env_->opt.write_through_on_sync) {
      c.data.assign(AsStringView(data));
    } else {
      if (offset < state_->size) {
        uint64_t n = std::min<uint64_t>(data.size(), state_->size - offset);
        KVD_RETURN_IF_ERROR(ReadRange(reader_.get(), offset, n, &c.old_bytes));
      }
      Status s = base_->WriteAt(offset, data);
      if (!s.ok()) {
        // Part of it may be there: remember the undo anyway.
        state_->changes.push_back(std::move(c));
        state_->size = base_->Size().value_or(state_->size);
        return s;
      }
    }
    state_->changes.push_back(std::move(c));
    state_->size = std::max(state_->size, offset + data.size());
    return Status::Ok();
  }

  Status DoSync(bool all) {
    std::lock_guard<std::mutex> l(env_->mu);
    KVD_RETURN_IF_ERROR(Alive());
    int err = 0;
    Status s = env_->Begin(Op::kSync, path_, &err);
    if (s.ok() && env_->through()) {
      for (const Change& c : state_->changes) {
        s = Impl::ApplyChange(base_.get(), c);
        if (!s.ok()) break;
      }
    }
    if (s.ok()) s = all ? base_->SyncAll() : base_->Sync();
    if (!s.ok()) {
      // As Linux does after a failed fsync: the pages are marked clean, so a
      // later fsync that succeeds does not make them durable (a retry that
      // then acknowledges is caught). With the power off they are gone already.
      if (!env_->power_off) Doom();
      return s;
    }
    for (Doomed& d : state_->doomed) {
      for (const Change& c : state_->changes) {
        if (c.kind != Change::kWrite) continue;
        d.covered.emplace_back(c.offset, c.offset + c.len);
        d.synced_end = std::max(d.synced_end, c.offset + c.len);
      }
    }
    state_->changes.clear();
    return Status::Ok();
  }

  // Called with the lock held, after a failed sync. Write-through: the data
  // never reaches the file. Normal mode: the writes stay readable (page
  // cache) but a power cut takes them; allocations and truncations are
  // metadata and count as done.
  void Doom() {
    if (!env_->through()) {
      for (Change& c : state_->changes) {
        if (c.kind == Change::kWrite) state_->doomed.push_back({std::move(c), {}, 0});
      }
    }
    state_->changes.clear();
  }

  Impl* env_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
  std::unique_ptr<RandomAccessFile> reader_;  // same inode, to save bytes before overwriting
  StatePtr state_;
  uint64_t generation_;
};

// ---- fork safety --------------------------------------------------------------------
// kvd forks a snapshot child that writes through the same Env. A child that
// inherited one of our mutexes locked (another thread was inside FaultEnv)
// would deadlock, so every live FaultEnv's mutex is taken around fork().
namespace {

std::mutex g_registry_mu;
std::set<std::mutex*>& Registry() {
  static auto* r = new std::set<std::mutex*>;  // never destroyed: atfork may run at exit
  return *r;
}
void LockAllForFork() {
  g_registry_mu.lock();
  for (std::mutex* m : Registry()) m->lock();
}
void UnlockAllAfterFork() {
  for (std::mutex* m : Registry()) m->unlock();
  g_registry_mu.unlock();
}

}  // namespace

// ---- the Env -----------------------------------------------------------------------

FaultEnv::FaultEnv(Env* base) : FaultEnv(base, Options{}) {}
FaultEnv::FaultEnv(Env* base, Options options) : impl_(std::make_unique<Impl>()) {
  impl_->base = base;
  impl_->opt = options;
  impl_->rng.seed(options.seed);
  static std::once_flag once;
  std::call_once(once, [] { ::pthread_atfork(LockAllForFork, UnlockAllAfterFork, UnlockAllAfterFork); });
  std::lock_guard<std::mutex> l(g_registry_mu);
  Registry().insert(&impl_->mu);
}
FaultEnv::~FaultEnv() {
  std::lock_guard<std::mutex> l(g_registry_mu);
  Registry().erase(&impl_->mu);
}

void FaultEnv::SimulatePowerLoss() {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->PowerLossLocked();
}
void FaultEnv::CutPower() {
  std::lock_guard<std::mutex> l(impl_->mu);
  if (impl_->power_off) return;
  impl_->PowerLossLocked();
  impl_->power_off = true;
}
void FaultEnv::CutPowerAfter(uint64_t n) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->cut_after = static_cast<int64_t>(n);
}
void FaultEnv::PowerOn() {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->power_off = false;
  impl_->cut_after = -1;
}
bool FaultEnv::power_off() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->power_off;
}

void FaultEnv::FailNext(Op op, int err, int count, std::string path_contains) {
  FailAfter(op, 0, err, count, std::move(path_contains));
}
void FaultEnv::FailAfter(Op op, int successes, int err, int count, std::string path_contains) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->failures.push_back({op, err, successes, count, std::move(path_contains)});
}
void FaultEnv::ClearFailures() {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->failures.clear();
}

void FaultEnv::SetSpaceLimit(uint64_t bytes) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->space_limit = bytes;
}
uint64_t FaultEnv::space_used() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->Used();
}
uint64_t FaultEnv::count(Op op) const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->counts[static_cast<int>(op)];
}
size_t FaultEnv::unsynced_files() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  size_t n = 0;
  for (const auto& [p, st] : impl_->files) n += st->changes.empty() ? 0 : 1;
  return n;
}
uint64_t FaultEnv::files_hit_by_power_loss() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->files_hit;
}
size_t FaultEnv::unsynced_dir_ops() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->dir_ops.size();
}

Result<std::unique_ptr<WritableFile>> FaultEnv::NewWritableFile(const std::string& path, OpenMode mode) {
  std::lock_guard<std::mutex> l(impl_->mu);
  Impl& e = *impl_;
  KVD_RETURN_IF_ERROR(e.PowerOk());
  e.PowerOnPath(path);
  const bool existed = e.base->FileExists(path);
  const bool creates = !existed && mode != OpenMode::kExisting;
  const bool truncates = existed && mode == OpenMode::kCreateTruncate;
  if (creates || truncates) {
    int err = 0;
    KVD_RETURN_IF_ERROR(e.Begin(Op::kCreate, path, &err));
  }
  if (existed && mode == OpenMode::kCreateExclusive) return Status::Busy(path + " already exists");

  StatePtr st;
  if (existed) {
    auto it = e.files.find(path);
    if (it != e.files.end()) {
      st = it->second;
    } else {
      st = std::make_shared<FileState>();
      st->size = e.base->FileSize(path).value_or(0);
      e.files[path] = st;
    }
  }
  std::string old_content;
  if (truncates && !e.opt.write_through_on_sync) {
    KVD_ASSIGN_OR_RETURN(auto old_file, e.base->NewRandomAccessFile(path));
    KVD_RETURN_IF_ERROR(ReadTail(old_file.get(), 0, st->size, &old_content));
  }
  // Journalled before the creation (write-through: a kill may come between).
  if (creates) KVD_RETURN_IF_ERROR(e.RecordDirOp({DirOp::kCreate, {DirOf(path)}, path, {}, {}}));
  // Write-through: the truncation waits in memory like any other change.
  OpenMode base_mode = (truncates && e.opt.write_through_on_sync) ? OpenMode::kExisting : mode;
  KVD_ASSIGN_OR_RETURN(auto base_file, e.base->NewWritableFile(path, base_mode));
  std::unique_ptr<RandomAccessFile> reader;
  if (!e.opt.write_through_on_sync) {
    KVD_ASSIGN_OR_RETURN(reader, e.base->NewRandomAccessFile(path));
  }
  if (creates) {
    st = std::make_shared<FileState>();
    e.files[path] = st;
  } else if (truncates) {
    st->changes.push_back({Change::kTruncate, 0, 0, st->size, std::move(old_content), {}});
    st->size = 0;
  }
  return std::unique_ptr<WritableFile>(
      new File(impl_.get(), path, std::move(base_file), std::move(reader), std::move(st)));
}

Result<std::unique_ptr<RandomAccessFile>> FaultEnv::NewRandomAccessFile(const std::string& path) {
  std::lock_guard<std::mutex> l(impl_->mu);
  KVD_RETURN_IF_ERROR(impl_->PowerOk());
  impl_->PowerOnPath(path);
  return impl_->base->NewRandomAccessFile(path);
}

bool FaultEnv::FileExists(const std::string& path) {
  std::lock_guard<std::mutex> l(impl_->mu);
  std::string name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (impl_->power_off) return false;
  impl_->PowerOnPath(path);
  return !IsFaultName(name) && impl_->base->FileExists(path);
}

Result<uint64_t> FaultEnv::FileSize(const std::string& path) {
  std::lock_guard<std::mutex> l(impl_->mu);
  KVD_RETURN_IF_ERROR(impl_->PowerOk());
  impl_->PowerOnPath(path);
  return impl_->base->FileSize(path);
}

Result<std::vector<std::string>> FaultEnv::ListDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(impl_->mu);
  KVD_RETURN_IF_ERROR(impl_->PowerOk());
  impl_->PowerOnDir(NormDir(dir));
  KVD_ASSIGN_OR_RETURN(auto names, impl_->base->ListDir(dir));
  std::erase_if(names, [](const std::string& n) { return IsFaultName(n); });
  return names;
}

Status FaultEnv::CreateDirs(const std::string& dir) {
  std::lock_guard<std::mutex> l(impl_->mu);
  KVD_RETURN_IF_ERROR(impl_->PowerOk());
  return impl_->base->CreateDirs(dir);
}

Status FaultEnv::RemoveFile(const std::string& path) {
  std::lock_guard<std::mutex> l(impl_->mu);
  Impl& e = *impl_;
  int err = 0;
  KVD_RETURN_IF_ERROR(e.Begin(Op::kRemove, path, &err));
  e.PowerOnPath(path);
  if (!e.base->FileExists(path)) return Status::NotFound(path + ": no such file");
  // Keep the file under a hidden name until its directory is synced.
  std::string trash = e.TrashName(DirOf(path));
  KVD_RETURN_IF_ERROR(e.RecordDirOp({DirOp::kRemove, {DirOf(path)}, path, {}, trash}));
  if (Status s = e.base->RenameFile(path, trash); !s.ok()) {
    e.ForgetDirOp();
    return s;
  }
  StatePtr st = e.Take(path);
  if (st) st->in_trash = true;
  e.Put(trash, std::move(st));
  return Status::Ok();
}

Status FaultEnv::RenameFile(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> l(impl_->mu);
  Impl& e = *impl_;
  int err = 0;
  KVD_RETURN_IF_ERROR(e.Begin(Op::kRename, from + " -> " + to, &err));
  e.PowerOnPath(from);
  e.PowerOnPath(to);
  if (!e.base->FileExists(from)) return e.base->RenameFile(from, to);  // the base's error
  std::string trash;
  if (e.base->FileExists(to)) trash = e.TrashName(DirOf(to));
  // Journalled first (write-through): undoing a rename that did not happen is a no-op.
  KVD_RETURN_IF_ERROR(e.RecordDirOp({DirOp::kRename, {DirOf(from), DirOf(to)}, to, from, trash}));
  if (!trash.empty()) {
    if (Status s = e.base->RenameFile(to, trash); !s.ok()) {
      e.ForgetDirOp();
      return s;
    }
  }
  Status s = e.base->RenameFile(from, to);
  if (!s.ok()) {
    if (!trash.empty()) (void)e.base->RenameFile(trash, to);
    e.ForgetDirOp();
    return s;
  }
  if (!trash.empty()) {
    StatePtr old = e.Take(to);
    if (old) old->in_trash = true;
    e.Put(trash, std::move(old));
  }
  e.Put(to, e.Take(from));
  return Status::Ok();
}

Status FaultEnv::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(impl_->mu);
  Impl& e = *impl_;
  int err = 0;
  std::string d = NormDir(dir);
  KVD_RETURN_IF_ERROR(e.Begin(Op::kSyncDir, d, &err));
  e.PowerOnDir(d);
  KVD_RETURN_IF_ERROR(e.base->SyncDir(d));
  if (e.through()) {
    fault::CommitDirJournal(e.base, d);
    std::erase_if(e.files, [](const auto& kv) { return kv.second->in_trash; });
    return Status::Ok();
  }
  std::vector<DirOp> still;
  for (DirOp& op : e.dir_ops) {
    op.unsynced_dirs.erase(d);
    if (!op.unsynced_dirs.empty()) {
      still.push_back(std::move(op));
      continue;
    }
    if (!op.trash.empty()) {  // the removal/replacement is durable: really delete
      (void)e.base->RemoveFile(op.trash);
      e.files.erase(op.trash);
    }
  }
  e.dir_ops = std::move(still);
  return Status::Ok();
}

Result<std::unique_ptr<FileLock>> FaultEnv::LockFile(const std::string& path) {
  std::lock_guard<std::mutex> l(impl_->mu);
  KVD_RETURN_IF_ERROR(impl_->PowerOk());
  impl_->PowerOnPath(path);
  return impl_->base->LockFile(path);
}

}  // namespace kvd
