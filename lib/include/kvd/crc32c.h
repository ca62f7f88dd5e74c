// CRC32C (Castagnoli), the checksum of WAL records and snapshots.
//
// Crc32c/Crc32cExtend use the SSE4.2 crc32 instruction when the CPU has it
// (detected once at start-up) and a slicing-by-8 table otherwise. Both paths
// are exported so tests can check each against the standard vectors.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kvd {

// crc is the value returned for the preceding bytes (0 to start).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);
inline uint32_t Crc32c(const void* data, size_t n) { return Crc32cExtend(0, data, n); }

uint32_t Crc32cSoftware(uint32_t crc, const void* data, size_t n);
// Only call when Crc32cHardwareAvailable().
uint32_t Crc32cHardware(uint32_t crc, const void* data, size_t n);
bool Crc32cHardwareAvailable();

// LevelDB's mask: a CRC stored inside data that is itself checksummed (a
// record inside a file) is rotated and offset so CRCs of CRCs stay strong.
inline constexpr uint32_t kCrc32cMaskDelta = 0xa282ead8u;
inline uint32_t Crc32cMask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kCrc32cMaskDelta; }
inline uint32_t Crc32cUnmask(uint32_t masked) {
  uint32_t rot = masked - kCrc32cMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace kvd
