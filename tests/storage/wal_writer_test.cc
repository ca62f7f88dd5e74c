// WalWriter: segments, roll-over, continuation, preallocation and failures.
#include <doctest/doctest.h>

#include <filesystem>
#include <random>

#include "kvd/fault_env.h"
#include "kvd/wal.h"
#include "storage/wal_test_util.h"

using namespace kvd;
using namespace kvd::test;

namespace {

struct Opened {
  WalRecoveryReport report;
  std::unique_ptr<WalWriter> writer;
};

// RecoverWal then WalWriter::Open at the next LSN, as the engine does.
Opened RecoverAndOpen(Env* env, const std::string& dir, uint64_t segment_size = 4096, Lsn start_lsn = 0,
                      std::function<void(std::string_view)> on_warning = {}) {
  Opened o;
  WalRecoveryOptions ro;
  ro.dir = dir;
  ro.start_lsn = start_lsn;
  Status s = RecoverWal(env, ro, &o.report);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  WalWriterOptions wo;
  wo.dir = dir;
  wo.segment_size = segment_size;
  wo.on_warning = std::move(on_warning);
  auto w = WalWriter::Open(env, wo, o.report, std::max(o.report.last_lsn, start_lsn) + 1);
  REQUIRE_MESSAGE(w.has_value(), w.error().ToString());
  o.writer = std::move(*w);
  return o;
}

void WriteRange(WalWriter* w, Lsn from, Lsn to) {
  Status s = w->Write(Records(from, to), from, to);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
}

uint64_t FileSize(const std::string& p) { return std::filesystem::file_size(p); }

}  // namespace

TEST_CASE("wal writer: first segment, header, preallocation, close trims") {
  TempDir dir;
  auto o = RecoverAndOpen(Env::Default(), dir.path(), 1 << 20);
  std::string seg = dir / SegmentFileName(1);
  CHECK(o.writer->stats().active_segment == seg);
  CHECK(FileSize(seg) == (1u << 20));  // fallocated whole
  // Flagged as preallocated: recovery then knows a crash cannot have shrunk it.
  CHECK(ReadAll(seg).substr(0, kSegmentHeaderBytes) ==
        wal::EncodeSegmentHeader(1, wal::kFormatVersion, wal::kSegmentFlagPreallocated));
  WriteRange(o.writer.get(), 1, 10);
  REQUIRE(o.writer->Sync().ok());
  CHECK(o.writer->stats().bytes == Records(1, 10).size());
  REQUIRE(o.writer->Close().ok());
  CHECK(FileSize(seg) == kSegmentHeaderBytes + Records(1, 10).size());
  CHECK(o.writer->Write(Records(11, 11), 11, 11).code() == Code::kInternal);  // closed
  auto r = Replay(Env::Default(), dir.path(), RecoveryMode::kAbsolute);
  REQUIRE(r.status.ok());
  CHECK(r.records.size() == 10);
  CHECK(r.ExactPrefix(1));
}

TEST_CASE("wal writer: roll-over names segments by their first record and recovery reads them all") {
  TempDir dir;
  constexpr uint64_t kSeg = 2048;
  auto o = RecoverAndOpen(Env::Default(), dir.path(), kSeg);
  Lsn next = 1;
  for (int i = 0; i < 60; ++i) {  // groups of 1..7 records
    Lsn n = 1 + i % 7;
    WriteRange(o.writer.get(), next, next + n - 1);
    next += n;
  }
  REQUIRE(o.writer->Sync().ok());
  auto names = SegmentNames(dir.path());
  CHECK(names.size() > 5);
  CHECK(o.writer->stats().segments == names.size());
  CHECK(o.writer->stats().bytes == Records(1, next - 1).size());
  // Each segment starts with the record its name says, and none is over size.
  auto r = Replay(Env::Default(), dir.path(), RecoveryMode::kAbsolute, /*dry_run=*/true);
  REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
  CHECK(r.records.size() == next - 1);
  CHECK(r.ExactPrefix(1));
  REQUIRE(r.report.segments.size() == names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    const SegmentReport& s = r.report.segments[i];
    CAPTURE(s.path);
    CHECK(s.first_lsn == *ParseSegmentFileName(names[i]));
    CHECK(s.good_bytes <= kSeg);
    if (i + 1 < names.size()) CHECK(s.last_good_lsn + 1 == r.report.segments[i + 1].first_lsn);
  }
  REQUIRE(o.writer->Close().ok());
}

TEST_CASE("wal writer: a record larger than a segment gets a segment of its own") {
  TempDir dir;
  auto o = RecoverAndOpen(Env::Default(), dir.path(), 1024);
  WriteRange(o.writer.get(), 1, 2);
  std::string big;
  AppendPutRecord(&big, 3, kFirstEpoch, "big", std::string(5000, 'b'));
  REQUIRE(o.writer->Write(big, 3, 3).ok());
  WriteRange(o.writer.get(), 4, 5);
  REQUIRE(o.writer->Close().ok());
  auto names = SegmentNames(dir.path());
  CHECK(names == std::vector<std::string>{SegmentFileName(1), SegmentFileName(3), SegmentFileName(4)});
  auto r = Replay(Env::Default(), dir.path(), RecoveryMode::kAbsolute);
  REQUIRE(r.status.ok());
  REQUIRE(r.records.size() == 5);
  CHECK(r.records[2].payload.size() == 4 + 3 + 5000);
}

TEST_CASE("wal writer: reopening continues the last segment; an empty one is reused, not duplicated") {
  TempDir dir;
  {
    auto o = RecoverAndOpen(Env::Default(), dir.path(), 1 << 16);
    WriteRange(o.writer.get(), 1, 5);
    REQUIRE(o.writer->Sync().ok());
    // No Close: like a crash after the sync (the segment keeps its preallocated zeros).
  }
  {
    auto o = RecoverAndOpen(Env::Default(), dir.path(), 1 << 16);
    CHECK(o.report.last_lsn == 5);
    CHECK(o.writer->stats().active_segment == dir / SegmentFileName(1));
    WriteRange(o.writer.get(), 6, 9);
    REQUIRE(o.writer->Close().ok());
  }
  {
    auto o = RecoverAndOpen(Env::Default(), dir.path(), 1 << 16);  // after a trim: re-preallocated
    CHECK(FileSize(dir / SegmentFileName(1)) == (1u << 16));
    WriteRange(o.writer.get(), 10, 10);
    REQUIRE(o.writer->Close().ok());
  }
  CHECK(SegmentNames(dir.path()) == std::vector<std::string>{SegmentFileName(1)});
  auto r = Replay(Env::Default(), dir.path(), RecoveryMode::kAbsolute);
  CHECK(r.records.size() == 10);
  CHECK(r.ExactPrefix(1));

  TempDir empty;
  { auto o = RecoverAndOpen(Env::Default(), empty.path()); }  // segment 1 created, nothing written
  { auto o = RecoverAndOpen(Env::Default(), empty.path()); }
  CHECK(SegmentNames(empty.path()) == std::vector<std::string>{SegmentFileName(1)});
  {
    // A snapshot covers up to 41: the empty wal-1 is replaced by wal-42.
    auto o = RecoverAndOpen(Env::Default(), empty.path(), 4096, 41);
    WriteRange(o.writer.get(), 42, 43);
    REQUIRE(o.writer->Close().ok());
  }
  CHECK(SegmentNames(empty.path()) == std::vector<std::string>{SegmentFileName(42)});
  auto r2 = Replay(Env::Default(), empty.path(), RecoveryMode::kAbsolute, false, 41);
  REQUIRE(r2.status.ok());
  CHECK(r2.records.size() == 2);
}

TEST_CASE("wal writer: fallocate unsupported falls back to growing the file and warns once") {
  TempDir dir;
  FailingEnv env;
  env.allocate_errno = EOPNOTSUPP;
  int warnings = 0;
  auto o = RecoverAndOpen(&env, dir.path(), 2048, 0, [&](std::string_view) { ++warnings; });
  for (Lsn l = 1; l <= 150; ++l) {
    WriteRange(o.writer.get(), l, l);
    REQUIRE(o.writer->Sync().ok());
  }
  CHECK(SegmentNames(dir.path()).size() > 2);
  CHECK(warnings == 1);
  REQUIRE(o.writer->Close().ok());
  auto r = Replay(Env::Default(), dir.path(), RecoveryMode::kAbsolute);
  REQUIRE(r.status.ok());
  CHECK(r.records.size() == 150);
}

TEST_CASE("wal writer: ENOSPC creating a segment leaves no half segment and nothing of the write") {
  TempDir dir;
  FailingEnv env;
  auto o = RecoverAndOpen(&env, dir.path(), 2048);
  Lsn next = 1;
  while (o.writer->stats().bytes + Records(next, next + 3).size() + kSegmentHeaderBytes < 2048) {
    WriteRange(o.writer.get(), next, next + 3);
    next += 4;
  }
  REQUIRE(o.writer->Sync().ok());
  auto before = DirContents(dir.path());
  // This write fills the segment and needs the next one, which cannot be created.
  env.allocate_errno = ENOSPC;
  std::string recs = Records(next, next + 9);
  Status s = o.writer->Write(recs, next, next + 9);
  CHECK(s.code() == Code::kNoSpace);
  CHECK(DirContents(dir.path()) == before);  // no temp file, no new segment, first segment as it was
  CHECK(o.writer->stats().segments == 1);
  // Space is back: the same write succeeds.
  env.allocate_errno = 0;
  REQUIRE(o.writer->Write(recs, next, next + 9).ok());
  REQUIRE(o.writer->Close().ok());
  auto r = Replay(Env::Default(), dir.path(), RecoveryMode::kAbsolute);
  REQUIRE(r.status.ok());
  CHECK(r.records.size() == next + 9);
  CHECK(r.ExactPrefix(1));
}

TEST_CASE("wal writer: a failed write is cut back; EIO stops the writer, ENOSPC does not") {
  TempDir dir;
  FailingEnv env;
  auto o = RecoverAndOpen(&env, dir.path(), 1 << 16);
  WriteRange(o.writer.get(), 1, 3);
  REQUIRE(o.writer->Sync().ok());
  std::string seg = dir / SegmentFileName(1);
  std::string before = ReadAll(seg);

  env.write_errno = ENOSPC;  // e.g. a file system without fallocate
  CHECK(o.writer->Write(Records(4, 8), 4, 8).code() == Code::kNoSpace);
  env.write_errno = 0;
  CHECK(ReadAll(seg) == before);
  REQUIRE(o.writer->Write(Records(4, 5), 4, 5).ok());
  REQUIRE(o.writer->Sync().ok());

  before = ReadAll(seg);
  env.write_errno = EIO;
  CHECK(o.writer->Write(Records(6, 8), 6, 8).code() == Code::kIOError);
  env.write_errno = 0;
  CHECK(o.writer->Write(Records(6, 8), 6, 8).code() == Code::kIOError);  // sticky
  CHECK_FALSE(o.writer->Sync().ok());
  (void)o.writer->Close();
  auto r = Replay(Env::Default(), dir.path(), RecoveryMode::kAbsolute);
  REQUIRE(r.status.ok());
  CHECK(r.records.size() == 5);
}

TEST_CASE("wal writer: a failed fdatasync is final") {
  TempDir dir;
  FailingEnv env;
  auto o = RecoverAndOpen(&env, dir.path(), 1 << 16);
  WriteRange(o.writer.get(), 1, 3);
  env.sync_errno = EIO;
  CHECK_FALSE(o.writer->Sync().ok());
  env.sync_errno = 0;
  CHECK_FALSE(o.writer->Sync().ok());  // never pretend success after a failure
  CHECK_FALSE(o.writer->Write(Records(4, 4), 4, 4).ok());
  CHECK_FALSE(o.writer->Close().ok());
}

// fsyncgate: after a failed fdatasync Linux has marked the pages clean, so a
// retry that succeeds proves nothing (FaultEnv loses those records at the
// next power cut). The writer makes one attempt and stays failed.
TEST_CASE("wal writer: a failed fdatasync is never retried") {
  TempDir dir;
  FaultEnv env(Env::Default());
  auto o = RecoverAndOpen(&env, dir.path(), 1 << 16);
  WriteRange(o.writer.get(), 1, 3);
  REQUIRE(o.writer->Sync().ok());
  WriteRange(o.writer.get(), 4, 6);
  env.FailNext(FaultEnv::Op::kSync, EIO, 1, "wal-");
  const uint64_t syncs = env.count(FaultEnv::Op::kSync);
  CHECK_FALSE(o.writer->Sync().ok());
  CHECK(env.count(FaultEnv::Op::kSync) == syncs + 1);
  CHECK_FALSE(o.writer->Sync().ok());
  CHECK(env.count(FaultEnv::Op::kSync) == syncs + 1);
}

TEST_CASE("wal writer: DropSegmentsUpTo removes covered segments, never the active one") {
  TempDir dir;
  auto o = RecoverAndOpen(Env::Default(), dir.path(), 1024);
  for (Lsn l = 1; l <= 80; ++l) WriteRange(o.writer.get(), l, l);
  auto names = SegmentNames(dir.path());
  REQUIRE(names.size() >= 4);
  Lsn second = *ParseSegmentFileName(names[1]), third = *ParseSegmentFileName(names[2]);
  int dropped = -1;
  REQUIRE(o.writer->DropSegmentsUpTo(second - 2, &dropped).ok());  // segment 1 not wholly covered
  CHECK(dropped == 0);
  REQUIRE(o.writer->DropSegmentsUpTo(third - 1, &dropped).ok());
  CHECK(dropped == 2);
  CHECK(SegmentNames(dir.path()).front() == names[2]);
  REQUIRE(o.writer->DropSegmentsUpTo(1000, &dropped).ok());
  CHECK(SegmentNames(dir.path()) == std::vector<std::string>{names.back()});
  CHECK(o.writer->stats().segments == 1);
  WriteRange(o.writer.get(), 81, 81);
  REQUIRE(o.writer->Close().ok());
  auto r = Replay(Env::Default(), dir.path(), RecoveryMode::kAbsolute, false, 1000);
  CHECK(r.status.ok());
}

TEST_CASE("wal writer: zero-fill ahead across several chunks keeps whole records followed by zeros") {
  TempDir dir;
  auto o = RecoverAndOpen(Env::Default(), dir.path(), 4 << 20);
  Lsn next = 1;
  std::string value(1000, 'z');
  while (o.writer->stats().bytes < (5u << 19)) {  // 2.5 MiB: past the first two zeroed chunks
    std::string buf;
    for (int i = 0; i < 50; ++i, ++next) AppendPutRecord(&buf, next, kFirstEpoch, Key(next), value);
    REQUIRE(o.writer->Write(buf, next - 50, next - 1).ok());
    REQUIRE(o.writer->Sync().ok());
    REQUIRE(o.writer->ZeroFillAhead().ok());  // the committer's idle moment
  }
  CHECK(o.writer->stats().zeroed_ahead > 0);
  CHECK(SegmentNames(dir.path()).size() == 1);
  std::string content = ReadAll(dir / SegmentFileName(1));
  uint64_t data_end = kSegmentHeaderBytes + o.writer->stats().bytes;
  CHECK(content.size() == (4u << 20));
  CHECK(content.find_first_not_of('\0', data_end) == std::string::npos);
  auto r = Replay(Env::Default(), dir.path(), RecoveryMode::kAbsolute);
  REQUIRE(r.status.ok());
  CHECK(r.records.size() == next - 1);
  REQUIRE(o.writer->Close().ok());
}

TEST_CASE("wal writer: Sync never zero-fills; ZeroFillAhead keeps zeros ahead of the writer") {
  TempDir dir;
  auto o = RecoverAndOpen(Env::Default(), dir.path(), 8 << 20);
  const uint64_t first_chunk = o.writer->stats().zeroed_ahead;  // written when the segment was created
  REQUIRE(first_chunk > 0);
  CHECK(o.writer->ZeroFillAhead().ok());  // plenty in hand: nothing to do
  CHECK(o.writer->stats().zeroed_ahead == first_chunk);
  Lsn next = 1;
  std::string value(1000, 'z');
  while (o.writer->stats().zeroed_ahead > 0) {  // use up the first chunk with commits alone
    std::string buf;
    for (int i = 0; i < 20; ++i, ++next) AppendPutRecord(&buf, next, kFirstEpoch, Key(next), value);
    REQUIRE(o.writer->Write(buf, next - 20, next - 1).ok());
    REQUIRE(o.writer->Sync().ok());
  }
  uint64_t before = o.writer->stats().bytes;
  REQUIRE(o.writer->ZeroFillAhead().ok());
  const uint64_t one_chunk = o.writer->stats().zeroed_ahead;
  CHECK(one_chunk > 0);
  CHECK(one_chunk < first_chunk);  // small chunks keep a commit that waits for one short
  for (int i = 0; i < 16; ++i) REQUIRE(o.writer->ZeroFillAhead().ok());
  CHECK(o.writer->stats().zeroed_ahead > one_chunk);  // refilled up to the low-water mark...
  CHECK(o.writer->stats().zeroed_ahead < first_chunk + one_chunk);  // ...and no further
  CHECK(o.writer->stats().bytes == before);
  std::string content = ReadAll(dir / SegmentFileName(1));
  CHECK(content.find_first_not_of('\0', kSegmentHeaderBytes + before) == std::string::npos);
  REQUIRE(o.writer->Close().ok());
  auto r = Replay(Env::Default(), dir.path(), RecoveryMode::kAbsolute);
  REQUIRE(r.status.ok());
  CHECK(r.records.size() == next - 1);
}

TEST_CASE("wal writer: a failed fdatasync of zero-filled space is final for later writes") {
  TempDir dir;
  FailingEnv env;
  auto o = RecoverAndOpen(&env, dir.path(), 8 << 20);
  Lsn next = 1;
  std::string value(1000, 'z');
  while (o.writer->stats().zeroed_ahead > 0) {
    std::string buf;
    AppendPutRecord(&buf, next, kFirstEpoch, Key(next), value);
    REQUIRE(o.writer->Write(buf, next, next).ok());
    ++next;
  }
  REQUIRE(o.writer->Sync().ok());
  env.sync_errno = EIO;
  Status z = o.writer->ZeroFillAhead();
  CHECK(z.code() == Code::kIOError);
  CHECK(z.message().find("zero-filled") != std::string::npos);
  env.sync_errno = 0;  // even once the device recovers, this file is not trusted again
  CHECK(o.writer->Write(Records(next, next), next, next).code() == Code::kIOError);
  CHECK(o.writer->Sync().code() == Code::kIOError);
}

TEST_CASE("wal writer: without fallocate an ENOSPC write is cut back by truncation") {
  TempDir dir;
  FailingEnv env;
  env.allocate_errno = EOPNOTSUPP;
  auto o = RecoverAndOpen(&env, dir.path(), 1 << 20);
  WriteRange(o.writer.get(), 1, 3);
  REQUIRE(o.writer->Sync().ok());
  env.write_errno = ENOSPC;
  CHECK(o.writer->Write(Records(4, 6), 4, 6).code() == Code::kNoSpace);
  CHECK(std::filesystem::file_size(dir / SegmentFileName(1)) == kSegmentHeaderBytes + Records(1, 3).size());
  REQUIRE(o.writer->Write(Records(4, 6), 4, 6).ok());
  CHECK(o.writer->Write("garbage", 7, 7).code() == Code::kInvalidArgument);
  REQUIRE(o.writer->Close().ok());
  auto r = Replay(Env::Default(), dir.path(), RecoveryMode::kAbsolute);
  REQUIRE(r.status.ok());
  CHECK(r.records.size() == 6);
  CHECK(r.ExactPrefix(1));
}

// Power cuts at random moments through FaultEnv: every record covered by a
// successful Sync survives, recovery yields an exact prefix, and the writer
// appends again afterwards.
#include "kvd/fault_env.h"

TEST_CASE("wal writer: power loss at random points keeps every synced record") {
  uint64_t seed = std::random_device{}();
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  for (int iter = 0; iter < 60; ++iter) {
    CAPTURE(iter);
    TempDir dir;
    FaultEnv::Options fo;
    fo.seed = rng();
    fo.torn_writes = (iter % 2) == 0;
    FaultEnv fenv(Env::Default(), fo);
    uint64_t seg_size = 1024 + rng() % 4096;
    Lsn durable = 0, next = 1, attempted = 0;
    {
      auto o = RecoverAndOpen(&fenv, dir.path(), seg_size);
      fenv.CutPowerAfter(rng() % 120);
      for (int g = 0; g < 40; ++g) {
        Lsn n = 1 + rng() % 6;
        attempted = next + n - 1;  // a write that failed with the power may still be partly there
        if (!o.writer->Write(Records(next, next + n - 1), next, next + n - 1).ok()) break;
        next += n;
        if (rng() % 2) {
          if (!o.writer->Sync().ok()) break;
          durable = next - 1;
        }
      }
    }
    fenv.PowerOn();
    fenv.SimulatePowerLoss();
    auto r = Replay(&fenv, dir.path());
    REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
    CHECK(r.ExactPrefix(1));
    CHECK(r.report.last_lsn >= durable);
    CHECK(r.report.last_lsn <= attempted);
    Lsn last = r.report.last_lsn;
    {
      auto o = RecoverAndOpen(&fenv, dir.path(), seg_size);
      REQUIRE(o.writer->Write(Records(last + 1, last + 3), last + 1, last + 3).ok());
      REQUIRE(o.writer->Close().ok());
    }
    auto again = Replay(&fenv, dir.path(), RecoveryMode::kAbsolute);
    REQUIRE_MESSAGE(again.status.ok(), again.status.ToString());
    CHECK(again.records.size() == last + 3);
    CHECK(again.ExactPrefix(1));
  }
}
