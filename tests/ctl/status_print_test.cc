#include "status_print.h"

#include <doctest/doctest.h>

#include <string>

using namespace kvctl;

TEST_CASE("status text groups objects and humanizes units") {
  const std::string json =
      R"({"version":"0.1.0","pid":42,"uptime_s":3725,)"
      R"("durability":{"mode":"sync","batch_size":64},)"
      R"("wal":{"segments":2,"bytes":1048576,"last":{"lsn":7}},)"
      R"("recovery":{"warnings":["a","b"],"empty":[]}})";
  auto text = RenderStatusText(json);
  REQUIRE(text.has_value());
  const std::string& t = *text;
  CHECK(t.starts_with("server\n  version: 0.1.0\n  pid: 42\n  uptime_s: 3725 (1h02m)\n"));
  CHECK(t.find("\ndurability\n  mode: sync\n  batch_size: 64\n") != std::string::npos);
  CHECK(t.find("  bytes: 1048576") != std::string::npos);
  CHECK(t.find("  last.lsn: 7\n") != std::string::npos);
  CHECK(t.find("  warnings: a, b\n") != std::string::npos);
  CHECK(t.find("  empty: (none)\n") != std::string::npos);
  // Order of groups is the server's.
  CHECK(t.find("durability") < t.find("wal"));
}

TEST_CASE("byte counts keyed *_bytes get a human size") {
  auto text = RenderStatusText(R"({"memory":{"rss_bytes":10485760}})");
  REQUIRE(text.has_value());
  CHECK(text->find("rss_bytes: 10485760 (10.0 MiB)") != std::string::npos);
}

TEST_CASE("malformed JSON is an error, not a crash") {
  CHECK_FALSE(RenderStatusText("{").has_value());
  CHECK_FALSE(RenderStatusText("[1,2]").has_value());
  CHECK_FALSE(CompactJson("nope").has_value());
}

TEST_CASE("compact JSON is one line and keeps order") {
  auto j = CompactJson("{\n  \"b\": 1,\n  \"a\": {\"x\": [1, 2]}\n}");
  REQUIRE(j.has_value());
  CHECK(*j == R"({"b":1,"a":{"x":[1,2]}})");
}

TEST_CASE("config rendering") {
  auto all = RenderConfigText(R"({"durability.mode":"batch","durability.batch_size":64})");
  REQUIRE(all.has_value());
  CHECK(*all == "durability.mode = batch\ndurability.batch_size = 64\n");
  auto one = ConfigValueText(R"({"durability.mode":"batch"})", "durability.mode");
  REQUIRE(one.has_value());
  CHECK(*one == "batch");
  auto num = ConfigValueText(R"({"durability.batch_size":64})", "durability.batch_size");
  REQUIRE(num.has_value());
  CHECK(*num == "64");
  CHECK_FALSE(ConfigValueText(R"({"a":1,"b":2})", "c").has_value());
}

TEST_CASE("known fields come first in a fixed order, whatever the server's order") {
  auto text = RenderStatusText(
      R"({"a_extra":1,"keys":5,"ops":{"get":1},"uptime_s":1.26279403,"version":"x","wal":{"bytes":3},)"
      R"("write_refusal":"","durability":{"mode":"batch"}})");
  REQUIRE(text.has_value());
  CHECK(*text ==
        "server\n  version: x\n  uptime_s: 1.263 (1.26 s)\n  keys: 5\n  write_refusal: -\n  a_extra: 1\n"
        "\ndurability\n  mode: batch\n\nwal\n  bytes: 3\n\nops\n  get: 1\n");
}

TEST_CASE("lists of objects (replication.replicas) print one block per item, named by its name") {
  auto text = RenderStatusText(
      R"({"replication":{"role":"primary","replicas":[{"name":"r1","state":"streaming","lag_bytes":0},)"
      R"({"state":"handshake"}]}})");
  REQUIRE(text.has_value());
  CHECK(text->find("  replicas[r1].name: r1\n  replicas[r1].state: streaming\n  replicas[r1].lag_bytes: 0\n") !=
        std::string::npos);
  CHECK(text->find("  replicas[1].state: handshake\n") != std::string::npos);
}
