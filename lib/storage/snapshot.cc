// Snapshot writer and loader. Format: docs/snapshot_format.md.
//
// The writer runs inside a fork()ed child of the multi-threaded daemon: it
// uses no threads, locks or logging, only malloc (safe after fork in glibc),
// the Env and its own buffer. All file access goes through Env so FaultEnv
// can drop unsynced data or fail calls.
#include "kvd/snapshot.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>

#include "kvd/crc32c.h"
#include "kvd/snapshot_stream.h"

namespace kvd {
namespace {

constexpr char kMagic[8] = {'K', 'V', 'D', 'S', 'N', 'A', 'P', '\0'};
constexpr char kEndMagic[8] = {'K', 'V', 'D', 'S', 'E', 'N', 'D', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderSize = 36;
constexpr size_t kTrailerSize = 24;
constexpr size_t kEntryHeaderSize = 8;
constexpr size_t kWriteBuffer = 1 << 20;
constexpr size_t kReadChunk = 4 << 20;
constexpr std::string_view kPrefix = "snap-";
constexpr std::string_view kSuffix = ".kvs";
constexpr size_t kLsnDigits = 20;

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

void EncodeHeader(char* h, Lsn lsn, uint64_t count) {
  std::memcpy(h, kMagic, 8);
  PutU32(h + 8, kVersion);
  PutU32(h + 12, 0);
  PutU64(h + 16, lsn);
  PutU64(h + 24, count);
  PutU32(h + 32, Crc32c(h, 32));
}

void EncodeTrailer(char* t, uint64_t count, uint32_t body_crc) {
  std::memcpy(t, kEndMagic, 8);
  PutU64(t + 8, count);
  PutU32(t + 16, body_crc);
  PutU32(t + 20, Crc32c(t, 20));
}

// Streams bytes to a file through one large buffer, CRC-ing the body.
class StreamWriter {
 public:
  explicit StreamWriter(WritableFile* file)
      : file_(file), buf_(std::make_unique_for_overwrite<char[]>(kWriteBuffer)) {}

  Status Append(const char* data, size_t n) {
    if (n > kWriteBuffer - used_) {
      KVD_RETURN_IF_ERROR(Flush());
      if (n >= kWriteBuffer) {  // large value: write it straight from the State
        KVD_RETURN_IF_ERROR(file_->WriteAt(offset_, {reinterpret_cast<const std::byte*>(data), n}));
        offset_ += n;
        return Status::Ok();
      }
    }
    std::memcpy(buf_.get() + used_, data, n);
    used_ += n;
    return Status::Ok();
  }
  Status Flush() {
    if (used_ == 0) return Status::Ok();
    KVD_RETURN_IF_ERROR(
        file_->WriteAt(offset_, {reinterpret_cast<const std::byte*>(buf_.get()), used_}));
    offset_ += used_;
    used_ = 0;
    return Status::Ok();
  }
  uint64_t size() const { return offset_ + used_; }

 private:
  WritableFile* file_;
  std::unique_ptr<char[]> buf_;
  size_t used_ = 0;
  uint64_t offset_ = 0;
};

Status WriteContents(WritableFile* file, const State& state, Lsn lsn, uint64_t* size) {
  StreamWriter w(file);
  const uint64_t count = state.size();
  char header[kHeaderSize];
  EncodeHeader(header, lsn, count);
  KVD_RETURN_IF_ERROR(w.Append(header, kHeaderSize));
  uint32_t crc = 0;
  uint64_t written = 0;
  for (State::Cursor c = state.Begin(); c.Valid(); c.Next()) {
    std::string_view k = c.key(), v = c.value();
    char lens[kEntryHeaderSize];
    PutU32(lens, static_cast<uint32_t>(k.size()));
    PutU32(lens + 4, static_cast<uint32_t>(v.size()));
    crc = Crc32cExtend(crc, lens, sizeof(lens));
    crc = Crc32cExtend(crc, k.data(), k.size());
    crc = Crc32cExtend(crc, v.data(), v.size());
    KVD_RETURN_IF_ERROR(w.Append(lens, sizeof(lens)));
    KVD_RETURN_IF_ERROR(w.Append(k.data(), k.size()));
    KVD_RETURN_IF_ERROR(w.Append(v.data(), v.size()));
    ++written;
  }
  if (written != count)
    return Status::Internal("snapshot: State::size() disagrees with its cursor");
  char trailer[kTrailerSize];
  EncodeTrailer(trailer, count, crc);
  KVD_RETURN_IF_ERROR(w.Append(trailer, kTrailerSize));
  KVD_RETURN_IF_ERROR(w.Flush());
  *size = w.size();
  return Status::Ok();
}

Status Corrupt(const std::string& path, uint64_t offset, std::string_view what) {
  return Status::Corruption(path + ": offset " + std::to_string(offset) + ": " + std::string(what));
}

// Reads the body sequentially in large chunks, CRC-ing every byte read.
class BodyReader {
 public:
  BodyReader(RandomAccessFile* file, uint64_t begin, uint64_t end)
      : file_(file), pos_(begin), file_off_(begin), end_(end) {}

  uint64_t offset() const { return pos_; }
  uint64_t remaining() const { return end_ - pos_; }
  uint32_t crc() const { return crc_; }

  // Makes n bytes (n <= remaining()) available at Peek().
  Status Ensure(size_t n) {
    if (avail_ - start_ >= n) return Status::Ok();
    size_t have = avail_ - start_;
    // Chunks of kReadChunk, but no bigger than what is left of the body
    // (small files stay cheap), and always big enough for one whole entry.
    size_t want_cap = std::max<size_t>(
        n, static_cast<size_t>(std::min<uint64_t>(kReadChunk, have + (end_ - file_off_))));
    if (buf_.size() < want_cap) {
      std::vector<char> bigger(want_cap);
      if (have > 0) std::memcpy(bigger.data(), buf_.data() + start_, have);
      buf_.swap(bigger);
    } else if (have > 0) {
      std::memmove(buf_.data(), buf_.data() + start_, have);
    }
    start_ = 0;
    avail_ = have;
    while (avail_ < n) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf_.size() - avail_, end_ - file_off_));
      KVD_ASSIGN_OR_RETURN(
          size_t got,
          file_->ReadAt(file_off_, {reinterpret_cast<std::byte*>(buf_.data() + avail_), want}));
      if (got == 0) return Status::Corruption(file_->path() + ": file shrank while being read");
      crc_ = Crc32cExtend(crc_, buf_.data() + avail_, got);
      avail_ += got;
      file_off_ += got;
    }
    return Status::Ok();
  }
  const char* Peek() const { return buf_.data() + start_; }
  void Skip(size_t n) {
    start_ += n;
    pos_ += n;
  }

 private:
  RandomAccessFile* file_;
  std::vector<char> buf_;
  size_t start_ = 0;   // first unconsumed byte in buf_
  size_t avail_ = 0;   // end of valid bytes in buf_
  uint64_t pos_;       // file offset of buf_[start_]
  uint64_t file_off_;  // file offset of buf_[avail_]
  uint64_t end_;       // body end (trailer offset)
  uint32_t crc_ = 0;
};

Status ReadExact(RandomAccessFile* f, uint64_t off, char* out, size_t n) {
  KVD_ASSIGN_OR_RETURN(size_t got, f->ReadAt(off, {reinterpret_cast<std::byte*>(out), n}));
  if (got != n) return Corrupt(f->path(), off + got, "unexpected end of file");
  return Status::Ok();
}

Status CheckHeader(const std::string& path, const char* h, Lsn* lsn, uint64_t* count) {
  if (std::memcmp(h, kMagic, 8) != 0) return Corrupt(path, 0, "bad magic (not a kvd snapshot)");
  if (GetU32(h + 32) != Crc32c(h, 32)) return Corrupt(path, 32, "header checksum mismatch");
  if (GetU32(h + 8) != kVersion) {
    return Corrupt(path, 8, "unsupported version " + std::to_string(GetU32(h + 8)));
  }
  if (GetU32(h + 12) != 0) return Corrupt(path, 12, "unknown flags");
  *lsn = GetU64(h + 16);
  *count = GetU64(h + 24);
  return Status::Ok();
}

// Verifies the whole file; inserts every entry into *state when non-null.
Result<SnapshotInfo> ReadSnapshot(Env* env, const std::string& path, State* state) {
  KVD_ASSIGN_OR_RETURN(auto file, env->NewRandomAccessFile(path));
  KVD_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  SnapshotInfo info;
  info.path = path;
  info.bytes = size;
  if (size < kHeaderSize + kTrailerSize) {
    return Corrupt(path, size, "file too short for header and trailer");
  }
  char h[kHeaderSize];
  KVD_RETURN_IF_ERROR(ReadExact(file.get(), 0, h, kHeaderSize));
  KVD_RETURN_IF_ERROR(CheckHeader(path, h, &info.lsn, &info.entries));
  const uint64_t body_end = size - kTrailerSize;
  char t[kTrailerSize];
  KVD_RETURN_IF_ERROR(ReadExact(file.get(), body_end, t, kTrailerSize));
  if (std::memcmp(t, kEndMagic, 8) != 0) return Corrupt(path, body_end, "bad trailer magic");
  if (GetU32(t + 20) != Crc32c(t, 20))
    return Corrupt(path, body_end + 20, "trailer checksum mismatch");
  if (GetU64(t + 8) != info.entries) {
    return Corrupt(path, body_end + 8, "trailer entry count differs from header");
  }
  // A count that cannot fit the body is rejected before any work.
  if (info.entries > (body_end - kHeaderSize) / kEntryHeaderSize) {
    return Corrupt(path, 24, "entry count larger than the body can hold");
  }

  BodyReader r(file.get(), kHeaderSize, body_end);
  std::string prev;
  for (uint64_t i = 0; i < info.entries; ++i) {
    const uint64_t off = r.offset();
    if (r.remaining() < kEntryHeaderSize)
      return Corrupt(path, off, "entry header runs past the body");
    KVD_RETURN_IF_ERROR(r.Ensure(kEntryHeaderSize));
    const uint32_t klen = GetU32(r.Peek());
    const uint32_t vlen = GetU32(r.Peek() + 4);
    if (klen > kMaxKeyBytes) return Corrupt(path, off, "key length over the limit");
    if (vlen > kMaxValueBytes) return Corrupt(path, off + 4, "value length over the limit");
    const size_t len = kEntryHeaderSize + size_t{klen} + vlen;
    if (r.remaining() < len) return Corrupt(path, off, "entry runs past the body");
    KVD_RETURN_IF_ERROR(r.Ensure(len));
    std::string_view key(r.Peek() + kEntryHeaderSize, klen);
    if (i > 0 && key <= std::string_view(prev)) return Corrupt(path, off, "key out of order");
    if (state != nullptr) state->Put(key, {key.data() + klen, vlen});
    prev.assign(key);
    r.Skip(len);
  }
  if (r.remaining() != 0) return Corrupt(path, r.offset(), "bytes after the last entry");
  if (r.crc() != GetU32(t + 16)) return Corrupt(path, kHeaderSize, "body checksum mismatch");
  return info;
}

}  // namespace

std::string SnapshotFileName(Lsn lsn) {
  char name[48];
  std::snprintf(name, sizeof(name), "snap-%020" PRIu64 ".kvs", lsn);
  return name;
}

std::optional<Lsn> ParseSnapshotFileName(std::string_view name) {
  if (name.size() != kPrefix.size() + kLsnDigits + kSuffix.size() || !name.starts_with(kPrefix) ||
      !name.ends_with(kSuffix)) {
    return std::nullopt;
  }
  Lsn lsn = 0;
  for (char ch : name.substr(kPrefix.size(), kLsnDigits)) {
    if (ch < '0' || ch > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(ch - '0');
    if (lsn > (UINT64_MAX - d) / 10) return std::nullopt;
    lsn = lsn * 10 + d;
  }
  return lsn;
}

Result<SnapshotInfo> WriteSnapshot(Env* env, const std::string& dir, const State& state, Lsn lsn) {
  return WriteSnapshotFile(env, JoinPath(dir, SnapshotFileName(lsn)), state, lsn);
}

Result<SnapshotInfo> WriteSnapshotFile(Env* env, const std::string& path, const State& state, Lsn lsn) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string tmp = path + ".tmp";
  KVD_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(tmp, OpenMode::kCreateTruncate));
  uint64_t size = 0;
  Status s = WriteContents(file.get(), state, lsn, &size);
  if (s.ok()) s = file->SyncAll();
  Status c = file->Close();
  if (s.ok()) s = c;
  bool renamed = false;
  if (s.ok()) {
    s = env->RenameFile(tmp, path);
    renamed = s.ok();
  }
  if (s.ok()) s = env->SyncDir(dir);
  if (!s.ok()) {
    // Nothing may count as a snapshot unless the directory fsync returned.
    (void)env->RemoveFile(renamed ? path : tmp);
    return s.Annotate("write snapshot " + path);
  }
  SnapshotInfo info;
  info.path = path;
  info.lsn = lsn;
  info.entries = state.size();
  info.bytes = size;
  return info;
}

Status WriteSnapshotStream(WritableFile* out, const State& state, Lsn lsn, uint64_t* bytes) {
  return WriteContents(out, state, lsn, bytes);
}

Result<SnapshotInfo> LoadSnapshot(Env* env, const std::string& path, State* state) {
  state->Clear();
  Result<SnapshotInfo> r = ReadSnapshot(env, path, state);
  if (!r) state->Clear();
  return r;
}

Result<SnapshotInfo> VerifySnapshot(Env* env, const std::string& path) {
  return ReadSnapshot(env, path, nullptr);
}

Result<std::vector<SnapshotInfo>> ListSnapshots(Env* env, const std::string& dir) {
  KVD_ASSIGN_OR_RETURN(auto names, env->ListDir(dir));
  std::vector<SnapshotInfo> out;
  for (const std::string& name : names) {
    std::optional<Lsn> lsn = ParseSnapshotFileName(name);
    if (!lsn) continue;
    SnapshotInfo info;
    info.path = JoinPath(dir, name);
    info.lsn = *lsn;
    KVD_ASSIGN_OR_RETURN(info.bytes, env->FileSize(info.path));
    // The entry count comes from the header when it is readable; a damaged
    // file is still listed (LoadSnapshot reports the damage).
    auto file = env->NewRandomAccessFile(info.path);
    char h[kHeaderSize];
    Lsn header_lsn;
    uint64_t entries = 0;
    if (file && ReadExact(file->get(), 0, h, kHeaderSize).ok() &&
        CheckHeader(info.path, h, &header_lsn, &entries).ok()) {
      info.entries = entries;
    }
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const SnapshotInfo& a, const SnapshotInfo& b) { return a.lsn > b.lsn; });
  return out;
}

Status PruneSnapshots(Env* env, const std::string& dir, Lsn newest) {
  KVD_ASSIGN_OR_RETURN(auto names, env->ListDir(dir));
  std::optional<Lsn> fallback;  // highest LSN below newest
  for (const std::string& name : names) {
    std::optional<Lsn> lsn = ParseSnapshotFileName(name);
    if (lsn && *lsn < newest && (!fallback || *lsn > *fallback)) fallback = lsn;
  }
  Status first_error;
  bool removed = false;
  for (const std::string& name : names) {
    std::optional<Lsn> lsn = ParseSnapshotFileName(name);
    bool stray_tmp = name.starts_with(kPrefix) && name.ends_with(".tmp");
    bool old = lsn && *lsn < newest && lsn != fallback;
    if (!stray_tmp && !old) continue;
    Status s = env->RemoveFile(JoinPath(dir, name));
    if (s.ok()) {
      removed = true;
    } else if (first_error.ok()) {
      first_error = s;
    }
  }
  if (removed) {
    Status s = env->SyncDir(dir);
    if (first_error.ok()) first_error = s;
  }
  return first_error;
}

}  // namespace kvd
