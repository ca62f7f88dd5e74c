// Reading segment files for recovery: the inventory of the WAL directory
// (which files are segments of this log, which are strays) and a segment's
// bytes without its preallocated zero region (docs/wal_format.md §6).
#include <algorithm>
#include <array>

#include "storage/wal_coding.h"
#include "storage/wal_reader.h"

namespace kvd::wal {
namespace {

constexpr uint64_t kBackwardChunk = 1 << 20;

bool LooksLikeSegmentName(std::string_view n) { return n.starts_with("wal-") && n.ends_with(".log"); }

// Reads [offset, offset + out.size()) fully (the file does not shrink offline).
Status ReadExactly(RandomAccessFile* f, uint64_t offset, std::span<std::byte> out, uint64_t* bytes_read) {
  KVD_ASSIGN_OR_RETURN(size_t n, f->ReadAt(offset, out));
  *bytes_read += n;
  if (n != out.size()) return Status::IOError(f->path() + ": short read at offset " + std::to_string(offset));
  return Status::Ok();
}

// Why the file at path, named for first LSN lsn, is not a segment this log's
// writer made; empty if it is (or may be: a header torn while the last
// segment was created is left to the scan, which calls it a torn tail).
Result<std::string> WhyStray(Env* env, const std::string& path, Lsn lsn, bool last) {
  if (lsn == 0) return std::string("first lsn 0 in its name: no segment starts at lsn 0");
  KVD_ASSIGN_OR_RETURN(auto f, env->NewRandomAccessFile(path));
  KVD_ASSIGN_OR_RETURN(uint64_t size, f->Size());
  std::string head(std::min<uint64_t>(size, kSegmentHeaderBytes), '\0');
  uint64_t ignored = 0;
  KVD_RETURN_IF_ERROR(ReadExactly(f.get(), 0, {reinterpret_cast<std::byte*>(head.data()), head.size()}, &ignored));
  Lsn header_lsn = 0;
  uint32_t version = 0;
  bool verified = false;
  std::string why = CheckSegmentHeader(head, &header_lsn, &version, &verified);
  if (why.empty()) {
    if (header_lsn == lsn) return std::string();
    return "its header gives first lsn " + std::to_string(header_lsn) + ", its name " + std::to_string(lsn);
  }
  const bool torn_creation = last && size < kSegmentHeaderBytes &&
                             (EncodeSegmentHeader(lsn).starts_with(head) ||
                              EncodeSegmentHeader(lsn, kFormatVersion, kSegmentFlagPreallocated).starts_with(head));
  if (torn_creation) return std::string();
  return why + " (" + std::to_string(size) + " bytes)";
}

}  // namespace

Result<WalInventory> TakeWalInventory(Env* env, const std::string& dir) {
  WalInventory inv;
  auto names = env->ListDir(dir);
  if (!names) {
    if (names.error().IsNotFound()) return inv;
    return names.error();
  }
  for (std::string& n : *names) {
    if (auto lsn = ParseSegmentFileName(n)) {
      inv.segments.push_back({*lsn, std::move(n)});
    } else if (LooksLikeSegmentName(n)) {
      inv.strays.push_back({JoinPath(dir, n), "not a segment file name kvd writes (wal-<20 digits>.log)"});
    }
  }
  std::sort(inv.segments.begin(), inv.segments.end(),
            [](const SegmentFile& a, const SegmentFile& b) { return a.lsn < b.lsn; });
  for (size_t i = 0; i < inv.segments.size(); ++i) {
    const std::string path = JoinPath(dir, inv.segments[i].name);
    KVD_ASSIGN_OR_RETURN(std::string why, WhyStray(env, path, inv.segments[i].lsn, i + 1 == inv.segments.size()));
    if (!why.empty()) inv.strays.push_back({path, std::move(why)});
  }
  std::sort(inv.strays.begin(), inv.strays.end(),
            [](const StrayFile& a, const StrayFile& b) { return a.path < b.path; });
  return inv;
}

Result<SegmentData> ReadSegmentData(Env* env, const std::string& path) {
  SegmentData out;
  KVD_ASSIGN_OR_RETURN(auto f, env->NewRandomAccessFile(path));
  KVD_ASSIGN_OR_RETURN(out.file_bytes, f->Size());
  KVD_ASSIGN_OR_RETURN(std::vector<ByteRange> ranges, f->DataRanges());

  // The end of the non-zero bytes: the last data range that holds any,
  // read backwards in chunks (usually only the zeros the writer wrote ahead).
  uint64_t data_end = 0;
  std::string chunk;
  for (auto r = ranges.rbegin(); r != ranges.rend() && data_end == 0; ++r) {
    for (uint64_t hi = std::min(r->end, out.file_bytes); hi > r->begin && data_end == 0;) {
      const uint64_t lo = hi - std::min(hi - r->begin, kBackwardChunk);
      chunk.resize(hi - lo);
      KVD_RETURN_IF_ERROR(
          ReadExactly(f.get(), lo, {reinterpret_cast<std::byte*>(chunk.data()), chunk.size()}, &out.bytes_read));
      if (size_t e = EndOfNonZero(chunk); e > 0) data_end = lo + e;
      hi = lo;
    }
  }
  out.bytes.resize(data_end);
  KVD_RETURN_IF_ERROR(
      ReadExactly(f.get(), 0, {reinterpret_cast<std::byte*>(out.bytes.data()), out.bytes.size()}, &out.bytes_read));

  // Everything past data_end reads as zero: append zeros (not read) so that
  // each record that begins before data_end is whole, as in the file.
  auto grow = [&](uint64_t n) {
    n = std::min(n, out.file_bytes);
    if (n > out.bytes.size()) out.bytes.resize(n, '\0');
  };
  grow(kSegmentHeaderBytes);
  Lsn lsn = 0;
  uint32_t version = 0;
  bool verified = false;
  if (!CheckSegmentHeader(out.bytes, &lsn, &version, &verified).empty()) return out;
  const size_t hdr = RecordHeaderBytesFor(version);
  uint64_t p = kSegmentHeaderBytes;
  while (p < data_end) {
    grow(p + hdr);
    if (out.bytes.size() < p + hdr) return out;  // the file ends inside this header
    const uint32_t len = GetFixed32(out.bytes.data() + p + 4);
    if (len > kMaxRecordPayload || AllZero(std::string_view(out.bytes).substr(p, hdr))) {
      // Damage before data_end: the scan may look for records after it, and
      // the last of them may end in zeros too.
      grow(data_end + hdr + kMaxRecordPayload);
      return out;
    }
    grow(p + hdr + len);
    p += hdr + len;
  }
  return out;
}

}  // namespace kvd::wal
