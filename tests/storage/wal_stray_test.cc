// Recovery never takes a file it did not write for part of the log, never
// calls a shrunk segment a torn tail, and never reads a segment's
// preallocated zero region (docs/wal_format.md §6).
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>

#include "kvd/wal.h"
#include "storage/wal_test_util.h"

using namespace kvd;
using namespace kvd::test;

namespace {

Env* env() { return Env::Default(); }

constexpr RecoveryMode kAllModes[] = {RecoveryMode::kTolerateTail, RecoveryMode::kAbsolute,
                                      RecoveryMode::kPointInTime};

// Counts the bytes read through RandomAccessFile::ReadAt; can hide the
// file system's data ranges (then every file is data from end to end).
class CountingEnv final : public EnvWrapper {
 public:
  explicit CountingEnv(Env* base, bool hide_holes = false) : EnvWrapper(base), hide_holes_(hide_holes) {}
  uint64_t bytes_read() const { return bytes_read_; }

  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    KVD_ASSIGN_OR_RETURN(auto f, target()->NewRandomAccessFile(path));
    return std::unique_ptr<RandomAccessFile>(new File(std::move(f), this));
  }

 private:
  class File final : public RandomAccessFile {
   public:
    File(std::unique_ptr<RandomAccessFile> f, CountingEnv* env) : f_(std::move(f)), env_(env) {}
    Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> out) override {
      KVD_ASSIGN_OR_RETURN(size_t n, f_->ReadAt(offset, out));
      env_->bytes_read_ += n;
      return n;
    }
    Result<uint64_t> Size() override { return f_->Size(); }
    const std::string& path() const override { return f_->path(); }
    Result<std::vector<ByteRange>> DataRanges() override {
      return env_->hide_holes_ ? RandomAccessFile::DataRanges() : f_->DataRanges();
    }

   private:
    std::unique_ptr<RandomAccessFile> f_;
    CountingEnv* env_;
  };

  bool hide_holes_;
  std::atomic<uint64_t> bytes_read_{0};
};

Replayed ReplayWith(Env* e, const std::string& dir, RecoveryMode mode, bool dry_run, uint64_t segment_size,
                    Lsn start_lsn = 0) {
  Replayed out;
  WalRecoveryOptions o;
  o.dir = dir;
  o.mode = mode;
  o.dry_run = dry_run;
  o.start_lsn = start_lsn;
  o.segment_size = segment_size;
  o.apply = [&](const WalRecord& r) {
    out.records.push_back({r.type, r.lsn, {}});
    return Status::Ok();
  };
  out.status = RecoverWal(e, o, &out.report);
  return out;
}

// Refused in every mode, dry run or not, naming `stray`; nothing changes.
void CheckRefusedAsStray(const std::string& dir, const std::string& stray, Lsn start_lsn = 0) {
  const auto before = DirContents(dir);
  for (RecoveryMode m : kAllModes) {
    for (bool dry : {true, false}) {
      CAPTURE(ToString(m));
      CAPTURE(dry);
      auto r = ReplayWith(env(), dir, m, dry, 0, start_lsn);
      CHECK(r.status.IsCorruption());
      CHECK(r.status.message().find(stray) != std::string::npos);
      CHECK(r.status.message().find("move them out") != std::string::npos);
      REQUIRE(r.report.stray_files.size() == 1);
      CHECK(r.report.stray_files[0].path == stray);
      CHECK(r.report.set_aside.empty());
      CHECK_FALSE(r.report.truncated);
      CHECK(DirContents(dir) == before);
    }
  }
}

// A real writer's segment left as a kill -9 leaves it: preallocated to
// segment_size, records, then zeros (only the first MiB written as zeros).
void WriteUnclosed(const std::string& dir, Lsn n, uint64_t segment_size, std::string_view value = {}) {
  WalRecoveryReport empty;
  WalWriterOptions wo;
  wo.dir = dir;
  wo.segment_size = segment_size;
  auto w = WalWriter::Open(env(), wo, empty, 1);
  REQUIRE(w.has_value());
  for (Lsn l = 1; l <= n; ++l) {
    std::string buf;
    AppendPutRecord(&buf, l, kFirstEpoch, Key(l), value.empty() ? Value(l) : value);
    REQUIRE((*w)->Write(buf, l, l).ok());
  }
  REQUIRE((*w)->Sync().ok());
  // Destroyed without Close: not trimmed.
}

}  // namespace

TEST_CASE("stray WAL files: a junk file named like the first segment is refused by name in every mode") {
  TempDir dir;
  MakeSegment(dir.path(), 1, Records(1, 5));
  MakeSegment(dir.path(), 6, Records(6, 9));
  const std::string junk = dir / SegmentFileName(0);
  WriteAll(junk, "junk\n");  // the issue's `echo junk > wal-00000000000000000000.log`
  CheckRefusedAsStray(dir.path(), junk);
  auto r = ReplayWith(env(), dir.path(), RecoveryMode::kTolerateTail, true, 0);
  CHECK(r.report.stray_files[0].reason.find("lsn 0") != std::string::npos);
  CHECK(r.records.empty());  // nothing replayed before refusing

  std::filesystem::rename(junk, dir / "moved-away");
  r = ReplayWith(env(), dir.path(), RecoveryMode::kAbsolute, false, 0);
  REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
  CHECK(r.records.size() == 9);
  CHECK_FALSE(r.report.data_lost());
}

TEST_CASE("stray WAL files: garbage with a valid segment name, in the middle or last, is refused by name") {
  for (Lsn stray_lsn : {Lsn{3}, Lsn{20}}) {
    CAPTURE(stray_lsn);
    TempDir dir;
    MakeSegment(dir.path(), 1, Records(1, 5));
    MakeSegment(dir.path(), 6, Records(6, 9));
    const std::string stray = dir / SegmentFileName(stray_lsn);
    WriteAll(stray, std::string(4096, 'x'));  // header-sized and more: not a torn creation
    CheckRefusedAsStray(dir.path(), stray);
    auto r = ReplayWith(env(), dir.path(), RecoveryMode::kPointInTime, true, 0);
    CHECK(r.report.stray_files[0].reason.find("bad segment magic") != std::string::npos);
  }
}

TEST_CASE("stray WAL files: a header naming another LSN than the file name") {
  TempDir dir;
  MakeSegment(dir.path(), 1, Records(1, 5));
  const std::string stray = dir / SegmentFileName(6);
  WriteAll(stray, wal::EncodeSegmentHeader(7) + Records(7, 8));
  CheckRefusedAsStray(dir.path(), stray);
}

TEST_CASE("stray WAL files: a name like a segment's that kvd does not write") {
  TempDir dir;
  MakeSegment(dir.path(), 1, Records(1, 5));
  const std::string stray = dir / "wal-6.log";
  WriteAll(stray, wal::EncodeSegmentHeader(6) + Records(6, 8));
  CheckRefusedAsStray(dir.path(), stray);
  // Other names are not the WAL's business: set-aside files, notes.
  TempDir dir2;
  MakeSegment(dir2.path(), 1, Records(1, 5));
  WriteAll(dir2 / (SegmentFileName(1) + ".broken"), "old evidence");
  WriteAll(dir2 / "README", "notes");
  auto r = ReplayWith(env(), dir2.path(), RecoveryMode::kAbsolute, false, 0);
  CHECK(r.status.ok());
  CHECK(r.records.size() == 5);
}

TEST_CASE("stray WAL files: a valid segment that does not continue the log is never its head or tail") {
  SUBCASE("a gap after the log") {
    TempDir dir;
    MakeSegment(dir.path(), 1, Records(1, 5));
    MakeSegment(dir.path(), 6, Records(6, 9));
    const std::string stray = dir / SegmentFileName(100);
    MakeSegment(dir.path(), 100, Records(100, 102));  // another instance's segment
    CheckRefusedAsStray(dir.path(), stray);
    auto r = ReplayWith(env(), dir.path(), RecoveryMode::kPointInTime, true, 0);
    CHECK(r.report.stray_files[0].reason.find("lsn gap 9 -> 100") != std::string::npos);
    // A snapshot covering the gap makes it the log's continuation.
    r = ReplayWith(env(), dir.path(), RecoveryMode::kAbsolute, false, 0, /*start_lsn=*/99);
    CHECK(r.status.ok());
    CHECK(r.report.stray_files.empty());
  }
  SUBCASE("overlapping the log") {
    TempDir dir;
    MakeSegment(dir.path(), 1, Records(1, 10));
    MakeSegment(dir.path(), 11, Records(11, 12));
    const std::string stray = dir / SegmentFileName(5);
    MakeSegment(dir.path(), 5, Records(5, 7));
    CheckRefusedAsStray(dir.path(), stray);
    auto r = ReplayWith(env(), dir.path(), RecoveryMode::kPointInTime, true, 0);
    CHECK(r.report.stray_files[0].reason.find("reordering") != std::string::npos);
  }
}

TEST_CASE("short segments: a preallocated segment cut inside a record is corruption, not a torn tail") {
  constexpr uint64_t kSegment = 1 << 16;
  const std::string body = Records(1, 8);
  const size_t cut = body.size() - 5;  // inside record 8
  const std::string header = wal::EncodeSegmentHeader(1, wal::kFormatVersion, wal::kSegmentFlagPreallocated);
  TempDir dir;
  WriteAll(dir / SegmentFileName(1), header + body.substr(0, cut));  // far shorter than kSegment

  // Without the header's preallocated flag (a file system without fallocate
  // grows segments by writing) it is a torn tail.
  TempDir grown;
  MakeSegment(grown.path(), 1, body.substr(0, cut));
  auto r = ReplayWith(env(), grown.path(), RecoveryMode::kTolerateTail, true, kSegment);
  REQUIRE(r.status.ok());
  CHECK(r.report.segments[0].damage == DamageKind::kTornTail);

  for (RecoveryMode m : {RecoveryMode::kTolerateTail, RecoveryMode::kAbsolute}) {
    r = ReplayWith(env(), dir.path(), m, false, kSegment);
    CHECK(r.status.IsCorruption());
    CHECK(r.report.segments[0].damage == DamageKind::kCorruption);
    CHECK(r.status.message().find("does not shrink a preallocated segment") != std::string::npos);
    CHECK(r.status.message().find("point_in_time") != std::string::npos);
  }
  r = ReplayWith(env(), dir.path(), RecoveryMode::kPointInTime, false, kSegment);
  REQUIRE(r.status.ok());
  CHECK(r.records.size() == 7);
  const size_t record8 = body.size() - Records(8, 8).size();
  CHECK(ReadAll(r.report.broken_file) == body.substr(record8, cut - record8));

  // Torn inside a record but still its preallocated size: a torn tail.
  TempDir full;
  std::string content = header + body.substr(0, cut);
  content.resize(kSegment, '\0');
  WriteAll(full / SegmentFileName(1), content);
  r = ReplayWith(env(), full.path(), RecoveryMode::kTolerateTail, false, kSegment);
  REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
  CHECK(r.report.segments[0].damage == DamageKind::kTornTail);
  CHECK(r.records.size() == 7);

  // A short segment that ends on a record boundary is a closed (trimmed) one.
  TempDir closed;
  WriteAll(closed / SegmentFileName(1), header + body);
  r = ReplayWith(env(), closed.path(), RecoveryMode::kAbsolute, false, kSegment);
  CHECK(r.status.ok());
  CHECK(r.records.size() == 8);
}

TEST_CASE("zero region: recovery reads the records, not the preallocated segment") {
  constexpr uint64_t kSegment = 64ull << 20;
  TempDir dir;
  WriteUnclosed(dir.path(), 1, kSegment);
  const std::string seg = dir / SegmentFileName(1);
  REQUIRE(std::filesystem::file_size(seg) == kSegment);
  uint32_t flags = 0;
  {
    Lsn lsn = 0;
    uint32_t version = 0;
    bool verified = false;
    std::string head(kSegmentHeaderBytes, '\0');  // not ReadAll: cached zero pages would count as data
    auto f = env()->NewRandomAccessFile(seg);
    REQUIRE(f.has_value());
    REQUIRE((*f)->ReadAt(0, {reinterpret_cast<std::byte*>(head.data()), head.size()}).has_value());
    REQUIRE(wal::CheckSegmentHeader(head, &lsn, &version, &verified, &flags).empty());
  }
  CHECK(flags == wal::kSegmentFlagPreallocated);  // fallocate worked here

  CountingEnv counting(env());
  auto r = ReplayWith(&counting, dir.path(), RecoveryMode::kAbsolute, false, kSegment);
  REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
  CHECK(r.records.size() == 1);
  CHECK(r.report.segments[0].file_bytes == kSegment);
  // The writer's first MiB of written zeros, once backwards and once forwards at most.
  CHECK(counting.bytes_read() < (4u << 20));
  CHECK(r.report.bytes_read + kSegmentHeaderBytes == counting.bytes_read());  // + the inventory's header read

  // An Env that cannot tell holes from data still recovers the same, reading it all.
  CountingEnv blind(env(), /*hide_holes=*/true);
  r = ReplayWith(&blind, dir.path(), RecoveryMode::kAbsolute, false, kSegment);
  REQUIRE(r.status.ok());
  CHECK(r.records.size() == 1);
  CHECK(blind.bytes_read() >= kSegment);

  // A page far into the zero region that holds data (writeback kept a later
  // page, lost an earlier one) is still found: damage, never ignored.
  {
    auto f = env()->NewWritableFile(seg, OpenMode::kExisting);
    REQUIRE(f.has_value());
    REQUIRE((*f)->WriteAt(40ull << 20, AsBytes(Records(5, 6))).ok());
    REQUIRE((*f)->Close().ok());
  }
  r = ReplayWith(env(), dir.path(), RecoveryMode::kAbsolute, true, kSegment);
  CHECK(r.status.IsCorruption());
  CHECK(r.report.segments[0].damage_reason.find("zero record header followed by data") != std::string::npos);
  CHECK(r.report.segments[0].dropped_records == 2);
}

TEST_CASE("zero region: a record whose value ends in zeros is whole, though the read stops at its last non-zero byte") {
  constexpr uint64_t kSegment = 16ull << 20;
  TempDir dir;
  const std::string zeros(3 << 20, '\0');  // past the writer's first MiB of written zeros
  WriteUnclosed(dir.path(), 3, kSegment, zeros);
  CountingEnv counting(env());
  auto r = ReplayWith(&counting, dir.path(), RecoveryMode::kAbsolute, false, kSegment);
  REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
  CHECK(r.records.size() == 3);
  CHECK(r.report.segments[0].damage == DamageKind::kNone);
}
