// One-shot commands (output and exit codes) against the fake kvd.
#include "commands.h"

#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

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
  Io(const std::string& socket, bool tty = false) : ctx{socket, out, err, tty, std::chrono::seconds(5), 0} {}
};

// A server that accepts connections (the kernel does, from the backlog) and
// never answers: what a SIGSTOPped kvd looks like to a client.
struct SilentServer {
  std::string path = TempSocketPath("silent");
  kvd::Fd fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  SilentServer() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(fd.get(), 16) == 0);
  }
  ~SilentServer() { ::unlink(path.c_str()); }
};
}  // namespace

TEST_CASE("put, get, del and their exit codes") {
  FakeKvd kvd(TempSocketPath("cmd"));
  {
    Io io(kvd.path());
    CHECK(CmdPut(io.ctx, "k", std::string("v\0\n", 3), false) == kExitOk);
    CHECK(io.out.str() == "OK\n");
  }
  {
    Io io(kvd.path());
    CHECK(CmdGet(io.ctx, "k", /*raw=*/false) == kExitOk);
    CHECK(io.out.str() == std::string("v\0\n\n", 4));  // the bytes and a newline, like redis-cli and etcdctl
    CHECK(io.err.str().empty());
  }
  {
    Io io(kvd.path());
    CHECK(CmdGet(io.ctx, "k", /*raw=*/true) == kExitOk);
    CHECK(io.out.str() == std::string("v\0\n", 3));  // exactly the value
  }
  {
    Io io(kvd.path(), /*tty=*/true);
    CHECK(CmdGet(io.ctx, "k", /*raw=*/false) == kExitOk);
    CHECK(io.out.str() == "v\\x00\\n\n");  // escaped on a terminal: one line, no control bytes
  }
  {
    Io io(kvd.path(), /*tty=*/true);
    CHECK(CmdGet(io.ctx, "k", /*raw=*/true) == kExitOk);
    CHECK(io.out.str() == std::string("v\0\n", 3));  // --raw means raw, even on a terminal
  }
  {
    Io io(kvd.path());
    CHECK(CmdGet(io.ctx, "absent", false) == kExitNotFound);
    CHECK(io.out.str().empty());
    CHECK(io.err.str() == "kvctl: not found: absent\n");
  }
  {
    Io io(kvd.path());
    CHECK(CmdDel(io.ctx, "k", true) == kExitOk);
    CHECK(io.out.str() == "OK\n");
    Io again(kvd.path());
    CHECK(CmdDel(again.ctx, "k", false) == kExitNotFound);
    CHECK(again.out.str().empty());
  }
}

TEST_CASE("unreachable server and server errors exit 3 with one stderr line") {
  Io io(TempSocketPath("nobody"));
  CHECK(CmdPing(io.ctx) == kExitServer);
  CHECK(io.out.str().empty());
  const std::string err = io.err.str();
  CHECK(err.starts_with("kvctl: "));
  CHECK(err.find('\n') == err.size() - 1);

  FakeKvd kvd(TempSocketPath("cmd"));
  kvd.FailPuts(kvd::Code::kWritesRefused);
  Io refused(kvd.path());
  CHECK(CmdPut(refused.ctx, "a", "b", false) == kExitServer);
  CHECK(refused.err.str() == "kvctl: injected failure\n");
}

TEST_CASE("a config set the server refuses as invalid is a usage error: exit 2") {
  FakeKvd kvd(TempSocketPath("cmd"));
  Io bad_set(kvd.path());
  CHECK(CmdConfigSet(bad_set.ctx, "no.such", "1") == kExitUsage);
  CHECK(bad_set.err.str() == "kvctl: cannot set that\n");
}

TEST_CASE("--timeout: a server that never answers fails the command with exit 3 in time") {
  SilentServer silent;
  Io io(silent.path);
  io.ctx.timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  CHECK(CmdPing(io.ctx) == kExitServer);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= std::chrono::milliseconds(250));
  CHECK(took < std::chrono::seconds(3));
  const std::string err = io.err.str();
  CHECK(err.find('\n') == err.size() - 1);  // one line
  CHECK(err.find("timed out after 300 ms") != std::string::npos);
  CHECK(err.find("--timeout") != std::string::npos);
  CHECK(io.out.str().empty());
}

TEST_CASE("batch: one request, every operation applied") {
  FakeKvd kvd(TempSocketPath("cmd"));
  kvd.Put("gone", "x");
  std::vector<BatchEntry> entries = {{kvd::OpType::kPut, "a", "1"},
                                     {kvd::OpType::kPut, std::string("b\0", 2), "2"},
                                     {kvd::OpType::kDel, "gone", ""}};
  Io io(kvd.path());
  CHECK(CmdBatch(io.ctx, entries, false) == kExitOk);
  CHECK(io.out.str() == "OK\n");
  CHECK(kvd.batches() == 1);
  CHECK(kvd.Value("a") == std::optional<std::string>("1"));
  CHECK(kvd.Value(std::string("b\0", 2)) == std::optional<std::string>("2"));
  CHECK_FALSE(kvd.Value("gone").has_value());
}

TEST_CASE("size, count, flush, snapshot, ping") {
  FakeKvd kvd(TempSocketPath("cmd"));
  kvd.Put("a1", "x");
  kvd.Put("a2", "y");
  kvd.Put("b1", "z");
  Io size(kvd.path());
  CHECK(CmdSize(size.ctx) == kExitOk);
  CHECK(size.out.str() == "3\n");
  Io count(kvd.path());
  CHECK(CmdCount(count.ctx, "a") == kExitOk);
  CHECK(count.out.str() == "2\n");
  Io put(kvd.path());
  CHECK(CmdPut(put.ctx, "c", "d", false) == kExitOk);
  Io flush(kvd.path());
  CHECK(CmdFlush(flush.ctx) == kExitOk);
  CHECK(flush.out.str() == "1\n");
  Io snap(kvd.path());
  CHECK(CmdSnapshot(snap.ctx) == kExitOk);
  CHECK(snap.out.str() == "lsn=1 path=/var/lib/kvd/snapshots/snap-00000000000000000001.kvs\n");
  Io ping(kvd.path());
  CHECK(CmdPing(ping.ctx) == kExitOk);
  CHECK(ping.out.str() == "PONG\n");
}

TEST_CASE("scan follows continuations, honours limit and range, escapes bytes") {
  FakeKvd kvd(TempSocketPath("cmd"));
  kvd.set_scan_page(3);
  for (int i = 0; i < 10; ++i) kvd.Put("k" + std::to_string(i), "v" + std::to_string(i));
  kvd.Put(std::string("odd\t\x01", 5), "a\\b\nc");
  {
    Io io(kvd.path());
    ScanOptions o;
    o.prefix = "k";
    CHECK(CmdScan(io.ctx, o) == kExitOk);
    std::string want;
    for (int i = 0; i < 10; ++i) want += "k" + std::to_string(i) + "\tv" + std::to_string(i) + "\n";
    CHECK(io.out.str() == want);
  }
  {
    Io io(kvd.path());
    ScanOptions o;
    o.limit = 4;
    CHECK(CmdScan(io.ctx, o) == kExitOk);
    CHECK(io.out.str() == "k0\tv0\nk1\tv1\nk2\tv2\nk3\tv3\n");
  }
  {
    Io io(kvd.path());
    ScanOptions o;
    o.start = "k3";
    o.end = "k6";
    CHECK(CmdScan(io.ctx, o) == kExitOk);
    CHECK(io.out.str() == "k3\tv3\nk4\tv4\nk5\tv5\n");
  }
  {
    Io io(kvd.path());
    ScanOptions o;
    o.prefix = "odd";
    CHECK(CmdScan(io.ctx, o) == kExitOk);
    CHECK(io.out.str() == "odd\\t\\x01\ta\\\\b\\nc\n");
  }
  {
    Io io(kvd.path());
    ScanOptions o;
    o.prefix = "k";
    o.start = "a";
    CHECK(CmdScan(io.ctx, o) == kExitUsage);
  }
}

TEST_CASE("status and config output") {
  FakeKvd kvd(TempSocketPath("cmd"));
  Io text(kvd.path());
  CHECK(CmdStatus(text.ctx, false) == kExitOk);
  CHECK(text.out.str().starts_with("server\n  version: 0.1.0\n"));
  CHECK(text.out.str().find("\ndurability\n  mode: sync\n") != std::string::npos);
  Io json(kvd.path());
  CHECK(CmdStatus(json.ctx, true) == kExitOk);
  CHECK(json.out.str() == kvd.status_json + "\n");
  Io get(kvd.path());
  CHECK(CmdConfigGet(get.ctx, "durability.batch_size") == kExitOk);
  CHECK(get.out.str() == "64\n");
  Io set(kvd.path());
  CHECK(CmdConfigSet(set.ctx, "durability.batch_size", "8") == kExitOk);
  CHECK(kvd.Config("durability.batch_size") == "8");
  Io all(kvd.path());
  CHECK(CmdConfigGet(all.ctx, "") == kExitOk);
  CHECK(all.out.str().find("durability.batch_size = 8\n") != std::string::npos);
}
