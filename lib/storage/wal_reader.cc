// Segment validation and damage classification (docs/wal_format.md §6).
#include "storage/wal_reader.h"

#include <algorithm>
#include <cstring>

#include "kvd/mutation.h"
#include "storage/wal_coding.h"

namespace kvd::wal {
namespace {

// A shrunk file ends in record bytes: non-zero data within its last page.
constexpr uint64_t kShrinkEvidenceBytes = 4096;

// A record header at p that could be the real continuation after damage:
// readable type and flags, LSN within [lo, hi], length fits, CRC verifies.
bool PlausibleRecordAt(std::string_view data, size_t p, uint32_t version, Lsn lo, Lsn hi, uint64_t* budget,
                       size_t* rec_len, Lsn* lsn) {
  const size_t hdr = RecordHeaderBytesFor(version);
  if (data.size() - p < hdr) return false;
  const char* rec = data.data() + p;
  const RecordHeader h = ParseRecordHeader(rec, version);
  if (h.type == 0 || !CheckTypeAndFlags(h, version).empty()) return false;
  if (h.lsn < lo || h.lsn > hi) return false;
  if (h.length > kMaxRecordPayload || h.length > data.size() - p - hdr) return false;
  if (*budget < h.length) return false;
  *budget -= h.length;
  if (!RecordCrcMatches(rec, hdr, h.length)) return false;
  *rec_len = hdr + h.length;
  *lsn = h.lsn;
  return true;
}

// Counts valid-looking records in [from, end) whose LSNs continue from
// next_lsn (each record is at least a header long, so a real one d bytes
// further on has an LSN of at most next_lsn + d/header).
uint64_t CountRecordsAfter(std::string_view data, uint32_t version, size_t from, size_t end, Lsn next_lsn,
                           uint64_t budget, Lsn* first, Lsn* last,
                           const std::function<void(const WalRecord&)>& on_record) {
  const size_t hdr = RecordHeaderBytesFor(version);
  uint64_t found = 0;
  size_t base = from;
  for (size_t p = from; p + hdr <= end;) {
    size_t len = 0;
    Lsn lsn = 0;
    Lsn hi = next_lsn + (p - base) / hdr + 1;
    if (PlausibleRecordAt(data, p, version, next_lsn, hi, &budget, &len, &lsn)) {
      if (found++ == 0) *first = lsn;
      *last = lsn;
      if (on_record) {
        const char* rec = data.data() + p;
        const RecordHeader h = ParseRecordHeader(rec, version);
        const size_t hdr_len = RecordHeaderBytesFor(version);
        on_record(WalRecord{static_cast<RecordType>(h.type), lsn, {rec + hdr_len, h.length}, h.epoch, h.flags});
      }
      next_lsn = lsn + 1;
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
  rep->file_bytes = opts.file_bytes != 0 ? opts.file_bytes : data.size();
  rep->first_lsn = opts.name_lsn;
  rep->last_good_lsn = 0;
  rep->good_records = 0;
  rep->good_bytes = 0;
  rep->damage = DamageKind::kNone;
  rep->format_version = 0;
  rep->last_epoch = 0;
  uint32_t version = kFormatVersion;

  // Records damage at offset, classifies it, and computes what a cut drops.
  auto damage = [&](size_t offset, std::string reason, bool definite, Lsn next_lsn) {
    size_t end = EndOfNonZero(data);
    rep->damage_offset = offset;
    rep->dropped_bytes = end > offset ? end - offset : 0;
    rep->dropped_first_lsn = rep->dropped_last_lsn = 0;
    rep->dropped_records = offset + 1 < end ? CountRecordsAfter(data, version, offset + 1, end, next_lsn,
                                                                opts.resync_crc_budget, &rep->dropped_first_lsn,
                                                                &rep->dropped_last_lsn, opts.on_dropped)
                                            : 0;
    bool torn = !definite && rep->dropped_records == 0;
    if (rep->dropped_records > 0) {
      reason += ", " + std::to_string(rep->dropped_records) + " valid record(s) follow";
    }
    if (torn && !opts.last_segment) reason += " (in a segment that is not the last)";
    rep->damage = torn && opts.last_segment ? DamageKind::kTornTail : DamageKind::kCorruption;
    rep->damage_reason = std::move(reason);
  };

  uint32_t header_flags = 0;
  // The last record runs past the end of the file (or claims more than any
  // record may). In a preallocated segment a crash leaves the size as it was,
  // so a file shorter than that which ends in record bytes was shrunk
  // (truncated, copied short): corruption.
  auto ends_inside_record = [&](size_t offset, std::string reason, Lsn next_lsn) {
    const uint64_t size = rep->file_bytes;
    const bool shrunk = (header_flags & kSegmentFlagPreallocated) != 0 &&
                        (opts.preallocated_bytes == 0 || size < opts.preallocated_bytes) &&
                        EndOfNonZero(data) + kShrinkEvidenceBytes > size;
    if (shrunk) {
      reason += "; the segment was preallocated but the file is only " + std::to_string(size) +
                " bytes and ends inside a record: a crash does not shrink a preallocated segment (truncated or "
                "copied short?)";
    }
    damage(offset, std::move(reason), shrunk, next_lsn);
  };

  Lsn header_lsn = 0;
  bool verified = false;
  std::string why = CheckSegmentHeader(data, &header_lsn, &version, &verified, &header_flags);
  if (why.empty() && header_lsn != opts.name_lsn) {
    why = "header first lsn " + std::to_string(header_lsn) + " does not match the file name";
  }
  if (!why.empty()) {
    damage(0, std::move(why), verified, opts.name_lsn);
    rep->dropped_records = 0;  // records in a file whose header is bad do not count
    rep->dropped_first_lsn = rep->dropped_last_lsn = 0;
    return Status::Ok();
  }
  rep->format_version = version;
  rep->good_bytes = kSegmentHeaderBytes;
  const size_t hdr = RecordHeaderBytesFor(version);

  Lsn prev = opts.prev_lsn;
  Epoch prev_epoch = opts.prev_epoch;
  size_t pos = kSegmentHeaderBytes;
  while (pos < data.size()) {
    size_t left = data.size() - pos;
    const char* rec = data.data() + pos;
    Lsn next = rep->good_records > 0 ? prev + 1 : header_lsn;
    if (left < hdr || AllZero({rec, hdr})) {
      if (AllZero(data.substr(pos))) return Status::Ok();  // preallocated, never written
      if (left < hdr) {
        ends_inside_record(pos, "truncated record header", next);
      } else {
        damage(pos, "zero record header followed by data", false, next);
      }
      return Status::Ok();
    }
    const RecordHeader h = ParseRecordHeader(rec, version);
    const uint32_t len = h.length;
    if (len > kMaxRecordPayload) {
      ends_inside_record(pos, "record length " + std::to_string(len) + " over the limit", next);
      return Status::Ok();
    }
    if (len > left - hdr) {
      ends_inside_record(pos, "record length " + std::to_string(len) + " past the end of the segment", next);
      return Status::Ok();
    }
    if (!KVD_MUTANT(ignore_crc_on_replay) && !RecordCrcMatches(rec, hdr, len)) {
      damage(pos, "crc mismatch", false, next);
      return Status::Ok();
    }
    // From here the record verified: anything refused was written that way.
    const Lsn lsn = h.lsn;
    if (std::string bad = CheckTypeAndFlags(h, version); !bad.empty()) {
      damage(pos, std::move(bad), true, next);
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
    if (h.epoch < prev_epoch) {
      damage(pos, "epoch going back " + std::to_string(prev_epoch) + " -> " + std::to_string(h.epoch), true, next);
      return Status::Ok();
    }
    const std::string_view encoded = version == kFormatVersionV1 ? std::string_view() : std::string_view(rec, hdr + len);
    KVD_RETURN_IF_ERROR(
        fn(WalRecord{static_cast<RecordType>(h.type), lsn, {rec + hdr, len}, h.epoch, h.flags, encoded}));
    prev = lsn;
    prev_epoch = h.epoch;
    rep->last_good_lsn = lsn;
    rep->last_epoch = h.epoch;
    ++rep->good_records;
    pos += hdr + len;
    rep->good_bytes = pos;
  }
  return Status::Ok();
}

}  // namespace kvd::wal
