// SalvageWalFiles: every record that verifies, from set-aside WAL files of
// both kinds (bytes cut from a segment, whole segments), v1 and v2 framing.
#include <doctest/doctest.h>

#include "kvd/salvage.h"
#include "kvd/wal.h"
#include "storage/wal_coding.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::Contents;
using testing::TempDir;

void WriteFile(const std::string& path, const std::string& data) {
  REQUIRE(WriteFileAtomic(Env::Default(), path, AsBytes(data)).ok());
}

TEST_CASE("salvage: records after garbage, whole segments, duplicates, conflicts, v1 bytes") {
  TempDir dir;
  // Bytes cut from a segment: a damaged record, then good ones, then zeros.
  std::string cut = "\x07garbage-bytes-of-a-torn-record";
  AppendPutRecord(&cut, 10, 1, "a", "1");
  AppendDelRecord(&cut, 11, 1, "gone");
  AppendDelRangeRecord(&cut, 12, 1, KeyRange{true, "tmp:", ""});
  cut += std::string(40, '\0');
  // A whole segment set aside, overlapping: LSN 12 again (same bytes), 13 new,
  // and LSN 11 with different contents (a conflict: the first file's wins).
  std::string seg = wal::EncodeSegmentHeader(11);
  AppendPutRecord(&seg, 11, 1, "gone", "other");
  AppendDelRangeRecord(&seg, 12, 1, KeyRange{true, "tmp:", ""});
  AppendPutRecord(&seg, 13, 1, "b", "2");
  AppendPutRecord(&seg, 16, 1, "tmp:late", "kept");  // after the range delete: stays
  // Bytes cut from a v1 segment (an older kvd).
  std::string v1;
  wal::AppendRecordV1(&v1, RecordType::kPut, 20, std::string("\x01\0\0\0c3", 6));
  const std::string f1 = dir.Sub("wal-1.log.broken"), f2 = dir.Sub("wal-11.log.broken.1"), f3 = dir.Sub("v1.broken");
  WriteFile(f1, cut);
  WriteFile(f2, seg);
  WriteFile(f3, v1);

  State st;
  st.Put("stale", "x");  // cleared first
  SalvageReport r;
  REQUIRE(SalvageWalFiles(Env::Default(), {f1, f2, f3}, &st, &r).ok());
  CHECK(Contents(st) == std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"tmp:late", "kept"}});
  CHECK(r.records == 6);  // LSNs 10, 11, 12, 13, 16, 20: each once
  REQUIRE(r.files.size() == 3);
  CHECK(r.files[0].records == 3);
  CHECK_FALSE(r.files[0].segment_header);
  REQUIRE(r.files[0].unreadable.size() == 1);
  CHECK(r.files[0].unreadable[0] == std::make_pair(uint64_t{0}, uint64_t{31}));  // zeros are not counted
  CHECK(r.files[1].segment_header);
  CHECK(r.files[1].records == 4);
  CHECK(r.files[1].unreadable_bytes == 0);
  CHECK(r.files[2].records == 1);
  CHECK(r.duplicates == 1);
  CHECK(r.conflicts == 1);
  CHECK(r.first_lsn == 10);
  CHECK(r.last_lsn == 20);
  CHECK(r.missing_lsns == 5);  // 14, 15, 17, 18, 19
  CHECK(r.delete_records == 2);     // the DEL (kept from the first file) and the DEL_RANGE
  CHECK(r.keys == 4);
}

TEST_CASE("salvage: a file that cannot be read is an error; an empty one salvages nothing") {
  TempDir dir;
  State st;
  SalvageReport r;
  CHECK(SalvageWalFiles(Env::Default(), {dir.Sub("missing")}, &st, &r).code() == Code::kInvalidArgument);
  WriteFile(dir.Sub("empty"), "");
  REQUIRE(SalvageWalFiles(Env::Default(), {dir.Sub("empty")}, &st, &r).ok());
  CHECK(r.records == 0);
  CHECK(r.last_lsn == 0);
}

}  // namespace
}  // namespace kvd
