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
inline constexpr uint32_t kFormatVersion = 1;
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

// The masked CRC of a record whose 17-byte header starts at rec: covers
// type, lsn and payload (bytes [8, 17 + len)).
inline uint32_t RecordCrc(const char* rec, uint32_t payload_len) {
  return Crc32cMask(Crc32c(rec + 8, 9 + size_t{payload_len}));
}

inline std::string EncodeSegmentHeader(Lsn first_lsn) {
  std::string h(kSegmentHeaderBytes, '\0');
  std::memcpy(h.data(), kSegmentMagic, 8);
  PutFixed32(h.data() + 8, kFormatVersion);
  PutFixed64(h.data() + 16, first_lsn);
  PutFixed32(h.data() + kHeaderCrcOffset, Crc32cMask(Crc32c(h.data(), kHeaderCrcOffset)));
  return h;
}

// Empty string if the header is valid, else why not. *first_lsn is set when
// the header is valid; *verified when its CRC matched (a verified header that
// is still refused was written that way: not a torn write).
inline std::string CheckSegmentHeader(std::string_view data, Lsn* first_lsn, bool* verified) {
  *verified = false;
  if (data.size() < kSegmentHeaderBytes) return "segment header truncated";
  if (std::memcmp(data.data(), kSegmentMagic, 8) != 0) return "bad segment magic";
  if (Crc32cUnmask(GetFixed32(data.data() + kHeaderCrcOffset)) != Crc32c(data.data(), kHeaderCrcOffset)) {
    return "segment header crc mismatch";
  }
  *verified = true;
  uint32_t version = GetFixed32(data.data() + 8);
  if (version != kFormatVersion) return "unsupported segment format version " + std::to_string(version);
  if (GetFixed32(data.data() + 12) != 0 || GetFixed32(data.data() + 24) != 0) {
    return "unknown segment header flags";
  }
  *first_lsn = GetFixed64(data.data() + 16);
  return {};
}

}  // namespace kvd::wal
