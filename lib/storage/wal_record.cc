// WAL record framing (docs/wal_format.md §3) and segment names.
// Append*Record is on the hot path: one resize of the caller's buffer, no
// other allocation.
#include <charconv>
#include <cstdio>
#include <cstring>

#include "kvd/wal.h"
#include "storage/wal_coding.h"

namespace kvd {
namespace {

using wal::PutFixed32;
using wal::PutFixed64;

// Grows *buf by a record of payload_len bytes, fills the header except the
// CRC, and returns where the payload goes.
inline char* BeginRecord(std::string* buf, RecordType type, Lsn lsn, size_t payload_len, size_t* rec_off) {
  *rec_off = buf->size();
  buf->resize(*rec_off + kRecordHeaderBytes + payload_len);
  char* rec = buf->data() + *rec_off;
  PutFixed32(rec + 4, static_cast<uint32_t>(payload_len));
  rec[8] = static_cast<char>(type);
  PutFixed64(rec + 9, lsn);
  return rec + kRecordHeaderBytes;
}

inline void FinishRecord(std::string* buf, size_t rec_off, size_t payload_len) {
  char* rec = buf->data() + rec_off;
  PutFixed32(rec, wal::RecordCrc(rec, static_cast<uint32_t>(payload_len)));
}

inline char* PutBytes(char* p, std::string_view s) {
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

}  // namespace

void AppendPutRecord(std::string* buf, Lsn lsn, std::string_view key, std::string_view value) {
  size_t len = 4 + key.size() + value.size();
  size_t off;
  char* p = BeginRecord(buf, RecordType::kPut, lsn, len, &off);
  PutFixed32(p, static_cast<uint32_t>(key.size()));
  PutBytes(PutBytes(p + 4, key), value);
  FinishRecord(buf, off, len);
}

void AppendDelRecord(std::string* buf, Lsn lsn, std::string_view key) {
  size_t off;
  char* p = BeginRecord(buf, RecordType::kDel, lsn, key.size(), &off);
  PutBytes(p, key);
  FinishRecord(buf, off, key.size());
}

void AppendBatchRecord(std::string* buf, Lsn lsn, std::span<const BatchOp> ops) {
  size_t len = 4;
  for (const BatchOp& op : ops) {
    len += 1 + 4 + op.key.size();
    if (op.type == OpType::kPut) len += 4 + op.value.size();
  }
  size_t off;
  char* p = BeginRecord(buf, RecordType::kBatch, lsn, len, &off);
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

void ForEachRecord(std::string_view buf, const std::function<bool(const WalRecord&)>& fn) {
  size_t pos = 0;
  while (buf.size() - pos >= kRecordHeaderBytes) {
    const char* rec = buf.data() + pos;
    uint32_t len = wal::GetFixed32(rec + 4);
    if (buf.size() - pos - kRecordHeaderBytes < len) return;  // never in our own buffers
    WalRecord r{static_cast<RecordType>(rec[8]), wal::GetFixed64(rec + 9),
                buf.substr(pos + kRecordHeaderBytes, len)};
    if (!fn(r)) return;
    pos += kRecordHeaderBytes + len;
  }
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
