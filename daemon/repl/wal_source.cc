#include "repl/wal_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "kvd/env.h"
#include "kvd/fd.h"
#include "kvd/wal.h"

namespace kvd::daemon::repl {
namespace {

uint64_t GetLE(const char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

Result<size_t> PRead(int fd, char* buf, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, buf + got, n - got, static_cast<off_t>(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno(errno, "pread");
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

Result<std::vector<Lsn>> SegmentFirsts(const std::string& dir) {
  KVD_ASSIGN_OR_RETURN(std::vector<std::string> names, Env::Default()->ListDir(dir));
  std::vector<Lsn> firsts;
  for (const std::string& n : names) {
    if (auto lsn = ParseSegmentFileName(n)) firsts.push_back(*lsn);
  }
  std::sort(firsts.begin(), firsts.end());
  return firsts;
}

}  // namespace

Status WalSource::Seek(Lsn from) {
  KVD_ASSIGN_OR_RETURN(std::vector<Lsn> firsts, SegmentFirsts(dir_));
  auto it = std::upper_bound(firsts.begin(), firsts.end(), from);
  if (it == firsts.begin()) {
    return Status::NotFound("the WAL from LSN " + std::to_string(from) + " is no longer on disk");
  }
  seg_first_ = *std::prev(it);
  seg_path_ = JoinPath(dir_, SegmentFileName(seg_first_));
  offset_ = kSegmentHeaderBytes;
  next_ = seg_first_;
  Fd fd(::open(seg_path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno(errno, seg_path_);
  char hdr[kSegmentHeaderBytes];
  KVD_ASSIGN_OR_RETURN(size_t n, PRead(fd.get(), hdr, sizeof hdr, 0));
  if (n < sizeof hdr || GetLE(hdr + 8, 4) != 2) {
    return Status::NotFound("the WAL from LSN " + std::to_string(from) + " is in " + seg_path_ +
                            ", which is not a format v2 segment");
  }
  return Status::Ok();
}

Status WalSource::Read(Lsn from, Lsn upto, size_t max_bytes, std::string* out, Lsn* last) {
  if (from > upto) return Status::InvalidArgument("nothing to read");
  if (seg_path_.empty() || next_ != from) KVD_RETURN_IF_ERROR(Seek(from));
  bool any = false;
  while (next_ <= upto) {
    Fd fd(::open(seg_path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      const int err = errno;
      seg_path_.clear();
      if (err == ENOENT) return Status::NotFound("the WAL from LSN " + std::to_string(next_) + " was deleted");
      return Status::FromErrno(err, seg_path_);
    }
    bool segment_done = false;
    while (next_ <= upto) {
      char h[kRecordHeaderBytes];
      KVD_ASSIGN_OR_RETURN(size_t n, PRead(fd.get(), h, sizeof h, offset_));
      if (n < sizeof h || std::all_of(h, h + sizeof h, [](char c) { return c == 0; })) {
        segment_done = true;  // end of this segment's data: the next segment goes on
        break;
      }
      const auto len = static_cast<uint32_t>(GetLE(h + 4, 4));
      const Lsn lsn = GetLE(h + 10, 8);
      if (len > kMaxRecordPayload) return Status::Corruption(seg_path_ + ": bad record length");
      std::string rec(kRecordHeaderBytes + len, '\0');
      KVD_ASSIGN_OR_RETURN(size_t m, PRead(fd.get(), rec.data(), rec.size(), offset_));
      if (m < rec.size()) return Status::Corruption(seg_path_ + ": record cut short");
      KVD_RETURN_IF_ERROR(ForEachVerifiedRecord(rec, [](const WalRecord&) { return Status::Ok(); })
                              .Annotate(seg_path_ + " at offset " + std::to_string(offset_)));
      offset_ += rec.size();
      if (lsn < next_) continue;  // before `from` in the first segment
      if (lsn != next_) return Status::Corruption(seg_path_ + ": LSN " + std::to_string(lsn) + " where " +
                                                  std::to_string(next_) + " was expected");
      if (any && out->size() + rec.size() > max_bytes) {
        offset_ -= rec.size();
        return Status::Ok();
      }
      if (lsn >= from) {
        out->append(rec);
        *last = lsn;
        any = true;
      }
      ++next_;
    }
    if (!segment_done) break;
    // The next segment must start right after.
    KVD_ASSIGN_OR_RETURN(std::vector<Lsn> firsts, SegmentFirsts(dir_));
    auto it = std::find(firsts.begin(), firsts.end(), next_);
    if (it == firsts.end()) {
      if (any) return Status::Ok();
      return Status::NotFound("no WAL segment holds LSN " + std::to_string(next_));
    }
    seg_first_ = next_;
    seg_path_ = JoinPath(dir_, SegmentFileName(seg_first_));
    offset_ = kSegmentHeaderBytes;
  }
  if (!any) return Status::NotFound("no record " + std::to_string(from) + " on disk");
  return Status::Ok();
}

}  // namespace kvd::daemon::repl
