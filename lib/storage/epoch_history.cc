// EpochHistory: (epoch, first LSN) entries and their file (docs/wal_format.md §8).
#include "kvd/epoch_history.h"

#include <algorithm>
#include <cstring>

#include "kvd/crc32c.h"
#include "storage/wal_coding.h"

namespace kvd {
namespace {

// File: magic(8) version(4) count(4) count x (epoch u64, first_lsn u64) crc(4).
constexpr char kMagic[8] = {'k', 'v', 'd', 'E', 'P', 'O', 'C', 'H'};
constexpr uint32_t kVersion = 1;
constexpr size_t kFixedBytes = 8 + 4 + 4 + 4;
constexpr size_t kEntryBytes = 16;

// seen_epoch: magic(8) version(4) epoch(8) crc(4).
constexpr char kSeenMagic[8] = {'k', 'v', 'd', 'S', 'E', 'E', 'N', 'E'};
constexpr size_t kSeenBytes = 8 + 4 + 8 + 4;

// <dir>/name replaced whole: name.tmp written and fsynced, renamed over name,
// the directory fsynced. On failure the old file (if any) is still in place.
Status ReplaceFileDurably(Env* env, const std::string& dir, std::string_view name, const std::string& data) {
  const std::string path = JoinPath(dir, std::string(name));
  const std::string tmp = path + ".tmp";
  Status s;
  {
    auto f = env->NewWritableFile(tmp, OpenMode::kCreateTruncate);
    if (!f) return f.error().Annotate("writing " + tmp);
    s = (*f)->WriteAt(0, AsBytes(data));
    if (s.ok()) s = (*f)->SyncAll();
    Status c = (*f)->Close();
    if (s.ok()) s = c;
  }
  if (s.ok()) s = env->RenameFile(tmp, path);
  if (s.ok()) s = env->SyncDir(dir);
  if (!s.ok()) {
    (void)env->RemoveFile(tmp);
    return s.Annotate("replacing " + path);
  }
  return Status::Ok();
}

}  // namespace

Epoch EpochHistory::EpochOf(Lsn lsn) const {
  Epoch e = 0;
  for (const EpochStart& s : entries_) {
    if (s.first_lsn > lsn) break;
    e = s.epoch;
  }
  return e;
}

Status EpochHistory::Append(Epoch epoch, Lsn first_lsn) {
  if (epoch == 0 || epoch <= current()) {
    return Status::InvalidArgument("epoch " + std::to_string(epoch) + " is not newer than the current epoch " +
                                   std::to_string(current()));
  }
  if (first_lsn == 0 || (!entries_.empty() && first_lsn < entries_.back().first_lsn)) {
    return Status::InvalidArgument("epoch " + std::to_string(epoch) + " cannot start at LSN " +
                                   std::to_string(first_lsn) + ", before the current epoch's first LSN");
  }
  entries_.push_back({epoch, first_lsn});
  return Status::Ok();
}

bool EpochHistory::ClampTo(Lsn next_lsn) {
  bool changed = false;
  for (EpochStart& s : entries_) {
    if (s.first_lsn > next_lsn) {
      s.first_lsn = next_lsn;
      changed = true;
    }
  }
  return changed;
}

bool EpochHistory::TruncateAfter(Lsn lsn) {
  const size_t before = entries_.size();
  while (!entries_.empty() && entries_.back().first_lsn > lsn) entries_.pop_back();
  if (entries_.empty()) {
    *this = Initial();
    return true;
  }
  return entries_.size() != before;
}

std::string EpochHistory::Encode() const {
  std::string out(kFixedBytes + kEntryBytes * entries_.size(), '\0');
  char* p = out.data();
  std::memcpy(p, kMagic, 8);
  wal::PutFixed32(p + 8, kVersion);
  wal::PutFixed32(p + 12, static_cast<uint32_t>(entries_.size()));
  for (size_t i = 0; i < entries_.size(); ++i) {
    wal::PutFixed64(p + 16 + kEntryBytes * i, entries_[i].epoch);
    wal::PutFixed64(p + 24 + kEntryBytes * i, entries_[i].first_lsn);
  }
  const size_t crc_at = out.size() - 4;
  wal::PutFixed32(p + crc_at, Crc32cMask(Crc32c(p, crc_at)));
  return out;
}

Result<EpochHistory> EpochHistory::Decode(std::string_view data) {
  auto bad = [](const std::string& why) { return Status::Corruption("epoch history: " + why); };
  if (data.size() < kFixedBytes) return bad("file truncated (" + std::to_string(data.size()) + " bytes)");
  if (std::memcmp(data.data(), kMagic, 8) != 0) return bad("bad magic");
  const uint32_t count = wal::GetFixed32(data.data() + 12);
  if ((data.size() - kFixedBytes) % kEntryBytes != 0 || (data.size() - kFixedBytes) / kEntryBytes != count) {
    return bad("size " + std::to_string(data.size()) + " does not match " + std::to_string(count) + " entries");
  }
  const size_t crc_at = data.size() - 4;
  if (Crc32cUnmask(wal::GetFixed32(data.data() + crc_at)) != Crc32c(data.data(), crc_at)) return bad("crc mismatch");
  if (wal::GetFixed32(data.data() + 8) != kVersion) {
    return bad("unsupported version " + std::to_string(wal::GetFixed32(data.data() + 8)));
  }
  if (count == 0) return bad("no entries");
  EpochHistory h;
  for (uint32_t i = 0; i < count; ++i) {
    Status s = h.Append(wal::GetFixed64(data.data() + 16 + kEntryBytes * i),
                        wal::GetFixed64(data.data() + 24 + kEntryBytes * i));
    if (!s.ok()) return bad("entry " + std::to_string(i) + ": " + s.message());
  }
  return h;
}

Lsn ForkPoint(const EpochHistory& mine, Lsn my_last, const EpochHistory& theirs, Lsn their_last) {
  const Lsn end = std::min(my_last, their_last);
  // Both epoch functions are constant between entry boundaries, so the first
  // LSN where they differ is 1 or some entry's first LSN.
  std::vector<Lsn> points{1};
  for (const EpochStart& s : mine.entries()) points.push_back(s.first_lsn);
  for (const EpochStart& s : theirs.entries()) points.push_back(s.first_lsn);
  std::sort(points.begin(), points.end());
  for (Lsn p : points) {
    if (p > end) break;
    const Epoch a = mine.EpochOf(p), b = theirs.EpochOf(p);
    if (a == 0 || a != b) return p - 1;
  }
  return end;
}

Result<EpochHistory> LoadEpochHistory(Env* env, const std::string& dir) {
  const std::string path = JoinPath(dir, kEpochHistoryFileName);
  if (!env->FileExists(path)) return Status::NotFound(path + " does not exist");
  KVD_ASSIGN_OR_RETURN(std::string data, env->ReadFileToString(path));
  Result<EpochHistory> h = EpochHistory::Decode(data);
  if (!h) return h.error().Annotate(path);
  return h;
}

Status SaveEpochHistory(Env* env, const std::string& dir, const EpochHistory& history) {
  Status s = ReplaceFileDurably(env, dir, kEpochHistoryFileName, history.Encode());
  return s.ok() ? s : s.Annotate("saving the epoch history");
}

Result<Epoch> LoadSeenEpoch(Env* env, const std::string& dir) {
  const std::string path = JoinPath(dir, kSeenEpochFileName);
  if (!env->FileExists(path)) return Epoch{0};
  KVD_ASSIGN_OR_RETURN(std::string data, env->ReadFileToString(path));
  auto bad = [&](const std::string& why) { return Status::Corruption(path + ": highest epoch seen: " + why); };
  if (data.size() != kSeenBytes) return bad("size " + std::to_string(data.size()) + ", not " + std::to_string(kSeenBytes));
  if (std::memcmp(data.data(), kSeenMagic, 8) != 0) return bad("bad magic");
  if (Crc32cUnmask(wal::GetFixed32(data.data() + 20)) != Crc32c(data.data(), 20)) return bad("crc mismatch");
  if (wal::GetFixed32(data.data() + 8) != kVersion) {
    return bad("unsupported version " + std::to_string(wal::GetFixed32(data.data() + 8)));
  }
  return Epoch{wal::GetFixed64(data.data() + 12)};
}

Status SaveSeenEpoch(Env* env, const std::string& dir, Epoch epoch) {
  std::string data(kSeenBytes, '\0');
  std::memcpy(data.data(), kSeenMagic, 8);
  wal::PutFixed32(data.data() + 8, kVersion);
  wal::PutFixed64(data.data() + 12, epoch);
  wal::PutFixed32(data.data() + 20, Crc32cMask(Crc32c(data.data(), 20)));
  Status s = ReplaceFileDurably(env, dir, kSeenEpochFileName, data);
  return s.ok() ? s : s.Annotate("saving the highest epoch seen");
}

}  // namespace kvd
