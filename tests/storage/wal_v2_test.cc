// WAL format v2 against v1: mixed directories, cuts and flips at every byte
// of the last records, epochs along the log, extensible types and flags.
#include <doctest/doctest.h>

#include <filesystem>
#include <random>

#include "kvd/wal.h"
#include "storage/wal_test_util.h"

using namespace kvd;
using namespace kvd::test;

namespace {

Env* env() { return Env::Default(); }

// PUT Key(l) = Value(l) for l in [from, to], in the v1 framing.
std::string RecordsV1(Lsn from, Lsn to) {
  std::string buf;
  for (Lsn l = from; l <= to; ++l) {
    std::string v2;
    AppendPutRecord(&v2, l, kFirstEpoch, Key(l), Value(l));
    wal::AppendRecordV1(&buf, RecordType::kPut, l, std::string_view(v2).substr(kRecordHeaderBytes));
  }
  return buf;
}

void MakeSegmentV1(const std::string& dir, Lsn first, std::string_view body) {
  WriteAll(JoinPath(dir, SegmentFileName(first)), wal::EncodeSegmentHeader(first, wal::kFormatVersionV1) + std::string(body));
}

// A v2 record with any type, flags and epoch, its CRC made valid.
std::string RawV2(uint8_t type, uint8_t flags, Lsn lsn, Epoch epoch) {
  std::string buf;
  AppendPutRecord(&buf, lsn, epoch, Key(lsn), Value(lsn));
  buf[8] = static_cast<char>(type);
  buf[9] = static_cast<char>(flags);
  const auto len = static_cast<uint32_t>(buf.size() - kRecordHeaderBytes);
  wal::PutFixed32(buf.data(), wal::RecordCrc(buf.data(), kRecordHeaderBytes, len));
  return buf;
}

// Continues the WAL with the real writer after recovery; checks everything reads back.
void ContinueAndCheck(const std::string& dir, Lsn last) {
  WalRecoveryOptions ro;
  ro.dir = dir;
  WalRecoveryReport rep;
  REQUIRE(RecoverWal(env(), ro, &rep).ok());
  REQUIRE(rep.last_lsn == last);
  WalWriterOptions wo;
  wo.dir = dir;
  wo.segment_size = 1 << 16;
  auto w = WalWriter::Open(env(), wo, rep, last + 1);
  REQUIRE_MESSAGE(w.has_value(), w.error().ToString());
  REQUIRE((*w)->Write(Records(last + 1, last + 2), last + 1, last + 2).ok());
  REQUIRE((*w)->Close().ok());
  auto again = Replay(env(), dir, RecoveryMode::kAbsolute);
  REQUIRE_MESSAGE(again.status.ok(), again.status.ToString());
  CHECK(again.records.size() == last + 2);
  CHECK(again.ExactPrefix(1));
  // The new records are in a v2 segment; every v1 segment is as it was.
  for (const SegmentReport& s : again.report.segments) {
    if (s.last_good_lsn > last) CHECK(s.format_version == wal::kFormatVersion);
  }
}

}  // namespace

TEST_CASE("wal v2: v1 segments then v2 segments recover as one log; the writer never appends v2 to v1") {
  TempDir dir;
  MakeSegmentV1(dir.path(), 1, RecordsV1(1, 10));
  MakeSegmentV1(dir.path(), 11, RecordsV1(11, 15));
  const auto v1_files = DirContents(dir.path());
  auto r = Replay(env(), dir.path(), RecoveryMode::kAbsolute);
  REQUIRE(r.status.ok());
  CHECK(r.records.size() == 15);
  CHECK(r.ExactPrefix(1));
  CHECK(r.report.segments.back().format_version == wal::kFormatVersionV1);
  ContinueAndCheck(dir.path(), 15);
  for (const auto& [name, content] : v1_files) CHECK(ReadAll(dir / name) == content);  // nothing rewritten
  CHECK(SegmentNames(dir.path()).size() == 3);
  // A v2 segment after the v1 ones, then recovery again from scratch.
  auto all = Replay(env(), dir.path(), RecoveryMode::kAbsolute);
  REQUIRE(all.status.ok());
  CHECK(all.report.segments[2].format_version == wal::kFormatVersion);
  CHECK(all.report.segments[2].first_lsn == 16);
}

TEST_CASE("wal v2: cut at every byte of the last records, v1 and v2 last segments alike") {
  constexpr Lsn kN = 8;
  for (bool v1 : {true, false}) {
    CAPTURE(v1);
    const std::string body = v1 ? RecordsV1(1, kN) : Records(1, kN);
    const std::string full =
        wal::EncodeSegmentHeader(1, v1 ? wal::kFormatVersionV1 : wal::kFormatVersion) + body;
    std::vector<uint64_t> ends;
    uint64_t off = kSegmentHeaderBytes;
    for (Lsn l = 1; l <= kN; ++l) ends.push_back(off += (v1 ? RecordsV1(l, l) : Records(l, l)).size());
    REQUIRE(ends.back() == full.size());
    for (uint64_t cut = ends[kN - 4]; cut <= full.size(); ++cut) {
      CAPTURE(cut);
      TempDir dir;
      WriteAll(dir / SegmentFileName(1), full.substr(0, cut));
      Lsn whole = 0;
      while (whole < kN && ends[whole] <= cut) ++whole;
      auto r = Replay(env(), dir.path());
      REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
      CHECK(r.records.size() == whole);
      CHECK(r.ExactPrefix(1));
      CHECK(r.report.truncated == (ends[whole - 1] != cut));
      ContinueAndCheck(dir.path(), whole);
    }
  }
}

TEST_CASE("wal v2: a flipped byte anywhere in the last records is a torn tail or corruption, never a changed record") {
  constexpr Lsn kN = 6;
  const std::string full = wal::EncodeSegmentHeader(1) + Records(1, kN);
  const uint64_t from = kSegmentHeaderBytes + Records(1, kN - 2).size();
  for (uint64_t i = from; i < full.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      CAPTURE(i);
      CAPTURE(int{mask});
      TempDir dir;
      std::string bad = full;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      WriteAll(dir / SegmentFileName(1), bad);
      auto r = Replay(env(), dir.path(), RecoveryMode::kTolerateTail, /*dry_run=*/true);
      CHECK(r.ExactPrefix(1));
      CHECK(r.records.size() < kN);
      if (r.status.ok()) CHECK(r.report.segments.back().damage == DamageKind::kTornTail);
      if (!r.status.ok()) CHECK(r.status.IsCorruption());
    }
  }
}

TEST_CASE("wal v2: epochs never go back along the log, within a segment or across segments") {
  SUBCASE("within a segment") {
    TempDir dir;
    std::string body = RawV2(1, 0, 1, 3) + RawV2(1, 0, 2, 3) + RawV2(1, 0, 3, 2);
    MakeSegment(dir.path(), 1, body);
    auto r = Replay(env(), dir.path(), RecoveryMode::kTolerateTail, true);
    CHECK(r.status.IsCorruption());
    CHECK(r.report.segments[0].damage_reason.find("epoch going back 3 -> 2") != std::string::npos);
    CHECK(r.records.size() == 2);
  }
  SUBCASE("across segments, v1 (epoch 1) after v2 epoch 2") {
    TempDir dir;
    MakeSegment(dir.path(), 1, RawV2(1, 0, 1, 2));
    MakeSegmentV1(dir.path(), 2, RecordsV1(2, 2));
    auto r = Replay(env(), dir.path(), RecoveryMode::kTolerateTail, true);
    CHECK(r.status.IsCorruption());
    CHECK(r.records.size() == 1);
  }
  SUBCASE("going up is fine, with gaps in the epoch numbers") {
    TempDir dir;
    MakeSegmentV1(dir.path(), 1, RecordsV1(1, 1));
    MakeSegment(dir.path(), 2, RawV2(1, 0, 2, 1) + RawV2(1, 0, 3, 4) + RawV2(1, 0, 4, 9));
    auto r = Replay(env(), dir.path(), RecoveryMode::kAbsolute);
    REQUIRE(r.status.ok());
    CHECK(r.records.size() == 4);
    CHECK(r.report.segments.back().last_epoch == 9);
  }
}

TEST_CASE("wal v2: unknown must-understand types and flags stop recovery as corruption; skippable ones are replayed") {
  struct Case {
    uint8_t type, flags;
    bool readable;
  };
  const Case cases[] = {{0x05, 0, false}, {0x7f, 0, false}, {0x01, 0x02, false}, {0x01, 0x0f, false},
                        {0x01, 0x40, true}, {0x80, 0, true},  {0xfe, 0xf0, true}};
  for (const Case& c : cases) {
    CAPTURE(int{c.type});
    CAPTURE(int{c.flags});
    TempDir dir;
    MakeSegment(dir.path(), 1, Records(1, 2) + RawV2(c.type, c.flags, 3, 1) + Records(4, 4));
    auto r = Replay(env(), dir.path(), RecoveryMode::kTolerateTail, true);
    if (c.readable) {
      REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
      CHECK(r.records.size() == 4);  // it keeps its LSN
      State st;
      for (const WalRecord& rec : r.records) REQUIRE(ApplyRecord(&st, rec).ok());
      CHECK(st.Get(Key(3)).has_value() == (c.type == 1));  // a skipped type changes nothing
    } else {
      CHECK(r.status.IsCorruption());  // verified by its CRC: written that way, not torn
      CHECK(r.records.size() == 2);
      CHECK(r.report.segments[0].damage == DamageKind::kCorruption);
    }
  }
  // v1 had no skippable range: a type 0x80 record there is corruption.
  TempDir dir;
  std::string v1;
  wal::AppendRecordV1(&v1, static_cast<RecordType>(0x80), 1, "x");
  MakeSegmentV1(dir.path(), 1, v1);
  CHECK(Replay(env(), dir.path(), RecoveryMode::kTolerateTail, true).status.IsCorruption());
}

TEST_CASE("wal v2: segment header flags: must-understand bits refuse the segment, the others are ignored") {
  for (uint32_t flags : {0x00000001u, 0x00008000u, 0x00010000u, 0x80000000u}) {
    CAPTURE(flags);
    TempDir dir;
    std::string h = wal::EncodeSegmentHeader(1);
    wal::PutFixed32(h.data() + 12, flags);
    wal::PutFixed32(h.data() + 28, Crc32cMask(Crc32c(h.data(), 28)));
    WriteAll(dir / SegmentFileName(1), h + Records(1, 3));
    auto r = Replay(env(), dir.path(), RecoveryMode::kTolerateTail, true);
    const bool ignorable = (flags & 0xffff) == 0;
    CHECK(r.status.ok() == ignorable);
    CHECK(r.records.size() == (ignorable ? 3u : 0u));
  }
}
