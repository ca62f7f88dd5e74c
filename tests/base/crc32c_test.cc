// CRC32C against the RFC 3720 (iSCSI) vectors, on both implementations.
#include "kvd/crc32c.h"

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using CrcFn = uint32_t (*)(uint32_t, const void*, size_t);

struct Path {
  const char* name;
  CrcFn fn;
};

std::vector<Path> Paths() {
  std::vector<Path> p{{"software", kvd::Crc32cSoftware}, {"dispatch", kvd::Crc32cExtend}};
  if (kvd::Crc32cHardwareAvailable()) p.push_back({"hardware", kvd::Crc32cHardware});
  return p;
}

}  // namespace

TEST_CASE("crc32c: hardware path exists on this machine (SSE4.2)") {
  // Every x86-64 CPU since 2008 has it; if this fails the hardware vectors below were skipped.
  CHECK(kvd::Crc32cHardwareAvailable());
}

TEST_CASE("crc32c: RFC 3720 vectors on every path") {
  uint8_t buf[32];
  for (const Path& p : Paths()) {
    CAPTURE(p.name);
    std::memset(buf, 0, sizeof(buf));
    CHECK(p.fn(0, buf, sizeof(buf)) == 0x8A9136AAu);
    std::memset(buf, 0xff, sizeof(buf));
    CHECK(p.fn(0, buf, sizeof(buf)) == 0x62A8AB43u);
    for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(i);
    CHECK(p.fn(0, buf, sizeof(buf)) == 0x46DD794Eu);
    for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(31 - i);
    CHECK(p.fn(0, buf, sizeof(buf)) == 0x113FDB5Cu);
    CHECK(p.fn(0, "123456789", 9) == 0xE3069283u);
    CHECK(p.fn(0, "", 0) == 0u);
  }
}

TEST_CASE("crc32c: extend equals one shot, at every split") {
  std::string s = "hello, write-ahead log: 0123456789abcdef";
  for (const Path& p : Paths()) {
    CAPTURE(p.name);
    uint32_t whole = p.fn(0, s.data(), s.size());
    for (size_t k = 0; k <= s.size(); ++k) {
      CAPTURE(k);
      CHECK(p.fn(p.fn(0, s.data(), k), s.data() + k, s.size() - k) == whole);
    }
  }
}

TEST_CASE("crc32c: random buffers and unaligned starts agree across paths") {
  uint64_t seed = std::random_device{}();
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> buf(4096 + 16);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (int i = 0; i < 500; ++i) {
    size_t start = rng() % 16;
    size_t len = rng() % 4096;
    uint32_t init = (i % 2) ? static_cast<uint32_t>(rng()) : 0;
    uint32_t sw = kvd::Crc32cSoftware(init, buf.data() + start, len);
    CHECK(kvd::Crc32cExtend(init, buf.data() + start, len) == sw);
    if (kvd::Crc32cHardwareAvailable()) CHECK(kvd::Crc32cHardware(init, buf.data() + start, len) == sw);
  }
}

TEST_CASE("crc32c: mask round trips and changes the value") {
  for (uint32_t c : {0u, 1u, 0xE3069283u, 0xffffffffu, 0x12345678u}) {
    CHECK(kvd::Crc32cUnmask(kvd::Crc32cMask(c)) == c);
    CHECK(kvd::Crc32cMask(c) != c);
    CHECK(kvd::Crc32cMask(kvd::Crc32cMask(c)) != kvd::Crc32cMask(c));
  }
}
