// The retention floor with a fake consumer that still needs old records:
// SnapshotInstalled keeps the WAL segments holding LSNs >= floor, reports
// what it kept, and lets them go once the floor rises past them.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>

#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::BasicOptions;
using testing::Contents;
using testing::MustOpen;
using testing::NotifyCounter;
using testing::RecordingSink;
using testing::TempDir;

// First LSNs of the segment files, ascending.
std::vector<Lsn> SegmentFirsts(const std::string& dir) {
  auto names = Env::Default()->ListDir(dir);
  REQUIRE(names.has_value());
  std::vector<Lsn> out;
  for (const std::string& n : *names) {
    if (auto lsn = ParseSegmentFileName(n)) out.push_back(*lsn);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Sizes of the segments that `covered` covers entirely, except the last (active) one.
uint64_t CoveredBytes(const std::string& dir, Lsn covered) {
  const std::vector<Lsn> firsts = SegmentFirsts(dir);
  uint64_t bytes = 0;
  for (size_t i = 0; i + 1 < firsts.size() && firsts[i + 1] - 1 <= covered; ++i) {
    auto size = Env::Default()->FileSize(JoinPath(dir, SegmentFileName(firsts[i])));
    REQUIRE(size.has_value());
    bytes += *size;
  }
  return bytes;
}

// Polls on every notify until done() holds, for at most 30 s. One notify is
// no proof that the drop ran: a notify of an earlier commit may still arrive
// after the wait began.
template <typename Done>
bool PollUntil(Engine* e, NotifyCounter& notes, RecordingSink* sink, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    const uint64_t seen = notes.count();
    e->Poll(sink);
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    (void)notes.WaitPastFor(seen, std::chrono::seconds(1));
  }
}

TEST_CASE("a retention floor keeps the segments a consumer needs when a snapshot covers them") {
  TempDir dir;
  NotifyCounter notes;
  auto o = BasicOptions(Env::Default(), dir, DurabilityMode::kNone);
  o.segment_size = 8192;
  o.notify = notes.Hook();
  std::map<std::string, std::string> model;
  Lsn snap_lsn = 0;
  {
    auto e = MustOpen(o);
    RecordingSink sink;
    for (int i = 0; i < 1500; ++i) {
      std::string key = "key" + std::to_string(i % 300), value = "value" + std::to_string(i);
      REQUIRE(e->Put(key, value, false).has_value());
      model[key] = value;
    }
    REQUIRE(e->WaitDurable(e->last_lsn(), &sink).ok());
    const std::vector<Lsn> before = SegmentFirsts(o.wal_dir);
    REQUIRE(before.size() > 6);
    // The consumer still needs everything from the middle of the fourth segment on.
    const Lsn floor = before[3] + 2;
    e->SetRetentionFloor(floor);

    snap_lsn = e->SnapshotLsn();
    REQUIRE(WriteSnapshot(Env::Default(), o.snapshot_dir, e->state(), snap_lsn).has_value());
    REQUIRE(e->SnapshotInstalled(snap_lsn).ok());
    // The drop runs on the committer thread; its result arrives through Poll.
    REQUIRE(PollUntil(e.get(), notes, &sink, [&] {
      const auto now = SegmentFirsts(o.wal_dir);
      return !now.empty() && now.front() == before[3] && e->stats().retained_wal_segments > 0;
    }));

    const std::vector<Lsn> after = SegmentFirsts(o.wal_dir);
    REQUIRE_FALSE(after.empty());
    CHECK(after.front() == before[3]);  // the segment holding the floor, and all after it
    CHECK(after.size() == before.size() - 3);
    EngineStats st = e->stats();
    CHECK(st.retention_floor == floor);
    CHECK(st.retained_wal_segments == after.size() - 1);  // all but the active one
    CHECK(st.retained_wal_bytes > 0);
    CHECK(st.retained_wal_bytes == CoveredBytes(o.wal_dir, snap_lsn));

    // A step within the segment holding the floor releases nothing.
    e->SetRetentionFloor(floor + 1);
    e->Poll(&sink);
    CHECK(SegmentFirsts(o.wal_dir) == after);
    CHECK(e->stats().retained_wal_segments == after.size() - 1);

    // The consumer caught up: what it held goes.
    e->SetRetentionFloor(snap_lsn + 1);
    REQUIRE(PollUntil(e.get(), notes, &sink, [&] {
      return SegmentFirsts(o.wal_dir).size() == 1 && e->stats().retained_wal_segments == 0;
    }));
    CHECK(SegmentFirsts(o.wal_dir).size() == 1);
    st = e->stats();
    CHECK(st.retained_wal_segments == 0);
    CHECK(st.retained_wal_bytes == 0);
    REQUIRE(e->Close(&sink).ok());
  }
  RecoveryReport rep;
  auto e = MustOpen(o, &rep);
  CHECK(rep.snapshot_lsn == snap_lsn);
  CHECK(Contents(e->state()) == model);
}

TEST_CASE("without a floor, or with it cleared, a snapshot drops every segment it covers") {
  TempDir dir;
  NotifyCounter notes;
  auto o = BasicOptions(Env::Default(), dir, DurabilityMode::kNone);
  o.segment_size = 8192;
  o.notify = notes.Hook();
  auto e = MustOpen(o);
  RecordingSink sink;
  for (int i = 0; i < 800; ++i) REQUIRE(e->Put("key" + std::to_string(i), "value", false).has_value());
  REQUIRE(e->WaitDurable(e->last_lsn(), &sink).ok());
  REQUIRE(SegmentFirsts(o.wal_dir).size() > 3);
  e->SetRetentionFloor(5);
  e->SetRetentionFloor(0);  // cleared
  const Lsn snap_lsn = e->SnapshotLsn();
  REQUIRE(WriteSnapshot(Env::Default(), o.snapshot_dir, e->state(), snap_lsn).has_value());
  REQUIRE(e->SnapshotInstalled(snap_lsn).ok());
  REQUIRE(PollUntil(e.get(), notes, &sink, [&] { return SegmentFirsts(o.wal_dir).size() == 1; }));
  CHECK(SegmentFirsts(o.wal_dir).size() == 1);
  CHECK(e->stats().retained_wal_segments == 0);
  CHECK(e->stats().retention_floor == 0);
  REQUIRE(e->Close(&sink).ok());
}

}  // namespace
}  // namespace kvd
