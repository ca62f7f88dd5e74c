// WAL record framing: exact bytes, round trips, payload decoding, names.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "kvd/crc32c.h"
#include "kvd/state.h"
#include "kvd/wal.h"
#include "storage/wal_coding.h"

using namespace kvd;

namespace {

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::vector<WalRecord> Parse(std::string_view buf) {
  std::vector<WalRecord> out;
  ForEachRecord(buf, [&](const WalRecord& r) {
    out.push_back(r);
    return true;
  });
  return out;
}

}  // namespace

TEST_CASE("wal record: the worked example of docs/wal_format.md, byte for byte") {
  std::string buf;
  AppendPutRecord(&buf, 1, "k", "v");
  CHECK(Hex(buf) == "9bce9c77" "06000000" "01" "0100000000000000" "01000000" "6b" "76");
  CHECK(Hex(wal::EncodeSegmentHeader(1)) ==
        "6b766457414c0d0a" "01000000" "00000000" "0100000000000000" "00000000" "4c55784d");
  // The masked CRC really covers type, lsn and payload.
  CHECK(Crc32cUnmask(wal::GetFixed32(buf.data())) == Crc32c(buf.data() + 8, buf.size() - 8));
}

TEST_CASE("wal record: PUT, DEL and BATCH round trip through ForEachRecord") {
  std::string big(70000, 'x');
  std::string bin("a\0b\xff", 4);
  std::vector<BatchOp> ops{{OpType::kPut, "k1", "v1"}, {OpType::kDel, "k2", ""}, {OpType::kPut, bin, ""}};
  std::string buf = "prefix";  // appends grow whatever the caller has
  buf.clear();
  AppendPutRecord(&buf, 7, "key", "value");
  AppendDelRecord(&buf, 8, bin);
  AppendBatchRecord(&buf, 9, ops);
  AppendPutRecord(&buf, 10, "", big);
  AppendPutRecord(&buf, 11, "empty", "");
  auto recs = Parse(buf);
  REQUIRE(recs.size() == 5);
  for (size_t i = 0; i < recs.size(); ++i) CHECK(recs[i].lsn == 7 + i);
  CHECK(recs[0].type == RecordType::kPut);
  CHECK(recs[1].type == RecordType::kDel);
  CHECK(recs[1].payload == bin);
  CHECK(recs[2].type == RecordType::kBatch);
  CHECK(recs[3].payload.size() == 4 + big.size());
  // Stopping early.
  int seen = 0;
  ForEachRecord(buf, [&](const WalRecord&) { return ++seen < 2; });
  CHECK(seen == 2);

  State st;
  bool existed = true;
  REQUIRE(ApplyRecord(&st, recs[0], &existed).ok());
  CHECK_FALSE(existed);
  CHECK(st.Get("key") == std::optional<std::string_view>("value"));
  REQUIRE(ApplyRecord(&st, recs[0], &existed).ok());
  CHECK(existed);
  st.Put(bin, "x");
  REQUIRE(ApplyRecord(&st, recs[1], &existed).ok());
  CHECK(existed);
  CHECK_FALSE(st.Get(bin).has_value());
  st.Put("k2", "old");
  REQUIRE(ApplyRecord(&st, recs[2], &existed).ok());
  CHECK_FALSE(existed);  // k1 was absent
  CHECK(st.Get("k1") == std::optional<std::string_view>("v1"));
  CHECK_FALSE(st.Get("k2").has_value());
  CHECK(st.Get(bin) == std::optional<std::string_view>(""));
  REQUIRE(ApplyRecord(&st, recs[3]).ok());
  CHECK(st.Get("")->size() == big.size());
  REQUIRE(ApplyRecord(&st, recs[4]).ok());
  CHECK(st.Get("empty") == std::optional<std::string_view>(""));
}

TEST_CASE("wal record: ApplyRecord refuses payloads that do not decode, applying nothing") {
  State st;
  std::string payload = "\x05\x00\x00\x00" "ab";  // key_len 5, only 2 bytes
  CHECK(ApplyRecord(&st, {RecordType::kPut, 1, payload}).IsCorruption());
  CHECK(ApplyRecord(&st, {RecordType::kPut, 1, "\x01\x00"}).IsCorruption());
  CHECK(ApplyRecord(&st, {static_cast<RecordType>(9), 1, ""}).IsCorruption());
  // A batch whose second op is cut: the first op must not be applied.
  std::string buf;
  std::vector<BatchOp> ops{{OpType::kPut, "a", "1"}, {OpType::kPut, "b", "2"}};
  AppendBatchRecord(&buf, 1, ops);
  std::string_view p = std::string_view(buf).substr(kRecordHeaderBytes);
  for (size_t cut = 0; cut < p.size(); ++cut) {
    CAPTURE(cut);
    CHECK(ApplyRecord(&st, {RecordType::kBatch, 1, p.substr(0, cut)}).IsCorruption());
  }
  std::string trailing(p);
  trailing += "z";
  CHECK(ApplyRecord(&st, {RecordType::kBatch, 1, trailing}).IsCorruption());
  std::string bad_op(p);
  bad_op[4] = 7;
  CHECK(ApplyRecord(&st, {RecordType::kBatch, 1, bad_op}).IsCorruption());
  CHECK(st.size() == 0);
  REQUIRE(ApplyRecord(&st, {RecordType::kBatch, 1, p}).ok());
  CHECK(st.size() == 2);
}

TEST_CASE("wal record: random records round trip") {
  uint64_t seed = std::random_device{}();
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  auto rand_str = [&](size_t max) {
    std::string s(rng() % (max + 1), '\0');
    for (char& c : s) c = static_cast<char>(rng());
    return s;
  };
  std::vector<std::pair<std::string, std::string>> want;
  std::string buf;
  for (Lsn lsn = 1; lsn <= 300; ++lsn) {
    auto k = rand_str(40), v = rand_str(300);
    AppendPutRecord(&buf, lsn, k, v);
    want.emplace_back(k, v);
  }
  auto recs = Parse(buf);
  REQUIRE(recs.size() == want.size());
  for (size_t i = 0; i < recs.size(); ++i) {
    State st;
    REQUIRE(ApplyRecord(&st, recs[i]).ok());
    CHECK(st.Get(want[i].first) == std::optional<std::string_view>(want[i].second));
  }
}

TEST_CASE("wal record: segment file names") {
  CHECK(SegmentFileName(1) == "wal-00000000000000000001.log");
  CHECK(SegmentFileName(UINT64_MAX) == "wal-18446744073709551615.log");
  for (Lsn l : {Lsn{0}, Lsn{1}, Lsn{42}, Lsn{1} << 40, UINT64_MAX}) CHECK(ParseSegmentFileName(SegmentFileName(l)) == l);
  CHECK_FALSE(ParseSegmentFileName("wal-00000000000000000001.log.broken"));
  CHECK_FALSE(ParseSegmentFileName("wal-00000000000000000001.log.tmp"));
  CHECK_FALSE(ParseSegmentFileName("wal-0000000000000000001.log"));
  CHECK_FALSE(ParseSegmentFileName("wal-0000000000000000000x.log"));
  CHECK_FALSE(ParseSegmentFileName("wal-99999999999999999999.log"));  // overflows u64
  CHECK_FALSE(ParseSegmentFileName("snap-00000000000000000001.log"));
  CHECK(SegmentFileName(9) < SegmentFileName(10));  // names sort by LSN
  CHECK(ToString(DamageKind::kTornTail) == "torn tail");
  CHECK(ToString(DamageKind::kCorruption) == "corruption");
  CHECK(ToString(DamageKind::kNone) == "none");
}
