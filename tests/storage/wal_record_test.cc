// WAL record framing: exact bytes, round trips, payload decoding, names.
#include <doctest/doctest.h>

#include <algorithm>
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

TEST_CASE("wal record: the worked example of docs/wal_format.md, byte for byte (format v2)") {
  std::string buf;
  AppendPutRecord(&buf, 1, 1, "k", "v");
  CHECK(Hex(buf) == "583a16a9" "06000000" "01" "00" "0100000000000000" "0100000000000000" "01000000" "6b" "76");
  CHECK(Hex(wal::EncodeSegmentHeader(1)) ==
        "6b766457414c0d0a" "02000000" "00000000" "0100000000000000" "00000000" "d4c4fe3d");
  // The masked CRC really covers type, flags, lsn, epoch and payload.
  CHECK(Crc32cUnmask(wal::GetFixed32(buf.data())) == Crc32c(buf.data() + 8, buf.size() - 8));
  // The epoch is under the CRC: another epoch, another CRC.
  std::string e2;
  AppendPutRecord(&e2, 1, 2, "k", "v");
  CHECK(e2.substr(4) != buf.substr(4));
  CHECK(e2.substr(0, 4) != buf.substr(0, 4));
}

TEST_CASE("wal record: the v1 encoder kept for upgrades still writes the v1 worked example") {
  std::string buf;
  wal::AppendRecordV1(&buf, RecordType::kPut, 1, std::string_view("\x01\x00\x00\x00kv", 6));
  CHECK(Hex(buf) == "9bce9c77" "06000000" "01" "0100000000000000" "01000000" "6b" "76");
  CHECK(Hex(wal::EncodeSegmentHeader(1, wal::kFormatVersionV1)) ==
        "6b766457414c0d0a" "01000000" "00000000" "0100000000000000" "00000000" "4c55784d");
}

TEST_CASE("wal record: ForEachVerifiedRecord accepts exactly what the writer made, refuses any flip or cut") {
  std::string buf;
  AppendPutRecord(&buf, 5, 3, "key", "value");
  AppendDelRecord(&buf, 6, 3, "key");
  AppendBatchRecord(&buf, 7, 4, std::vector<BatchOp>{{OpType::kPut, "a", "1"}});
  std::vector<std::pair<Lsn, Epoch>> seen;
  REQUIRE(ForEachVerifiedRecord(buf, [&](const WalRecord& r) {
            seen.emplace_back(r.lsn, r.epoch);
            CHECK(r.encoded.size() == kRecordHeaderBytes + r.payload.size());
            return Status::Ok();
          }).ok());
  CHECK(seen == std::vector<std::pair<Lsn, Epoch>>{{5, 3}, {6, 3}, {7, 4}});
  for (size_t i = 0; i < buf.size(); ++i) {
    CAPTURE(i);
    std::string bad = buf;
    bad[i] ^= 0x01;
    CHECK(ForEachVerifiedRecord(bad, [](const WalRecord&) { return Status::Ok(); }).IsCorruption());
  }
  // A cut is refused unless it falls between records.
  std::vector<size_t> ends;
  ForEachRecord(buf, [&](const WalRecord& r) {
    ends.push_back((ends.empty() ? 0 : ends.back()) + r.encoded.size());
    return true;
  });
  REQUIRE(ends.size() == 3);
  for (size_t n = 1; n < buf.size(); ++n) {
    CAPTURE(n);
    Status s = ForEachVerifiedRecord(std::string_view(buf).substr(0, n), [](const WalRecord&) { return Status::Ok(); });
    bool whole = std::find(ends.begin(), ends.end(), n) != ends.end();
    CHECK(s.ok() == whole);
  }
}

namespace {
// A v2 record with an arbitrary type and flags byte, CRC fixed up.
std::string RawV2(uint8_t type, uint8_t flags, Lsn lsn, Epoch epoch, std::string_view payload) {
  std::string buf;
  AppendDelRecord(&buf, lsn, epoch, payload);
  buf[8] = static_cast<char>(type);
  buf[9] = static_cast<char>(flags);
  wal::PutFixed32(buf.data(), wal::RecordCrc(buf.data(), kRecordHeaderBytes, static_cast<uint32_t>(payload.size())));
  return buf;
}
Status Verify(std::string_view buf) {
  return ForEachVerifiedRecord(buf, [](const WalRecord&) { return Status::Ok(); });
}
}  // namespace

TEST_CASE("wal record: unknown types and flags: must-understand ones are refused, the others skipped") {
  CHECK(Verify(RawV2(0x05, 0, 1, 1, "x")).IsCorruption());  // an unknown must-understand type (4 is DEL_RANGE)
  CHECK(Verify(RawV2(0x7f, 0, 1, 1, "x")).IsCorruption());
  CHECK(Verify(RawV2(0x00, 0, 1, 1, "x")).IsCorruption());
  CHECK(Verify(RawV2(0x02, 0x01, 1, 1, "x")).IsCorruption());  // a must-understand flag bit
  CHECK(Verify(RawV2(0x02, 0x08, 1, 1, "x")).IsCorruption());
  CHECK(Verify(RawV2(0x02, 0, 1, 0, "x")).IsCorruption());  // epoch 0 is not an epoch
  CHECK(Verify(RawV2(0x02, 0x10, 1, 1, "x")).ok());  // an ignorable flag bit
  CHECK(Verify(RawV2(0x80, 0xf0, 1, 1, "whatever")).ok());  // a skippable type
  // A skippable record changes nothing when applied.
  State st;
  st.Put("whatever", "kept");
  std::string skip = RawV2(0x9a, 0, 1, 1, "whatever");
  Status applied = ForEachVerifiedRecord(skip, [&](const WalRecord& r) { return ApplyRecord(&st, r); });
  CHECK(applied.ok());
  CHECK(st.Get("whatever") == std::optional<std::string_view>("kept"));
  CHECK(CheckRecordPayload({static_cast<RecordType>(0x9a), 1, "x"}).ok());
  CHECK(CheckRecordPayload({static_cast<RecordType>(0x05), 1, "x"}).IsCorruption());
  CHECK(CheckRecordPayload({RecordType::kPut, 1, "\x05\x00\x00\x00" "ab"}).IsCorruption());
}

TEST_CASE("wal record: PUT, DEL and BATCH round trip through ForEachRecord") {
  std::string big(70000, 'x');
  std::string bin("a\0b\xff", 4);
  std::vector<BatchOp> ops{{OpType::kPut, "k1", "v1"}, {OpType::kDel, "k2", ""}, {OpType::kPut, bin, ""}};
  std::string buf = "prefix";  // appends grow whatever the caller has
  buf.clear();
  AppendPutRecord(&buf, 7, kFirstEpoch, "key", "value");
  AppendDelRecord(&buf, 8, kFirstEpoch, bin);
  AppendBatchRecord(&buf, 9, kFirstEpoch, ops);
  AppendPutRecord(&buf, 10, kFirstEpoch, "", big);
  AppendPutRecord(&buf, 11, kFirstEpoch, "empty", "");
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
  AppendBatchRecord(&buf, 1, kFirstEpoch, ops);
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
    AppendPutRecord(&buf, lsn, kFirstEpoch, k, v);
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
