// kvctl's etcd gateway JSON: base64, int64-as-string, replies as etcd 3.4
// writes them (bodies captured from a real etcd), errors.
#include "etcd_json.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "etcd_gateway.h"

using namespace kvctl;
using namespace kvctl::etcd;

TEST_CASE("base64 round-trips every length and binary bytes") {
  CHECK(Base64Encode("") == "");
  CHECK(Base64Encode("f") == "Zg==");
  CHECK(Base64Encode("fo") == "Zm8=");
  CHECK(Base64Encode("foo") == "Zm9v");
  CHECK(Base64Encode("/kvd/main/leader") == "L2t2ZC9tYWluL2xlYWRlcg==");
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= all.size(); n += 37) {
    auto back = Base64Decode(Base64Encode(all.substr(0, n)));
    REQUIRE(back.has_value());
    CHECK(*back == all.substr(0, n));
  }
  CHECK_FALSE(Base64Decode("Zg=").has_value());    // length
  CHECK_FALSE(Base64Decode("Z!==").has_value());   // alphabet
  CHECK_FALSE(Base64Decode("Zg==Zg==").has_value());  // padding only at the very end
}

TEST_CASE("prefix end increments the last byte below 0xff") {
  CHECK(PrefixEnd("/kvd/a/") == "/kvd/a0");
  CHECK(PrefixEnd(std::string("a\xff", 2)) == "b");
  CHECK(PrefixEnd("") == std::string(1, '\0'));
}

TEST_CASE("range reply: int64s as strings, base64 keys and values, absent zero fields") {
  const std::string body =
      R"({"header":{"cluster_id":"1","member_id":"2","revision":"57","raft_term":"3"},)"
      R"("kvs":[{"key":"L2t2ZC9tYWluL2xlYWRlcg==","create_revision":"41","mod_revision":"41","version":"1",)"
      R"("value":"YQ==","lease":"7587871234"},{"key":"Zm9v","create_revision":"9","mod_revision":"12",)"
      R"("version":"2"}],"count":"2"})";
  auto r = ParseRange(body);
  REQUIRE(r.has_value());
  CHECK(r->revision == 57);
  REQUIRE(r->kvs.size() == 2);
  CHECK(r->kvs[0].key == "/kvd/main/leader");
  CHECK(r->kvs[0].value == "a");
  CHECK(r->kvs[0].create_revision == 41);
  CHECK(r->kvs[0].lease == 7587871234);
  CHECK(r->kvs[1].value == "");  // an empty value is left out
  CHECK(r->kvs[1].lease == 0);
  // No kvs at all: an empty range, not an error.
  auto empty = ParseRange(R"({"header":{"revision":"3"}})");
  REQUIRE(empty.has_value());
  CHECK(empty->kvs.empty());
  CHECK_FALSE(ParseRange(R"({"kvs":[{"key":"Zm9v","create_revision":"x"}]})").has_value());
  CHECK_FALSE(ParseRange("not json").has_value());
}

TEST_CASE("txn request and reply") {
  const std::string req = TxnRequest({{"/p/switchover", Compare::kCreateRevision, 0, ""},
                                      {"/p/leader", Compare::kValue, 0, "a"}},
                                     {{TxnOp::kPut, "/p/switchover", R"({"from":"a","to":"b"})", 99}},
                                     {{TxnOp::kRange, "/p/leader", "", 0}});
  CHECK(req.find(R"("target":"CREATE")") != std::string::npos);
  CHECK(req.find(R"("create_revision":"0")") != std::string::npos);
  CHECK(req.find(R"("value":"YQ==")") != std::string::npos);
  CHECK(req.find(R"("lease":"99")") != std::string::npos);
  CHECK(req.find(R"("request_range":{"key":"L3AvbGVhZGVy"})") != std::string::npos);

  auto ok = ParseTxn(R"({"header":{"revision":"60"},"succeeded":true,"responses":[{"response_put":{"header":{}}}]})");
  REQUIRE(ok.has_value());
  CHECK(ok->succeeded);
  CHECK(ok->ranges.empty());
  // A failed txn has no "succeeded" (proto3 zero value) and the failure branch's ranges.
  auto failed = ParseTxn(
      R"({"header":{"revision":"60"},"responses":[{"response_range":{"header":{"revision":"60"},)"
      R"("kvs":[{"key":"L3AvbGVhZGVy","create_revision":"41","value":"Yw=="}],"count":"1"}}]})");
  REQUIRE(failed.has_value());
  CHECK_FALSE(failed->succeeded);
  REQUIRE(failed->ranges.size() == 1);
  CHECK(failed->ranges[0].kvs.at(0).value == "c");
}

TEST_CASE("lease grant, member status, errors") {
  auto id = ParseLeaseGrant(R"({"header":{},"ID":"7587871234567","TTL":"10"})");
  REQUIRE(id.has_value());
  CHECK(*id == 7587871234567);
  CHECK_FALSE(ParseLeaseGrant(R"({"header":{}})").has_value());

  auto st = ParseMemberStatus(
      R"({"header":{"cluster_id":"1","member_id":"10501334649042878790","revision":"5","raft_term":"2"},)"
      R"("version":"3.4.23","dbSize":"20480","leader":"10501334649042878790","raftIndex":"8","raftTerm":"2",)"
      R"("raftAppliedIndex":"8","dbSizeInUse":"20480"})");
  REQUIRE(st.has_value());
  CHECK(st->member_id == "10501334649042878790");  // above int64: kept as text
  CHECK(st->leader_id == st->member_id);
  CHECK(st->raft_term == 2);
  CHECK(st->db_size == 20480);
  CHECK(st->version == "3.4.23");

  CHECK(CheckReply(200, "").ok());
  const auto unavailable = CheckReply(503, R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})");
  CHECK(unavailable.code() == kvd::Code::kBusy);
  CHECK(unavailable.message().find("no leader") != std::string::npos);
  CHECK(CheckReply(400, R"({"message":"bad","code":3})").code() == kvd::Code::kIOError);
}

TEST_CASE("endpoint lists") {
  auto two = EtcdGateway::ParseEndpoints(" http://127.0.0.1:2379, http://127.0.0.1:2381/ ");
  REQUIRE(two.has_value());
  CHECK(*two == std::vector<std::string>{"http://127.0.0.1:2379", "http://127.0.0.1:2381"});
  CHECK_FALSE(EtcdGateway::ParseEndpoints("").has_value());
  CHECK_FALSE(EtcdGateway::ParseEndpoints("127.0.0.1:2379").has_value());
  CHECK_FALSE(EtcdGateway::ParseEndpoints("http://127.0.0.1").has_value());
  CHECK_FALSE(EtcdGateway::ParseEndpoints("https://127.0.0.1").has_value());
  CHECK_FALSE(EtcdGateway::ParseEndpoints("unix:/run/kvd/kvd.sock").has_value());
  // TLS to etcd: https:// endpoints, every one of the list.
  auto tls = EtcdGateway::ParseEndpoints("https://127.0.0.1:2379,https://127.0.0.1:2381/");
  REQUIRE(tls.has_value());
  CHECK(*tls == std::vector<std::string>{"https://127.0.0.1:2379", "https://127.0.0.1:2381"});
  for (const char* mixed : {"https://127.0.0.1:2379,http://127.0.0.1:2381", "http://127.0.0.1:2379,https://127.0.0.1:2381"}) {
    auto m = EtcdGateway::ParseEndpoints(mixed);
    REQUIRE_FALSE(m.has_value());
    CHECK_MESSAGE(m.error().message().find("http:// and https:// mixed") != std::string::npos, m.error().message());
  }
}

TEST_CASE("TLS options fit the endpoints: https needs --etcd-cacert, cert and key together, files readable") {
  const std::vector<std::string> https = {"https://127.0.0.1:2379"};
  const std::vector<std::string> http = {"http://127.0.0.1:2379"};
  // /dev/null stands for a readable file: CheckTls does not parse PEM (curl does).
  CHECK(EtcdGateway::CheckTls(http, {}).ok());
  CHECK(EtcdGateway::CheckTls(https, {"/dev/null", "", ""}).ok());
  CHECK(EtcdGateway::CheckTls(https, {"/dev/null", "/dev/null", "/dev/null"}).ok());
  struct Bad {
    std::vector<std::string> endpoints;
    EtcdTls tls;
    const char* says;
  };
  for (const Bad& b : {
           Bad{https, {}, "need --etcd-cacert"},
           Bad{https, {"/dev/null", "/dev/null", ""}, "give both"},
           Bad{https, {"/dev/null", "", "/dev/null"}, "give both"},
           Bad{http, {"/dev/null", "", ""}, "only with https://"},
           Bad{{}, {"/dev/null", "", ""}, "only with https://"},  // --cluster unix:...
           Bad{https, {"/nonexistent/ca.pem", "", ""}, "--etcd-cacert /nonexistent/ca.pem: No such file"},
           Bad{https, {"/dev/null", "/nonexistent/c.pem", "/dev/null"}, "--etcd-cert /nonexistent/c.pem"},
           Bad{https, {"/dev/null", "/dev/null", "/nonexistent/c.key"}, "--etcd-key /nonexistent/c.key"},
       }) {
    const kvd::Status st = EtcdGateway::CheckTls(b.endpoints, b.tls);
    REQUIRE_FALSE_MESSAGE(st.ok(), b.says);
    CHECK_MESSAGE(st.message().find(b.says) != std::string::npos, st.message());
  }
}
