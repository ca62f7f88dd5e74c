// etcd v3 gateway encoding and decoding (daemon/cluster/etcd_json.h), with
// replies as etcd 3.4 sends them.
#include "cluster/etcd_json.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace kvd;
using namespace kvd::daemon;
namespace ej = kvd::daemon::etcd_json;

TEST_CASE("base64 round-trips every length and byte value") {
  CHECK(ej::Base64Encode("") == "");
  CHECK(ej::Base64Encode("a") == "YQ==");
  CHECK(ej::Base64Encode("ab") == "YWI=");
  CHECK(ej::Base64Encode("abc") == "YWJj");
  std::string all;
  for (int i = 0; i < 256; i++) all += static_cast<char>(i);
  for (size_t n = 0; n <= all.size(); n += 37) {
    auto back = ej::Base64Decode(ej::Base64Encode(all.substr(0, n)));
    REQUIRE(back.has_value());
    CHECK(*back == all.substr(0, n));
  }
  CHECK(ej::Base64Decode("Y").error().IsCorruption());
  CHECK(ej::Base64Decode("Y!==").error().IsCorruption());
}

TEST_CASE("prefix end increments the last byte and drops trailing 0xff") {
  CHECK(EtcdPrefixEnd("/kvd/") == "/kvd0");
  CHECK(EtcdPrefixEnd(std::string("a\xff", 2)) == "b");
  CHECK(EtcdPrefixEnd(std::string("\xff", 1)) == std::string(1, '\0'));
}

TEST_CASE("txn request: leader key create with lease, failure branch reads it") {
  EtcdTxnRequest txn;
  txn.compare.push_back({"/c/leader", EtcdCompare::Target::kCreate, EtcdCompare::Op::kEqual, 0, {}});
  txn.success.push_back(EtcdOp::Put("/c/leader", "n1", 42));
  txn.failure.push_back(EtcdOp::Get("/c/leader"));
  auto j = nlohmann::json::parse(ej::TxnRequest(txn));
  CHECK(j["compare"][0]["target"] == "CREATE");
  CHECK(j["compare"][0]["result"] == "EQUAL");
  CHECK(j["compare"][0]["create_revision"] == "0");
  CHECK(j["compare"][0]["key"] == ej::Base64Encode("/c/leader"));
  CHECK(j["success"][0]["request_put"]["lease"] == "42");
  CHECK(j["success"][0]["request_put"]["value"] == ej::Base64Encode("n1"));
  CHECK(j["failure"][0]["request_range"]["key"] == ej::Base64Encode("/c/leader"));
  EtcdTxnRequest cas;
  cas.compare.push_back({"k", EtcdCompare::Target::kValue, EtcdCompare::Op::kEqual, 0, "old"});
  cas.compare.push_back({"k", EtcdCompare::Target::kMod, EtcdCompare::Op::kLess, 9, {}});
  auto c = nlohmann::json::parse(ej::TxnRequest(cas));
  CHECK(c["compare"][0]["value"] == ej::Base64Encode("old"));
  CHECK(c["compare"][1]["target"] == "MOD");
  CHECK(c["compare"][1]["result"] == "LESS");
  CHECK(c["compare"][1]["mod_revision"] == "9");
}

TEST_CASE("txn reply: succeeded is omitted when false; failure range decodes") {
  auto ok = ej::ParseTxn(
      R"({"header":{"revision":"3"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"3"}}}]})");
  REQUIRE(ok.has_value());
  CHECK(ok->succeeded);
  CHECK(ok->revision == 3);
  CHECK(ok->ranges.empty());
  auto lost = ej::ParseTxn(
      R"({"header":{"revision":"3"},"responses":[{"response_range":{"header":{"revision":"3"},)"
      R"("kvs":[{"key":"bA==","create_revision":"3","mod_revision":"3","version":"1","value":"eA==","lease":"77"}],"count":"1"}}]})");
  REQUIRE(lost.has_value());
  CHECK_FALSE(lost->succeeded);
  REQUIRE(lost->ranges.size() == 1);
  REQUIRE(lost->ranges[0].kvs.size() == 1);
  const auto& kv = lost->ranges[0].kvs[0];
  CHECK(kv.key == "l");
  CHECK(kv.value == "x");
  CHECK(kv.create_revision == 3);
  CHECK(kv.lease == 77);
}

TEST_CASE("lease replies: grant, keepalive wrapped in result, vanished lease has no TTL") {
  auto g = ej::ParseLease(R"({"header":{"revision":"2"},"ID":"4712069562453153287","TTL":"5"})");
  REQUIRE(g.has_value());
  CHECK(g->id == 4712069562453153287);
  CHECK(g->ttl_seconds == 5);
  auto k = ej::ParseLease(R"({"result":{"header":{"revision":"3"},"ID":"12345","TTL":"5"}})");
  REQUIRE(k.has_value());
  CHECK(k->ttl_seconds == 5);
  auto gone = ej::ParseLease(R"({"result":{"header":{"revision":"3"},"ID":"12345"}})");
  REQUIRE(gone.has_value());
  CHECK(gone->ttl_seconds == 0);
}

TEST_CASE("watch lines: created notice, put and delete events, compaction") {
  auto created = ej::ParseWatchLine(R"({"result":{"header":{"revision":"3"},"created":true}})");
  REQUIRE(created.has_value());
  CHECK(created->batch.events.empty());
  CHECK(created->batch.revision == 3);
  auto ev = ej::ParseWatchLine(
      R"({"result":{"header":{"revision":"5"},"events":[{"kv":{"key":"YQ==","mod_revision":"4","value":"Mg=="}},)"
      R"({"type":"DELETE","kv":{"key":"YQ==","mod_revision":"5"}}]}})");
  REQUIRE(ev.has_value());
  REQUIRE(ev->batch.events.size() == 2);
  CHECK(ev->batch.events[0].type == EtcdWatchEvent::Type::kPut);
  CHECK(ev->batch.events[0].kv.value == "2");
  CHECK(ev->batch.events[1].type == EtcdWatchEvent::Type::kDelete);
  CHECK(ev->batch.events[1].kv.mod_revision == 5);
  auto compacted = ej::ParseWatchLine(R"({"result":{"header":{"revision":"9"},"canceled":true,"compact_revision":"7"}})");
  REQUIRE(compacted.has_value());
  CHECK(compacted->canceled);
  CHECK(compacted->compact_revision == 7);
  CHECK(ej::ParseWatchLine(R"({"error":{"grpc_code":14,"message":"no leader"}})").error().message().find("no leader") !=
        std::string::npos);
}

TEST_CASE("malformed replies are Corruption, never an exception") {
  CHECK(ej::ParseRange("not json").error().IsCorruption());
  CHECK(ej::ParseRange(R"({"header":{"revision":"x"}})").error().IsCorruption());
  CHECK(ej::ParseRange(R"({"kvs":[{"key":"!!"}]})").error().IsCorruption());
  CHECK(ej::ParseRange(R"({"kvs":[1]})").error().IsCorruption());
  CHECK(ej::ParseTxn(R"([1,2])").error().IsCorruption());
}

TEST_CASE("error replies keep etcd's message and map Unavailable to Busy") {
  Status busy = ej::CheckReply(503, R"({"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"})");
  CHECK(busy.code() == Code::kBusy);
  CHECK(busy.message().find("no leader") != std::string::npos);
  CHECK(ej::CheckReply(404, R"({"error":"lease not found","code":5})").IsNotFound());
  CHECK(ej::CheckReply(400, R"({"error":"bad","code":3})").code() == Code::kInvalidArgument);
  CHECK(ej::CheckReply(200, "{}").ok());
}
