// What a power loss does to FaultEnv's files and directories (the model is
// described in kvd/fault_env.h).
#include <algorithm>
#include <cstring>

#include "testing/fault_env_impl.h"

namespace kvd {
namespace fault {
namespace {

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

}  // namespace

Status ReadRange(RandomAccessFile* f, uint64_t offset, uint64_t len, std::string* out) {
  out->assign(len, '\0');
  KVD_ASSIGN_OR_RETURN(size_t n, f->ReadAt(offset, {reinterpret_cast<std::byte*>(out->data()), len}));
  out->resize(n);
  return Status::Ok();
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

}  // namespace fault

using fault::Change;
using fault::DirOp;
using fault::Doomed;
using fault::Failure;
using fault::FileState;
using fault::StatePtr;
using fault::DirOf;
using fault::ReadRange;

// Reverts (or, write-through, partially applies) one file's unsynced changes.
void FaultEnv::Impl::RevertFile(const std::string& path, FileState* st) {
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
void FaultEnv::Impl::RevertPages(const std::string& path, FileState* st) {
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
void FaultEnv::Impl::RevertDoomed(const std::string& path, FileState* st) {
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
void FaultEnv::Impl::RevertChanges(const std::string& path, FileState* st) {
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

void FaultEnv::Impl::UndoChange(WritableFile* f, const Change& c) {
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

Status FaultEnv::Impl::ApplyChange(WritableFile* f, const Change& c) {
  switch (c.kind) {
    case Change::kWrite: return f->WriteAt(c.offset, AsBytes(c.data));
    case Change::kAllocate: return f->Allocate(c.offset, c.len);
    case Change::kTruncate: return f->Truncate(c.len);
  }
  return Status::Ok();
}

void FaultEnv::Impl::PowerLossLocked() {
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

}  // namespace kvd
