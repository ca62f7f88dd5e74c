// WAL record framing (docs/wal_format.md §3) and segment names.
// Append*Record is on the hot path: one resize of the caller's buffer, no
// other allocation.
#include <charconv>
#include <cstdio>
#include <cstring>

#include "kvd/mutation.h"
#include "kvd/wal.h"
#include "storage/wal_coding.h"

namespace kvd {
namespace {

using wal::PutFixed32;
using wal::PutFixed64;

// Grows *buf by a record of payload_len bytes, fills the header except the
// CRC, and returns where the payload goes.
inline char* BeginRecord(std::string* buf, RecordType type, Lsn lsn, Epoch epoch, size_t payload_len,
                         size_t* rec_off) {
  *rec_off = buf->size();
  buf->resize(*rec_off + kRecordHeaderBytes + payload_len);
  char* rec = buf->data() + *rec_off;
  PutFixed32(rec + 4, static_cast<uint32_t>(payload_len));
  rec[8] = static_cast<char>(type);
  rec[9] = 0;  // flags: none defined yet
  PutFixed64(rec + 10, lsn);
  PutFixed64(rec + 18, epoch);
  return rec + kRecordHeaderBytes;
}

inline void FinishRecord(std::string* buf, size_t rec_off, size_t payload_len) {
  char* rec = buf->data() + rec_off;
  PutFixed32(rec, wal::RecordCrc(rec, kRecordHeaderBytes, static_cast<uint32_t>(payload_len)));
}

inline char* PutBytes(char* p, std::string_view s) {
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

}  // namespace

void AppendPutRecord(std::string* buf, Lsn lsn, Epoch epoch, std::string_view key, std::string_view value) {
  size_t len = 4 + key.size() + value.size();
  size_t off;
  char* p = BeginRecord(buf, RecordType::kPut, lsn, epoch, len, &off);
  PutFixed32(p, static_cast<uint32_t>(key.size()));
  PutBytes(PutBytes(p + 4, key), value);
  FinishRecord(buf, off, len);
}

void AppendDelRecord(std::string* buf, Lsn lsn, Epoch epoch, std::string_view key) {
  size_t off;
  char* p = BeginRecord(buf, RecordType::kDel, lsn, epoch, key.size(), &off);
  PutBytes(p, key);
  FinishRecord(buf, off, key.size());
}

void AppendBatchRecord(std::string* buf, Lsn lsn, Epoch epoch, std::span<const BatchOp> ops) {
  size_t len = 4;
  for (const BatchOp& op : ops) {
    len += 1 + 4 + op.key.size();
    if (op.type == OpType::kPut) len += 4 + op.value.size();
  }
  size_t off;
  char* p = BeginRecord(buf, RecordType::kBatch, lsn, epoch, len, &off);
  PutFixed32(p, static_cast<uint32_t>(ops.size()));
  p += 4;
  for (const BatchOp& op : ops) {
    *p++ = static_cast<char>(op.type);
    PutFixed32(p, static_cast<uint32_t>(op.key.size()));
    p = PutBytes(p + 4, op.key);
    if (op.type == OpType::kPut) {
      PutFixed32(p, static_cast<uint32_t>(op.value.size()));
      p = PutBytes(p + 4, op.value);
    }
  }
  FinishRecord(buf, off, len);
}

void AppendDelRangeRecord(std::string* buf, Lsn lsn, Epoch epoch, const KeyRange& range) {
  const std::string_view b = range.prefix ? std::string_view() : range.b;
  const size_t len = 1 + 4 + range.a.size() + 4 + b.size();
  size_t off;
  char* p = BeginRecord(buf, RecordType::kDelRange, lsn, epoch, len, &off);
  *p++ = range.prefix ? 0 : 1;
  PutFixed32(p, static_cast<uint32_t>(range.a.size()));
  p = PutBytes(p + 4, range.a);
  PutFixed32(p, static_cast<uint32_t>(b.size()));
  PutBytes(p + 4, b);
  FinishRecord(buf, off, len);
}

void ForEachRecord(std::string_view buf, const std::function<bool(const WalRecord&)>& fn) {
  size_t pos = 0;
  while (buf.size() - pos >= kRecordHeaderBytes) {
    const wal::RecordHeader h = wal::ParseRecordHeader(buf.data() + pos, wal::kFormatVersion);
    if (buf.size() - pos - kRecordHeaderBytes < h.length) return;  // never in our own buffers
    WalRecord r{static_cast<RecordType>(h.type), h.lsn, buf.substr(pos + kRecordHeaderBytes, h.length), h.epoch,
                h.flags, buf.substr(pos, kRecordHeaderBytes + h.length)};
    if (!fn(r)) return;
    pos += kRecordHeaderBytes + h.length;
  }
}

Status ForEachVerifiedRecord(std::string_view buf, const std::function<Status(const WalRecord&)>& fn) {
  size_t pos = 0;
  while (pos < buf.size()) {
    auto bad = [&](const std::string& why) {
      return Status::Corruption("record at offset " + std::to_string(pos) + ": " + why);
    };
    if (buf.size() - pos < kRecordHeaderBytes) return bad("truncated record header");
    const char* rec = buf.data() + pos;
    const wal::RecordHeader h = wal::ParseRecordHeader(rec, wal::kFormatVersion);
    if (h.length > kMaxRecordPayload || h.length > buf.size() - pos - kRecordHeaderBytes) {
      return bad("record length " + std::to_string(h.length) + " past the end of the buffer");
    }
    if (!KVD_MUTANT(skip_crc_on_replicated_append) && !wal::RecordCrcMatches(rec, kRecordHeaderBytes, h.length)) {
      return bad("crc mismatch");
    }
    if (std::string why = wal::CheckTypeAndFlags(h, wal::kFormatVersion); !why.empty()) return bad(why);
    const size_t n = kRecordHeaderBytes + h.length;
    KVD_RETURN_IF_ERROR(fn(WalRecord{static_cast<RecordType>(h.type), h.lsn, buf.substr(pos + kRecordHeaderBytes, h.length),
                                     h.epoch, h.flags, buf.substr(pos, n)}));
    pos += n;
  }
  return Status::Ok();
}

std::string SegmentFileName(Lsn first_lsn) {
  char digits[21];
  std::snprintf(digits, sizeof(digits), "%020llu", static_cast<unsigned long long>(first_lsn));
  return std::string("wal-") + digits + ".log";
}

std::optional<Lsn> ParseSegmentFileName(std::string_view name) {
  constexpr std::string_view kPrefix = "wal-", kSuffix = ".log";
  if (name.size() != kPrefix.size() + 20 + kSuffix.size()) return std::nullopt;
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return std::nullopt;
  std::string_view digits = name.substr(kPrefix.size(), 20);
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  Lsn lsn = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), lsn);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;  // overflow
  return lsn;
}

std::string_view ToString(DamageKind k) {
  switch (k) {
    case DamageKind::kNone: return "none";
    case DamageKind::kTornTail: return "torn tail";
    case DamageKind::kCorruption: return "corruption";
  }
  return "?";
}

}  // namespace kvd
