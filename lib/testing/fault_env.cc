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
#include <thread>

#include "testing/fault_env_impl.h"

namespace kvd {

using fault::Change;
using fault::DirOp;
using fault::Doomed;
using fault::Failure;
using fault::FileState;
using fault::StatePtr;
using fault::DirJournalEntry;
using fault::DirOf;
using fault::IsFaultName;
using fault::NormDir;
using fault::ReadRange;
using fault::ReadTail;
using fault::kTrashPrefix;

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
    env_->MaybeStallSync();  // before the lock: the rest of the Env keeps working
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

void FaultEnv::StallSyncWhileFileExists(std::string path, std::chrono::milliseconds max_stall) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->stall_file = std::move(path);
  impl_->stall_max = max_stall;
}
uint64_t FaultEnv::syncs_stalled_now() const { return impl_->stalled_now.load(); }
uint64_t FaultEnv::syncs_stalled() const { return impl_->stalled_total.load(); }

void FaultEnv::Impl::MaybeStallSync() {
  std::string file;
  std::chrono::milliseconds max{0};
  {
    std::lock_guard<std::mutex> l(mu);
    file = stall_file;
    max = stall_max;
  }
  if (file.empty() || !base->FileExists(file)) return;
  constexpr auto kPoll = std::chrono::milliseconds(5);
  const auto deadline = std::chrono::steady_clock::now() + max;
  stalled_now++;
  stalled_total++;
  while (base->FileExists(file) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(kPoll);
  stalled_now--;
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
