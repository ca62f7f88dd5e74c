// Range delete (DEL_RANGE, docs/wal_format.md §3.4): one record, one LSN,
// the same state after replay, all or nothing across a crash.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "kvd/fault_env.h"
#include "kvd/wal.h"
#include "storage/wal_coding.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::BasicOptions;
using testing::Contents;
using testing::MustOpen;
using testing::RecordingSink;
using testing::TempDir;

struct RangeSink : RecordingSink {
  std::vector<std::pair<Lsn, uint64_t>> ranges;
  void OnDeleteRangeDone(Lsn lsn, const Status& status, uint64_t removed) override {
    CHECK(status.ok());
    ranges.emplace_back(lsn, removed);
  }
};

void PutAll(Engine* e, std::initializer_list<const char*> keys) {
  for (const char* k : keys) REQUIRE(e->Put(k, std::string("v-") + k, false).has_value());
}

// The WAL segment file of a single-segment log.
std::string OnlySegment(const std::string& wal_dir) {
  std::string found;
  for (const auto& ent : std::filesystem::directory_iterator(wal_dir)) {
    if (ParseSegmentFileName(ent.path().filename().string())) {
      REQUIRE(found.empty());
      found = ent.path().string();
    }
  }
  REQUIRE(!found.empty());
  return found;
}

TEST_CASE("range delete: prefix and half-open range, counted when applied (sync: after the fdatasync)") {
  TempDir dir;
  auto e = MustOpen(BasicOptions(Env::Default(), dir, DurabilityMode::kSync));
  RangeSink sink;
  PutAll(e.get(), {"a", "p", "p:1", "p:2", "p;", "q", "r", "s"});
  REQUIRE(e->WaitDurable(e->last_lsn(), &sink).ok());

  auto t = e->DeleteRange(KeyRange{true, "p:", ""}, false);
  REQUIRE(t.has_value());
  CHECK_FALSE(t->done);  // sync mode: the count comes with the completion
  CHECK(e->state().Get("p:1").has_value());  // not applied before it is durable
  REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
  REQUIRE(sink.ranges.size() == 1);
  CHECK(sink.ranges[0] == std::make_pair(t->lsn, uint64_t{2}));

  auto t2 = e->DeleteRange(KeyRange{false, "p", "r"}, false);  // [p, r): p, p;, q; not r
  REQUIRE(t2.has_value());
  REQUIRE(e->WaitDurable(t2->lsn, &sink).ok());
  REQUIRE(sink.ranges.size() == 2);
  CHECK(sink.ranges[1].second == 3);
  CHECK(Contents(e->state()) == std::map<std::string, std::string>{{"a", "v-a"}, {"r", "v-r"}, {"s", "v-s"}});
  CHECK(t2->lsn == t->lsn + 1);  // one record, one LSN each

  // An empty end is unbounded; a range with nothing in it still takes its LSN.
  auto t3 = e->DeleteRange(KeyRange{false, "zz", ""}, false);
  REQUIRE(t3.has_value());
  REQUIRE(e->WaitDurable(t3->lsn, &sink).ok());
  CHECK(sink.ranges.back() == std::make_pair(t3->lsn, uint64_t{0}));
  CHECK(e->DeleteRange(KeyRange{true, "p", "x"}, false).error().code() == Code::kInvalidArgument);
}

TEST_CASE("range delete: none mode answers at once with the count") {
  TempDir dir;
  auto e = MustOpen(BasicOptions(Env::Default(), dir, DurabilityMode::kNone));
  PutAll(e.get(), {"k1", "k2", "k3", "l"});
  auto t = e->DeleteRange(KeyRange{true, "k", ""}, false);
  REQUIRE(t.has_value());
  CHECK(t->done);
  CHECK(t->removed == 3);
  CHECK(e->state().size() == 1);
}

TEST_CASE("range delete: replay after a crash rebuilds the same state and digest") {
  TempDir dir;
  FaultEnv env(Env::Default(), FaultEnv::Options{});
  auto o = BasicOptions(&env, dir, DurabilityMode::kSync);
  std::map<std::string, std::string> want;
  uint64_t digest = 0;
  Lsn last = 0;
  {
    auto e = MustOpen(o);
    RangeSink sink;
    for (int i = 0; i < 200; ++i) REQUIRE(e->Put("user:" + std::to_string(i), std::to_string(i), false).has_value());
    REQUIRE(e->Put("other", "x", false).has_value());
    auto t = e->DeleteRange(KeyRange{false, "user:100", "user:150"}, false);
    REQUIRE(t.has_value());
    REQUIRE(e->Put("user:120", "back", false).has_value());  // after the range delete: survives it
    REQUIRE(e->WaitDurable(e->last_lsn(), &sink).ok());
    REQUIRE(sink.ranges.size() == 1);
    CHECK(sink.ranges[0].second == 55);  // [user:100, user:150) in byte order: user:100..149 and user:11..15
    want = Contents(e->state());
    digest = e->state().Digest();
    last = e->last_lsn();
    env.CutPower();  // a crash: no Close, nothing trimmed
  }
  env.PowerOn();
  RecoveryReport rep;
  auto e = MustOpen(o, &rep);
  CHECK(Contents(e->state()) == want);
  CHECK(rep.digest == digest);
  CHECK(rep.last_lsn == last);
  CHECK(rep.last_lsn == 203);  // 201 PUTs, one DEL_RANGE, one PUT: the range is ONE record
  CHECK(want.count("user:120") == 1);
  CHECK(want.count("user:121") == 0);
  CHECK(want.count("user:99") == 1);
  CHECK(want.count("user:150") == 1);
}

TEST_CASE("range delete: all or nothing across a crash that tears its record") {
  for (bool whole : {false, true}) {
    CAPTURE(whole);
    TempDir dir;
    FaultEnv env(Env::Default(), FaultEnv::Options{});
    auto o = BasicOptions(&env, dir, DurabilityMode::kSync);
    {
      auto e = MustOpen(o);
      RangeSink sink;
      for (int i = 0; i < 50; ++i) REQUIRE(e->Put("k" + std::to_string(i), "v", false).has_value());
      auto t = e->DeleteRange(KeyRange{true, "k", ""}, false);
      REQUIRE(t.has_value());
      REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
      env.CutPower();  // a crash: the segment keeps its preallocated size
    }
    env.PowerOn();
    // Where the DEL_RANGE record lies in the segment.
    const std::string segment = OnlySegment(o.wal_dir);
    std::string data;
    {
      std::ifstream in(segment, std::ios::binary);
      data.assign(std::istreambuf_iterator<char>(in), {});
    }
    size_t off = kSegmentHeaderBytes, len = 0;
    ForEachRecord(std::string_view(data).substr(kSegmentHeaderBytes), [&](const WalRecord& r) {
      if (r.type == RecordType::kDelRange) {
        len = r.encoded.size();
        return false;
      }
      off += r.encoded.size();
      return true;
    });
    REQUIRE(len > kRecordHeaderBytes);
    if (!whole) {
      // The crash tore the record: its second half never reached the disk.
      std::fstream f(segment, std::ios::binary | std::ios::in | std::ios::out);
      f.seekp(static_cast<std::streamoff>(off + len / 2));
      const std::string zeros(len - len / 2, '\0');
      f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
    }
    RecoveryReport rep;
    auto e = MustOpen(o, &rep);
    CHECK(e->state().size() == (whole ? 0u : 50u));  // never a part of the range
    CHECK(rep.last_lsn == (whole ? 51u : 50u));
    CHECK(rep.wal.truncated == !whole);
  }
}

TEST_CASE("range delete: the record round trips and a v1 segment may not hold one") {
  std::string buf;
  AppendDelRangeRecord(&buf, 7, 3, KeyRange{false, "a", std::string_view("z\0", 2)});
  AppendDelRangeRecord(&buf, 8, 3, KeyRange{true, "pre", ""});
  std::vector<KeyRange> seen;
  std::vector<std::string> owned;
  Status s = ForEachVerifiedRecord(buf, [&](const WalRecord& r) {
    CHECK(r.type == RecordType::kDelRange);
    auto k = DecodeDelRangePayload(r);
    REQUIRE(k.has_value());
    seen.push_back(*k);
    return Status::Ok();
  });
  REQUIRE(s.ok());
  REQUIRE(seen.size() == 2);
  CHECK_FALSE(seen[0].prefix);
  CHECK(seen[0].a == "a");
  CHECK(seen[0].b == std::string_view("z\0", 2));
  CHECK(seen[1].prefix);
  CHECK(seen[1].a == "pre");
  // A prefix with an end, a bad kind, trailing bytes: corruption.
  CHECK(CheckRecordPayload({RecordType::kDelRange, 1, std::string_view("\x00\x01\x00\x00\x00" "a\x01\x00\x00\x00" "b", 11)})
            .IsCorruption());
  CHECK(CheckRecordPayload({RecordType::kDelRange, 1, std::string_view("\x02\x00\x00\x00\x00\x00\x00\x00\x00", 9)})
            .IsCorruption());
  CHECK(CheckRecordPayload({RecordType::kDelRange, 1, std::string_view("\x00\x00\x00\x00\x00\x00\x00\x00\x00x", 10)})
            .IsCorruption());
  // v1 knew no range delete: type 4 there is an unknown type.
  wal::RecordHeader h{0, 0, 4, 0, 1, 1};
  CHECK_FALSE(wal::CheckTypeAndFlags(h, wal::kFormatVersionV1).empty());
  CHECK(wal::CheckTypeAndFlags(h, wal::kFormatVersion).empty());
}

}  // namespace
}  // namespace kvd
