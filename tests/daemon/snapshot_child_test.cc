#include <doctest/doctest.h>

#include "daemon/serve/read_ops.h"
#include "daemon/node/snapshot_child.h"

namespace kvd::daemon {
namespace {

TEST_CASE("the snapshot child's result record round-trips") {
  std::array<std::byte, kChildResultBytes> rec;
  EncodeChildResult(true, 42, 7, 1234, 5678, {}, &rec);
  auto r = ParseChildResult(rec);
  REQUIRE(r.has_value());
  CHECK(r->ok);
  CHECK(r->lsn == 42);
  CHECK(r->entries == 7);
  CHECK(r->bytes == 1234);
  CHECK(r->duration.count() == 5678);
  CHECK(r->error.empty());

  EncodeChildResult(false, 9, 0, 0, 1, std::string(500, 'e'), &rec);
  r = ParseChildResult(rec);
  REQUIRE(r.has_value());
  CHECK_FALSE(r->ok);
  CHECK(r->error.size() == kChildErrorBytes - 1);  // truncated, NUL-terminated
}

TEST_CASE("a child that died mid-write is detected") {
  std::array<std::byte, kChildResultBytes> rec;
  EncodeChildResult(true, 1, 1, 1, 1, {}, &rec);
  CHECK_FALSE(ParseChildResult(std::span(rec).first(10)).has_value());
  CHECK_FALSE(ParseChildResult({}).has_value());
  rec[0] = std::byte{0};
  CHECK(ParseChildResult(rec).error().IsCorruption());
}

proto::ScanReply Scan(const State& s, proto::ScanArgs a, size_t max_bytes = 1 << 20) {
  std::string payload;
  ScanState(s, a, max_bytes, &payload);
  auto r = proto::DecodeScanReply(AsBytes(payload));
  REQUIRE(r.has_value());
  return *r;
}

TEST_CASE("SCAN by prefix and range, with limit and continuation") {
  State s;
  for (const char* k : {"a", "b1", "b2", "b3", "c"}) s.Put(k, std::string("v") + k);
  proto::ScanArgs a;
  a.a = "b";
  a.limit = 2;
  auto r = Scan(s, a);
  REQUIRE(r.items.size() == 2);
  CHECK(r.items[0].first == "b1");
  CHECK(r.more);
  a.after = "b2";
  r = Scan(s, a);
  REQUIRE(r.items.size() == 1);
  CHECK(r.items[0].first == "b3");
  CHECK_FALSE(r.more);

  proto::ScanArgs range;
  range.kind = proto::ScanArgs::kRange;
  range.a = "b2";
  range.b = "c";
  r = Scan(s, range);
  REQUIRE(r.items.size() == 2);
  CHECK(r.items[1].first == "b3");

  // A byte cap still returns at least one item and says there is more.
  proto::ScanArgs all;
  r = Scan(s, all, 1);
  CHECK(r.items.size() == 1);
  CHECK(r.more);
}

}  // namespace
}  // namespace kvd::daemon
