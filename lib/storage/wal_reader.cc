// Segment validation and damage classification (docs/wal_format.md §6).
#include "storage/wal_reader.h"

#include <algorithm>
#include <cstring>

#include "storage/wal_coding.h"

namespace kvd::wal {
namespace {

// A record header at p that could be the real continuation after damage:
// known type, LSN within [lo, hi], length fits, CRC verifies.
bool PlausibleRecordAt(std::string_view data, size_t p, Lsn lo, Lsn hi, uint64_t* budget, size_t* rec_len) {
  if (data.size() - p < kRecordHeaderBytes) return false;
  const char* rec = data.data() + p;
  uint8_t type = static_cast<uint8_t>(rec[8]);
  if (type < 1 || type > 3) return false;
  Lsn lsn = GetFixed64(rec + 9);
  if (lsn < lo || lsn > hi) return false;
  uint32_t len = GetFixed32(rec + 4);
  if (len > kMaxRecordPayload || len > data.size() - p - kRecordHeaderBytes) return false;
  if (*budget < len) return false;
  *budget -= len;
  if (Crc32cUnmask(GetFixed32(rec)) != Crc32c(rec + 8, 9 + size_t{len})) return false;
  *rec_len = kRecordHeaderBytes + len;
  return true;
}

// Counts valid-looking records in [from, end) whose LSNs continue from
// next_lsn (each record is >= 17 bytes, so a real one d bytes further on
// has an LSN of at most next_lsn + d/17).
uint64_t CountRecordsAfter(std::string_view data, size_t from, size_t end, Lsn next_lsn, uint64_t budget) {
  uint64_t found = 0;
  size_t base = from;
  for (size_t p = from; p + kRecordHeaderBytes <= end;) {
    size_t len = 0;
    Lsn hi = next_lsn + (p - base) / kRecordHeaderBytes + 1;
    if (PlausibleRecordAt(data, p, next_lsn, hi, &budget, &len)) {
      ++found;
      next_lsn = GetFixed64(data.data() + p + 9) + 1;
      p += len;
      base = p;
    } else {
      ++p;
    }
  }
  return found;
}

}  // namespace

bool AllZero(std::string_view data) { return EndOfNonZero(data) == 0; }

size_t EndOfNonZero(std::string_view data) {
  size_t n = data.size();
  const char* p = data.data();
  while (n > 0 && (n & 7) != 0) {
    if (p[n - 1] != 0) return n;
    --n;
  }
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p + n - 8, 8);
    if (w != 0) break;
    n -= 8;
  }
  while (n > 0 && p[n - 1] == 0) --n;
  return n;
}

Status ScanSegment(std::string_view data, const SegmentScanOptions& opts,
                   const std::function<Status(const WalRecord&)>& fn, SegmentReport* rep) {
  rep->file_bytes = data.size();
  rep->first_lsn = opts.name_lsn;
  rep->last_good_lsn = 0;
  rep->good_records = 0;
  rep->good_bytes = 0;
  rep->damage = DamageKind::kNone;

  // Records damage at offset, classifies it, and computes what a cut drops.
  auto damage = [&](size_t offset, std::string reason, bool definite, Lsn next_lsn) {
    size_t end = EndOfNonZero(data);
    rep->damage_offset = offset;
    rep->dropped_bytes = end > offset ? end - offset : 0;
    rep->dropped_records =
        offset + 1 < end ? CountRecordsAfter(data, offset + 1, end, next_lsn, opts.resync_crc_budget) : 0;
    bool torn = !definite && rep->dropped_records == 0;
    if (rep->dropped_records > 0) {
      reason += ", " + std::to_string(rep->dropped_records) + " valid record(s) follow";
    }
    if (torn && !opts.last_segment) reason += " (in a segment that is not the last)";
    rep->damage = torn && opts.last_segment ? DamageKind::kTornTail : DamageKind::kCorruption;
    rep->damage_reason = std::move(reason);
  };

  Lsn header_lsn = 0;
  bool verified = false;
  std::string why = CheckSegmentHeader(data, &header_lsn, &verified);
  if (why.empty() && header_lsn != opts.name_lsn) {
    why = "header first lsn " + std::to_string(header_lsn) + " does not match the file name";
  }
  if (!why.empty()) {
    damage(0, std::move(why), verified, opts.name_lsn);
    rep->dropped_records = 0;  // records in a file whose header is bad do not count
    return Status::Ok();
  }
  rep->good_bytes = kSegmentHeaderBytes;

  Lsn prev = opts.prev_lsn;
  size_t pos = kSegmentHeaderBytes;
  while (pos < data.size()) {
    size_t left = data.size() - pos;
    const char* rec = data.data() + pos;
    Lsn next = rep->good_records > 0 ? prev + 1 : header_lsn;
    if (left < kRecordHeaderBytes || AllZero({rec, kRecordHeaderBytes})) {
      if (AllZero(data.substr(pos))) return Status::Ok();  // preallocated, never written
      damage(pos, left < kRecordHeaderBytes ? "truncated record header" : "zero record header followed by data",
             false, next);
      return Status::Ok();
    }
    uint32_t len = GetFixed32(rec + 4);
    if (len > kMaxRecordPayload) {
      damage(pos, "record length " + std::to_string(len) + " over the limit", false, next);
      return Status::Ok();
    }
    if (len > left - kRecordHeaderBytes) {
      damage(pos, "record length " + std::to_string(len) + " past the end of the segment", false, next);
      return Status::Ok();
    }
    if (Crc32cUnmask(GetFixed32(rec)) != Crc32c(rec + 8, 9 + size_t{len})) {
      damage(pos, "crc mismatch", false, next);
      return Status::Ok();
    }
    uint8_t type = static_cast<uint8_t>(rec[8]);
    Lsn lsn = GetFixed64(rec + 9);
    if (type < 1 || type > 3) {
      damage(pos, "unknown record type " + std::to_string(type), true, next);
      return Status::Ok();
    }
    if (rep->good_records == 0 && lsn != header_lsn) {
      damage(pos, "first record lsn " + std::to_string(lsn) + " != segment first lsn " + std::to_string(header_lsn),
             true, next);
      return Status::Ok();
    }
    if (lsn <= prev) {
      damage(pos, "lsn reordering " + std::to_string(prev) + " -> " + std::to_string(lsn), true, next);
      return Status::Ok();
    }
    if (lsn > opts.start_lsn && lsn != std::max(prev, opts.start_lsn) + 1) {
      damage(pos, "lsn gap " + std::to_string(std::max(prev, opts.start_lsn)) + " -> " + std::to_string(lsn), true,
             next);
      return Status::Ok();
    }
    KVD_RETURN_IF_ERROR(fn(WalRecord{static_cast<RecordType>(type), lsn, {rec + kRecordHeaderBytes, len}}));
    prev = lsn;
    rep->last_good_lsn = lsn;
    ++rep->good_records;
    pos += kRecordHeaderBytes + len;
    rep->good_bytes = pos;
  }
  return Status::Ok();
}

}  // namespace kvd::wal
