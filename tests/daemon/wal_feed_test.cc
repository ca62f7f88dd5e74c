// WalFeed's cache (repl/wal_feed.h): ReadCached hands out whole records from
// any LSN the cache holds, across the chunks (commit groups) it was fed in,
// at least one record and otherwise no more than max_bytes.
#include <doctest/doctest.h>

#include <uv.h>

#include <vector>

#include "kvd/wal.h"
#include "repl/wal_feed.h"

namespace kvd::daemon::repl {
namespace {

// Records first..last, one string each (their encoded bytes).
std::vector<std::string> Records(Lsn first, Lsn last) {
  std::vector<std::string> out;
  for (Lsn l = first; l <= last; ++l) {
    std::string r;
    AppendPutRecord(&r, l, 1, "key" + std::to_string(l), std::string(10 + l, 'v'));
    out.push_back(r);
  }
  return out;
}

std::string Join(const std::vector<std::string>& recs, Lsn first_lsn, Lsn from, Lsn to) {
  std::string s;
  for (Lsn l = from; l <= to; ++l) s += recs[l - first_lsn];
  return s;
}

struct FeedRig {
  uv_loop_t loop{};
  std::unique_ptr<WalFeed> feed;
  std::vector<std::string> recs = Records(1, 9);
  FeedRig() {
    REQUIRE(uv_loop_init(&loop) == 0);
    feed = std::make_unique<WalFeed>(&loop);
    feed->Start(0, 0, nullptr);
    // Three groups: 1-3, 4-6, 7-9.
    for (Lsn f = 1; f <= 7; f += 3) feed->OnRecordsWritten(f, f + 2, Join(recs, 1, f, f + 2));
    uv_run(&loop, UV_RUN_NOWAIT);
    REQUIRE(feed->last_lsn() == 9);
  }
  ~FeedRig() {
    feed->Close();
    uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);
  }
};

TEST_CASE("ReadCached: from any LSN to the end, whole chunks and partial ones") {
  FeedRig r;
  for (Lsn from = 1; from <= 9; ++from) {
    std::string out;
    Lsn last = 0;
    REQUIRE(r.feed->ReadCached(from, 1 << 20, &out, &last));
    CHECK(last == 9);
    CHECK(out == Join(r.recs, 1, from, 9));
  }
  std::string out;
  Lsn last = 0;
  CHECK_FALSE(r.feed->ReadCached(10, 1 << 20, &out, &last));  // not written yet
  CHECK(out.empty());
}

TEST_CASE("ReadCached: max_bytes stops at a record boundary, inside a chunk too, but gives at least one record") {
  FeedRig r;
  std::string out;
  Lsn last = 0;
  // Room for records 2, 3 and 4 exactly: the second chunk is cut after 4.
  const std::string want = Join(r.recs, 1, 2, 4);
  REQUIRE(r.feed->ReadCached(2, want.size(), &out, &last));
  CHECK(last == 4);
  CHECK(out == want);
  // One byte less: record 4 no longer fits.
  out.clear();
  REQUIRE(r.feed->ReadCached(2, want.size() - 1, &out, &last));
  CHECK(last == 3);
  CHECK(out == Join(r.recs, 1, 2, 3));
  // Whole chunks while they fit: 4-6 and 7-9 from 4 with room for both.
  out.clear();
  REQUIRE(r.feed->ReadCached(4, Join(r.recs, 1, 4, 9).size(), &out, &last));
  CHECK(last == 9);
  // A limit below one record still returns that record.
  out.clear();
  REQUIRE(r.feed->ReadCached(7, 1, &out, &last));
  CHECK(last == 7);
  CHECK(out == r.recs[6]);
}

}  // namespace
}  // namespace kvd::daemon::repl
