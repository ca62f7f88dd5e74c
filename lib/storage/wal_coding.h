// Byte-level helpers shared by the WAL writer, reader and record code.
// docs/wal_format.md is the normative layout; the constants live here only.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "kvd/crc32c.h"
#include "kvd/types.h"
#include "kvd/wal.h"

namespace kvd::wal {

// Segment header: magic(8) version(4) flags(4) first_lsn(8) reserved(4) crc(4).
inline constexpr char kSegmentMagic[8] = {'k', 'v', 'd', 'W', 'A', 'L', '\r', '\n'};
inline constexpr uint32_t kFormatVersion = 2;  // what the writer writes
inline constexpr size_t kHeaderCrcOffset = 28;

inline void PutFixed32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }  // little-endian hosts only
inline void PutFixed64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline uint32_t GetFixed32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t GetFixed64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
static_assert(std::endian::native == std::endian::little, "kvd's on-disk helpers assume little-endian");

// Segment header flags: bits 0-15 must be understood (none are defined: a
// reader refuses a segment with any of them set), bits 16-31 may be ignored.
inline constexpr uint32_t kSegmentMustUnderstandFlags = 0x0000ffff;
// May-ignore hint: the file was reserved to its full size (fallocate) when it
// was created, so a crash cannot leave it shorter than its records reach
// (docs/wal_format.md §2, §6). The writer sets it only when fallocate worked.
inline constexpr uint32_t kSegmentFlagPreallocated = 1u << 16;
inline constexpr uint32_t kFormatVersionV1 = 1;

inline size_t RecordHeaderBytesFor(uint32_t version) {
  return version == kFormatVersionV1 ? kRecordHeaderBytesV1 : kRecordHeaderBytes;
}

// The fields of a record header starting at rec (v1: no flags, epoch 1).
// The caller has checked that RecordHeaderBytesFor(version) bytes exist.
struct RecordHeader {
  uint32_t masked_crc;
  uint32_t length;
  uint8_t type;
  uint8_t flags;
  Lsn lsn;
  Epoch epoch;
};
inline RecordHeader ParseRecordHeader(const char* rec, uint32_t version) {
  if (version == kFormatVersionV1) {
    return {GetFixed32(rec), GetFixed32(rec + 4), static_cast<uint8_t>(rec[8]), 0, GetFixed64(rec + 9), kFirstEpoch};
  }
  return {GetFixed32(rec),      GetFixed32(rec + 4),  static_cast<uint8_t>(rec[8]),
          static_cast<uint8_t>(rec[9]), GetFixed64(rec + 10), GetFixed64(rec + 18)};
}

// The masked CRC of a record whose header (header_bytes long) starts at rec:
// covers everything after the length field, payload included.
inline uint32_t RecordCrc(const char* rec, size_t header_bytes, uint32_t payload_len) {
  return Crc32cMask(Crc32c(rec + 8, header_bytes - 8 + size_t{payload_len}));
}
inline bool RecordCrcMatches(const char* rec, size_t header_bytes, uint32_t payload_len) {
  return Crc32cUnmask(GetFixed32(rec)) == Crc32c(rec + 8, header_bytes - 8 + size_t{payload_len});
}

// Why a CRC-valid record's type or flags are unreadable here, or empty.
inline std::string CheckTypeAndFlags(const RecordHeader& h, uint32_t version) {
  // v1 knew PUT, DEL and BATCH only; DEL_RANGE came with v2.
  const bool known = h.type >= 1 && h.type <= (version == kFormatVersionV1 ? 3 : kLastKnownRecordType);
  if (!known && (version == kFormatVersionV1 || h.type < kFirstSkippableType)) {
    return "unknown record type " + std::to_string(h.type);
  }
  if ((h.flags & kMustUnderstandFlags & ~kKnownRecordFlags) != 0) {
    return "unknown must-understand record flags " + std::to_string(h.flags);
  }
  if (h.epoch == 0) return "record epoch 0";
  return {};
}

inline std::string EncodeSegmentHeader(Lsn first_lsn, uint32_t version = kFormatVersion, uint32_t flags = 0) {
  std::string h(kSegmentHeaderBytes, '\0');
  std::memcpy(h.data(), kSegmentMagic, 8);
  PutFixed32(h.data() + 8, version);
  PutFixed32(h.data() + 12, flags);
  PutFixed64(h.data() + 16, first_lsn);
  PutFixed32(h.data() + kHeaderCrcOffset, Crc32cMask(Crc32c(h.data(), kHeaderCrcOffset)));
  return h;
}

// Empty string if the header is valid, else why not. *first_lsn and
// *version are set when the header is valid; *verified when its CRC matched
// (a verified header that is still refused was written that way: not a torn
// write).
inline std::string CheckSegmentHeader(std::string_view data, Lsn* first_lsn, uint32_t* version, bool* verified,
                                      uint32_t* flags_out = nullptr) {
  *verified = false;
  if (data.size() < kSegmentHeaderBytes) return "segment header truncated";
  if (std::memcmp(data.data(), kSegmentMagic, 8) != 0) return "bad segment magic";
  if (Crc32cUnmask(GetFixed32(data.data() + kHeaderCrcOffset)) != Crc32c(data.data(), kHeaderCrcOffset)) {
    return "segment header crc mismatch";
  }
  *verified = true;
  const uint32_t v = GetFixed32(data.data() + 8);
  if (v != kFormatVersionV1 && v != kFormatVersion) return "unsupported segment format version " + std::to_string(v);
  const uint32_t flags = GetFixed32(data.data() + 12);
  // v1 knew no flags at all; v2 ignores the may-ignore half.
  const uint32_t refused = v == kFormatVersionV1 ? flags : flags & kSegmentMustUnderstandFlags;
  if (refused != 0 || GetFixed32(data.data() + 24) != 0) return "unknown segment header flags";
  *first_lsn = GetFixed64(data.data() + 16);
  *version = v;
  if (flags_out != nullptr) *flags_out = flags;
  return {};
}

// Format v1 record framing, kept so tests and tools can build the segments
// an older kvd wrote (the writer never writes v1).
inline void AppendRecordV1(std::string* buf, RecordType type, Lsn lsn, std::string_view payload) {
  const size_t off = buf->size();
  buf->resize(off + kRecordHeaderBytesV1 + payload.size());
  char* rec = buf->data() + off;
  PutFixed32(rec + 4, static_cast<uint32_t>(payload.size()));
  rec[8] = static_cast<char>(type);
  PutFixed64(rec + 9, lsn);
  if (!payload.empty()) std::memcpy(rec + kRecordHeaderBytesV1, payload.data(), payload.size());
  PutFixed32(rec, RecordCrc(rec, kRecordHeaderBytesV1, static_cast<uint32_t>(payload.size())));
}

}  // namespace kvd::wal
