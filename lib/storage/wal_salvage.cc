// SalvageWalFiles (kvd/salvage.h): a byte-by-byte search for records that
// verify, in files recovery set aside. Kept apart from the recovery reader on
// purpose: it may accept any record that proves itself (CRC, known type and
// flags, a payload that decodes), wherever it starts, because it decides
// nothing about the log.
#include <map>

#include "kvd/salvage.h"
#include "kvd/wal.h"
#include "storage/wal_coding.h"

namespace kvd {
namespace {

struct Found {
  RecordType type;
  Epoch epoch;
  uint8_t flags;
  std::string payload;  // owned: the file buffer goes away
};

// A record of the given framing that verifies at data[pos], or 0.
size_t RecordAt(std::string_view data, size_t pos, uint32_t version, WalRecord* out) {
  const size_t hdr = wal::RecordHeaderBytesFor(version);
  if (data.size() - pos < hdr) return 0;
  const char* rec = data.data() + pos;
  const wal::RecordHeader h = wal::ParseRecordHeader(rec, version);
  if (h.type == 0 || h.length > kMaxRecordPayload || h.length > data.size() - pos - hdr) return 0;
  if (h.lsn == 0 || !wal::RecordCrcMatches(rec, hdr, h.length)) return 0;
  if (!wal::CheckTypeAndFlags(h, version).empty()) return 0;
  *out = WalRecord{static_cast<RecordType>(h.type), h.lsn, data.substr(pos + hdr, h.length), h.epoch, h.flags};
  if (!CheckRecordPayload(*out).ok()) return 0;
  return hdr + h.length;
}

bool IsDelete(const WalRecord& rec) {
  if (rec.type == RecordType::kDel || rec.type == RecordType::kDelRange) return true;
  if (rec.type != RecordType::kBatch) return false;
  // A BATCH op byte 2 is a delete; the payload decoded, so walk it.
  std::string_view p = rec.payload.substr(4);
  while (!p.empty()) {
    const bool put = p[0] == 1;
    if (!put) return true;
    const uint32_t klen = wal::GetFixed32(p.data() + 1);
    p.remove_prefix(5 + klen);
    const uint32_t vlen = wal::GetFixed32(p.data());
    p.remove_prefix(4 + vlen);
  }
  return false;
}

}  // namespace

Status SalvageWalFiles(Env* env, const std::vector<std::string>& paths, State* state, SalvageReport* report) {
  *report = SalvageReport{};
  state->Clear();
  std::map<Lsn, Found> found;
  for (const std::string& path : paths) {
    auto read = env->ReadFileToString(path);
    if (!read.has_value()) return Status::InvalidArgument(read.error().Annotate("salvage: reading " + path).message());
    const std::string& data = *read;
    SalvageFileReport f;
    f.path = path;
    f.bytes = data.size();
    size_t pos = 0;
    uint32_t version = wal::kFormatVersion;
    Lsn first = 0;
    uint32_t seg_version = 0;
    bool verified = false;
    if (wal::CheckSegmentHeader(data, &first, &seg_version, &verified).empty()) {
      f.segment_header = true;
      version = seg_version;
      pos = kSegmentHeaderBytes;
    }
    uint64_t bad_begin = 0;
    bool in_bad = false;
    // A bad run reaches to its last non-zero byte (zeros are never data).
    auto end_bad = [&](size_t at) {
      if (!in_bad) return;
      while (at > bad_begin && data[at - 1] == '\0') --at;
      f.unreadable.emplace_back(bad_begin, at);
      f.unreadable_bytes += at - bad_begin;
      in_bad = false;
    };
    while (pos < data.size()) {
      WalRecord rec{};
      size_t n = RecordAt(data, pos, version, &rec);
      // Bytes cut from a segment carry no header: the segment was v2 unless
      // it was written by a kvd from before epochs (v1).
      if (n == 0 && !f.segment_header) n = RecordAt(data, pos, wal::kFormatVersionV1, &rec);
      if (n == 0) {
        if (data[pos] != '\0' && !in_bad) {
          in_bad = true;
          bad_begin = pos;
        }
        ++pos;
        continue;
      }
      end_bad(pos);
      ++f.records;
      if (f.first_lsn == 0) f.first_lsn = rec.lsn;
      f.last_lsn = std::max(f.last_lsn, rec.lsn);
      auto [it, inserted] = found.try_emplace(rec.lsn, Found{rec.type, rec.epoch, rec.flags, std::string(rec.payload)});
      if (!inserted) {
        const bool same = it->second.type == rec.type && it->second.payload == rec.payload;
        ++(same ? report->duplicates : report->conflicts);
      }
      pos += n;
    }
    end_bad(data.size());
    report->files.push_back(std::move(f));
  }
  for (const auto& [lsn, r] : found) {
    const WalRecord rec{r.type, lsn, r.payload, r.epoch, r.flags};
    KVD_RETURN_IF_ERROR(ApplyRecord(state, rec));  // checked by RecordAt: cannot fail
    if (IsDelete(rec)) ++report->delete_records;
  }
  report->records = found.size();
  if (!found.empty()) {
    report->first_lsn = found.begin()->first;
    report->last_lsn = found.rbegin()->first;
    report->missing_lsns = report->last_lsn - report->first_lsn + 1 - found.size();
  }
  report->keys = state->size();
  return Status::Ok();
}

}  // namespace kvd
