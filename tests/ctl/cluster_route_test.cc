// --cluster parsing, the NotPrimary redirect token, and follow-once against
// fake kvd nodes (a replica whose refusal names the primary).
#include "cluster_route.h"

#include <doctest/doctest.h>

#include <chrono>
#include <sstream>
#include <string>

#include "commands.h"
#include "ctl/fake_kvd.h"
#include "exit_codes.h"

using namespace kvctl;
using kvctl::testing::FakeKvd;
using kvctl::testing::TempSocketPath;

namespace {

struct Io {
  std::ostringstream out;
  std::ostringstream err;
  CommandContext ctx;
  explicit Io(const std::string& socket) : ctx{socket, out, err, false, std::chrono::seconds(5), 0} {}
};

std::string Refusal(const std::string& primary) {
  return "this node is a replica; send writes to the primary at 127.0.0.1:7001 primary_address=" + primary;
}

}  // namespace

TEST_CASE("the primary_address token ends a NotPrimary message") {
  CHECK(PrimaryAddressFromRefusal(Refusal("/run/kvd/a.sock")) == "/run/kvd/a.sock");
  CHECK(PrimaryAddressFromRefusal("x primary_address=/tmp/with space.sock\n") == "/tmp/with space.sock");
  // The last token wins (a message could quote an older one).
  CHECK(PrimaryAddressFromRefusal("a primary_address=/old b primary_address=/new") == "/new");
  CHECK_FALSE(PrimaryAddressFromRefusal("this node is a replica; send writes to the primary at 127.0.0.1:7001"));
  CHECK_FALSE(PrimaryAddressFromRefusal("x primary_address="));
  CHECK_FALSE(PrimaryAddressFromRefusal("primary_address=/a"));  // not a token: no space before it
}

TEST_CASE("--cluster is etcd endpoints or unix sockets, not a mix") {
  auto etcd = ParseClusterSpec("http://127.0.0.1:2379,http://127.0.0.1:22379");
  REQUIRE(etcd.has_value());
  CHECK(etcd->kind == ClusterSpec::kEtcd);
  CHECK(etcd->items.size() == 2);
  auto nodes = ParseClusterSpec("unix:/run/a.sock, unix:/run/b.sock");
  REQUIRE(nodes.has_value());
  CHECK(nodes->kind == ClusterSpec::kNodes);
  CHECK(nodes->items == std::vector<std::string>{"/run/a.sock", "/run/b.sock"});
  CHECK_FALSE(ParseClusterSpec("unix:/run/a.sock,http://127.0.0.1:2379").has_value());
  CHECK_FALSE(ParseClusterSpec("http://127.0.0.1:2379,unix:/run/a.sock").has_value());
  CHECK_FALSE(ParseClusterSpec("/run/a.sock").has_value());
  CHECK_FALSE(ParseClusterSpec("unix:").has_value());
  CHECK_FALSE(ParseClusterSpec(" , ").has_value());
}

TEST_CASE("unix list: the first node that answers") {
  FakeKvd b(TempSocketPath("b"));
  const std::string gone = TempSocketPath("gone");
  auto first = FirstAnsweringNode({gone, b.path()}, std::chrono::seconds(2));
  REQUIRE(first.has_value());
  CHECK(*first == b.path());
  auto none = FirstAnsweringNode({gone}, std::chrono::seconds(2));
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().message().find(gone) != std::string::npos);
}

TEST_CASE("a write refused with primary_address is sent once to the primary") {
  FakeKvd primary(TempSocketPath("primary"));
  FakeKvd replica(TempSocketPath("replica"));
  replica.RefuseWrites(kvd::Code::kNotPrimary, Refusal(primary.path()));
  Io io(replica.path());
  CHECK(CmdPut(io.ctx, "k", "v", false) == kExitOk);
  CHECK(io.out.str() == "OK\n");
  CHECK(io.err.str().empty());
  CHECK(primary.Value("k") == "v");
  CHECK(replica.writes_refused() == 1);
  CHECK_FALSE(replica.Value("k").has_value());
  // Batches and deletes follow too.
  Io io2(replica.path());
  CHECK(CmdBatch(io2.ctx, {{kvd::OpType::kPut, "b", "1"}}, false) == kExitOk);
  CHECK(primary.Value("b") == "1");
  Io io3(replica.path());
  CHECK(CmdDel(io3.ctx, "k", false) == kExitOk);
  CHECK_FALSE(primary.Value("k").has_value());
  CHECK(replica.writes_refused() == 3);
}

TEST_CASE("a second NotPrimary is reported, not followed") {
  FakeKvd last(TempSocketPath("last"));
  FakeKvd second(TempSocketPath("second"));
  FakeKvd first(TempSocketPath("first"));
  second.RefuseWrites(kvd::Code::kNotPrimary, Refusal(last.path()));
  first.RefuseWrites(kvd::Code::kNotPrimary, Refusal(second.path()));
  Io io(first.path());
  CHECK(CmdPut(io.ctx, "k", "v", false) == kExitServer);
  CHECK(io.out.str().empty());
  const std::string err = io.err.str();
  CHECK(err.find("not followed again") != std::string::npos);
  CHECK(err.find(second.path()) != std::string::npos);
  CHECK(first.writes_refused() == 1);
  CHECK(second.writes_refused() == 1);
  CHECK(last.Size() == 0);
}

TEST_CASE("a NotPrimary without the token is reported as it came") {
  FakeKvd replica(TempSocketPath("replica"));
  replica.RefuseWrites(kvd::Code::kNotPrimary, "this node is a replica; send writes to the primary at 127.0.0.1:7001");
  Io io(replica.path());
  CHECK(CmdPut(io.ctx, "k", "v", false) == kExitServer);
  CHECK(io.err.str() == "kvctl: this node is a replica; send writes to the primary at 127.0.0.1:7001\n");
  CHECK(replica.writes_refused() == 1);
}
