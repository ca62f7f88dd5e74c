// RecoverWal: torn tails at every byte, bit flips, corruption, LSN rules,
// recovery modes, dry runs.
#include <doctest/doctest.h>

#include <filesystem>
#include <random>

#include "kvd/wal.h"
#include "storage/wal_test_util.h"

using namespace kvd;
using namespace kvd::test;

namespace {

Env* env() { return Env::Default(); }

// Writes records 1..n with the real writer; closes (trimmed) unless keep_prealloc.
// Without preallocate the segment grows by writing (no preallocated flag).
void WriteWal(const std::string& dir, Lsn n, uint64_t segment_size, bool close = true, bool preallocate = true) {
  WalRecoveryReport empty;
  WalWriterOptions wo;
  wo.dir = dir;
  wo.segment_size = segment_size;
  wo.preallocate = preallocate;
  auto w = WalWriter::Open(env(), wo, empty, 1);
  REQUIRE(w.has_value());
  for (Lsn l = 1; l <= n; ++l) REQUIRE((*w)->Write(Records(l, l), l, l).ok());
  REQUIRE((*w)->Sync().ok());
  if (close) REQUIRE((*w)->Close().ok());
}

// Offsets where records end in a segment made of Records(first, ...).
std::vector<uint64_t> RecordEnds(Lsn first, Lsn last) {
  std::vector<uint64_t> ends;
  uint64_t off = kSegmentHeaderBytes;
  for (Lsn l = first; l <= last; ++l) ends.push_back(off += Records(l, l).size());
  return ends;
}

void AppendAndReopen(const std::string& dir, Lsn last) {
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
}

}  // namespace

TEST_CASE("wal recovery: a missing or empty directory is an empty WAL") {
  TempDir dir;
  auto r = Replay(env(), dir / "nope");
  CHECK(r.status.ok());
  CHECK(r.report.segments.empty());
  CHECK(r.report.last_lsn == 0);
  r = Replay(env(), dir.path(), RecoveryMode::kAbsolute);
  CHECK(r.status.ok());
  CHECK_FALSE(r.report.data_lost());
}

TEST_CASE("wal recovery: cut at every byte of the last records gives exactly the whole-record prefix") {
  constexpr Lsn kN = 12;
  TempDir src;
  WriteWal(src.path(), kN, 1 << 16, /*close=*/true, /*preallocate=*/false);  // a cut file is a growing one
  std::string seg_name = SegmentFileName(1);
  std::string full = ReadAll(src / seg_name);
  auto ends = RecordEnds(1, kN);
  REQUIRE(full.size() == ends.back());
  uint64_t from = ends[kN - 4];  // the last three records
  for (bool zero_fill : {false, true}) {
    for (uint64_t cut = from; cut <= full.size(); ++cut) {
      CAPTURE(zero_fill);
      CAPTURE(cut);
      TempDir dir;
      // Truncated (a growing file) or zeros after the cut (a preallocated one).
      std::string content = full.substr(0, cut);
      if (zero_fill) content.resize(full.size() + 4096, '\0');
      WriteAll(dir / seg_name, content);
      Lsn whole = 0;
      while (whole < kN && ends[whole] <= cut) ++whole;
      bool clean = whole > 0 && ends[whole - 1] == cut;

      auto r = Replay(env(), dir.path());
      REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
      CHECK(r.records.size() == whole);
      CHECK(r.ExactPrefix(1));
      CHECK(r.report.last_lsn == whole);
      CHECK(r.report.truncated == !clean);
      if (!clean) {
        CHECK(r.report.segments.back().damage == DamageKind::kTornTail);
        CHECK(r.report.truncated_offset == ends[whole - 1]);
        std::string dropped = full.substr(ends[whole - 1], cut - ends[whole - 1]);
        dropped.erase(dropped.find_last_not_of('\0') + 1);  // trailing zeros are not data
        CHECK(ReadAll(r.report.broken_file) == dropped);
        CHECK(std::filesystem::file_size(dir / seg_name) == ends[whole - 1]);
      }
      AppendAndReopen(dir.path(), whole);
    }
  }
}

TEST_CASE("wal recovery: random bit flips are always detected, never a wrong record") {
  uint64_t seed = std::random_device{}();
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  TempDir src;
  WriteWal(src.path(), 150, 4096);  // several segments, the last one trimmed
  auto names = SegmentNames(src.path());
  REQUIRE(names.size() >= 3);
  auto originals = DirContents(src.path());
  TempDir dir;
  for (int iter = 0; iter < 400; ++iter) {
    CAPTURE(iter);
    for (auto& [name, content] : originals) WriteAll(dir / name, content);
    const std::string& victim = names[rng() % names.size()];
    std::string bytes = originals[victim];
    uint64_t bit = rng() % (bytes.size() * 8);
    bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
    CAPTURE(victim);
    CAPTURE(bit);
    WriteAll(dir / victim, bytes);
    auto r = Replay(env(), dir.path(), RecoveryMode::kTolerateTail, /*dry_run=*/true);
    CHECK(r.ExactPrefix(1));  // whatever happens, nothing wrong is applied
    if (r.status.ok()) {
      // Only a flip in the last segment may pass, as a shorter prefix with a torn tail.
      CHECK(victim == names.back());
      CHECK(r.records.size() < 150);
      CHECK(r.report.segments.back().damage == DamageKind::kTornTail);
    } else {
      CHECK(r.status.IsCorruption());
    }
  }
}

TEST_CASE("wal recovery: a valid record after a bad one is corruption; the modes") {
  TempDir dir;
  std::string body = Records(1, 10);
  auto ends = RecordEnds(1, 10);
  uint64_t bad = ends[4];  // record 6 starts here
  body[bad - kSegmentHeaderBytes + 20] ^= 0x40;  // a payload byte of record 6
  MakeSegment(dir.path(), 1, body);
  std::string seg = dir / SegmentFileName(1);
  auto before = DirContents(dir.path());

  for (RecoveryMode m : {RecoveryMode::kTolerateTail, RecoveryMode::kAbsolute}) {
    auto r = Replay(env(), dir.path(), m);
    CHECK(r.status.IsCorruption());
    const std::string& msg = r.status.message();
    CHECK(msg.find(seg) != std::string::npos);
    CHECK(msg.find("offset " + std::to_string(bad)) != std::string::npos);
    CHECK(msg.find("crc mismatch") != std::string::npos);
    CHECK(msg.find("point_in_time") != std::string::npos);
    CHECK(r.report.segments.at(0).damage == DamageKind::kCorruption);
    CHECK(r.report.segments[0].dropped_records == 4);
    CHECK(r.report.segments[0].last_good_lsn == 5);
    CHECK(DirContents(dir.path()) == before);  // a refusal changes nothing
  }
  auto dry = Replay(env(), dir.path(), RecoveryMode::kPointInTime, true);
  CHECK(dry.status.ok());
  CHECK(dry.records.size() == 5);
  CHECK_FALSE(dry.report.truncated);
  CHECK(DirContents(dir.path()) == before);

  auto r = Replay(env(), dir.path(), RecoveryMode::kPointInTime);
  REQUIRE(r.status.ok());
  CHECK(r.records.size() == 5);
  CHECK(r.report.truncated);
  CHECK(r.report.data_lost());
  CHECK(ReadAll(r.report.broken_file) == before[SegmentFileName(1)].substr(bad));
  AppendAndReopen(dir.path(), 5);
}

TEST_CASE("wal recovery: point_in_time sets later segments aside; tolerate_tail refuses mid-log damage") {
  TempDir dir;
  MakeSegment(dir.path(), 1, Records(1, 5));
  std::string second = Records(6, 10);
  second[3] ^= 1;  // crc of record 6: a torn-looking record, but not in the last segment
  MakeSegment(dir.path(), 6, second);
  MakeSegment(dir.path(), 11, Records(11, 12));
  auto r = Replay(env(), dir.path());
  CHECK(r.status.IsCorruption());
  CHECK(r.report.segments.size() == 2);
  r = Replay(env(), dir.path(), RecoveryMode::kPointInTime);
  REQUIRE(r.status.ok());
  CHECK(r.records.size() == 5);
  CHECK(r.report.set_aside == std::vector<std::string>{dir / (SegmentFileName(11) + ".broken")});
  CHECK(SegmentNames(dir.path()) == std::vector<std::string>{SegmentFileName(1), SegmentFileName(6)});
  AppendAndReopen(dir.path(), 5);
}

TEST_CASE("wal recovery: LSN gaps and reordering are corruption unless a snapshot covers the gap") {
  TempDir dir;
  MakeSegment(dir.path(), 1, Records(1, 5));
  MakeSegment(dir.path(), 8, Records(8, 9));
  auto r = Replay(env(), dir.path());
  CHECK(r.status.IsCorruption());
  CHECK(r.status.message().find("lsn gap 5 -> 8") != std::string::npos);
  r = Replay(env(), dir.path(), RecoveryMode::kTolerateTail, false, /*start_lsn=*/7);
  REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
  CHECK(r.records.size() == 2);  // 1..5 checked but covered
  CHECK(r.report.records_replayed == 2);
  CHECK(r.report.last_lsn == 9);

  TempDir dir2;  // a gap inside one segment, and a snapshot that leaves it uncovered
  MakeSegment(dir2.path(), 1, Records(1, 3) + Records(5, 6));
  CHECK(Replay(env(), dir2.path(), RecoveryMode::kTolerateTail, false, 3).status.IsCorruption());
  CHECK(Replay(env(), dir2.path(), RecoveryMode::kTolerateTail, false, 4).status.ok());

  TempDir dir3;  // reordering
  MakeSegment(dir3.path(), 1, Records(1, 3) + Records(2, 2));
  r = Replay(env(), dir3.path(), RecoveryMode::kTolerateTail, false, 10);
  CHECK(r.status.IsCorruption());
  CHECK(r.status.message().find("reordering") != std::string::npos);

  TempDir dir4;  // WAL starting after the snapshot's LSN + 1
  MakeSegment(dir4.path(), 20, Records(20, 21));
  CHECK(Replay(env(), dir4.path(), RecoveryMode::kTolerateTail, false, 10).status.IsCorruption());
  CHECK(Replay(env(), dir4.path(), RecoveryMode::kTolerateTail, false, 19).status.ok());
}

TEST_CASE("wal recovery: a zero-filled preallocated tail is not damage, even in absolute mode") {
  TempDir dir;
  WriteWal(dir.path(), 20, 1 << 20, /*close=*/false);
  CHECK(std::filesystem::file_size(dir / SegmentFileName(1)) == (1u << 20));
  auto r = Replay(env(), dir.path(), RecoveryMode::kAbsolute);
  REQUIRE(r.status.ok());
  CHECK(r.records.size() == 20);
  CHECK(r.report.segments[0].damage == DamageKind::kNone);
  CHECK_FALSE(r.report.data_lost());
  // But non-zero bytes after a zero record header are a torn write.
  std::string content = ReadAll(dir / SegmentFileName(1));
  content[RecordEnds(1, 20).back() + 100] = 'x';
  WriteAll(dir / SegmentFileName(1), content);
  r = Replay(env(), dir.path(), RecoveryMode::kAbsolute);
  CHECK(r.status.IsCorruption());
  CHECK(r.status.message().find("tolerate_tail") != std::string::npos);
  r = Replay(env(), dir.path());
  REQUIRE(r.status.ok());
  CHECK(r.report.truncated);
  CHECK(r.report.dropped_bytes == 101);
  CHECK(r.records.size() == 20);
}

TEST_CASE("wal recovery: a torn tail under each mode, and dry_run changes no byte") {
  TempDir dir;
  std::string body = Records(1, 8);
  body.resize(body.size() - 5);  // record 8 torn
  MakeSegment(dir.path(), 1, body);
  auto before = DirContents(dir.path());
  for (RecoveryMode m : {RecoveryMode::kTolerateTail, RecoveryMode::kAbsolute, RecoveryMode::kPointInTime}) {
    auto r = Replay(env(), dir.path(), m, /*dry_run=*/true);
    CHECK(r.status.ok() == (m != RecoveryMode::kAbsolute));
    CHECK(r.records.size() == 7);
    CHECK(r.report.segments[0].damage == DamageKind::kTornTail);
    CHECK(r.report.segments[0].dropped_bytes == Records(8, 8).size() - 5);
    CHECK(DirContents(dir.path()) == before);
  }
  auto r = Replay(env(), dir.path(), RecoveryMode::kAbsolute);
  CHECK(r.status.IsCorruption());
  CHECK(DirContents(dir.path()) == before);
  r = Replay(env(), dir.path());
  REQUIRE(r.status.ok());
  CHECK(r.report.truncated);
  CHECK(r.report.truncated_segment == dir / SegmentFileName(1));
  CHECK(r.report.broken_file == dir / (SegmentFileName(1) + ".broken"));
  // Recovering again is clean, even in absolute mode.
  r = Replay(env(), dir.path(), RecoveryMode::kAbsolute);
  CHECK(r.status.ok());
  CHECK(r.records.size() == 7);
}

TEST_CASE("wal recovery: a bad header is a torn tail only in the last segment") {
  TempDir dir;
  MakeSegment(dir.path(), 1, Records(1, 4));
  WriteAll(dir / SegmentFileName(5), wal::EncodeSegmentHeader(5).substr(0, 20));  // torn while created
  auto r = Replay(env(), dir.path(), RecoveryMode::kAbsolute);
  CHECK(r.status.IsCorruption());
  r = Replay(env(), dir.path());
  REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
  CHECK(r.records.size() == 4);
  CHECK(r.report.segments.back().damage == DamageKind::kTornTail);
  CHECK(r.report.data_lost());
  CHECK(SegmentNames(dir.path()) == std::vector<std::string>{SegmentFileName(1)});
  AppendAndReopen(dir.path(), 4);

  TempDir dir2;
  std::string first = wal::EncodeSegmentHeader(1) + Records(1, 4);
  first[3] ^= 0x10;  // bad magic
  WriteAll(dir2 / SegmentFileName(1), first);
  MakeSegment(dir2.path(), 5, Records(5, 6));
  r = Replay(env(), dir2.path());
  CHECK(r.status.IsCorruption());
  CHECK(r.status.message().find("magic") != std::string::npos);

  TempDir dir3;  // header naming another LSN than the file name
  WriteAll(dir3 / SegmentFileName(1), wal::EncodeSegmentHeader(2) + Records(1, 2));
  CHECK(Replay(env(), dir3.path()).status.IsCorruption());
}
