// The blocking client against a tiny fake server: a thread on a Unix socket
// that decodes requests with the codec and answers from a fixed script.
#include "kvd/client.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>
#include "util/temp_dir.h"

namespace kvd {
namespace {

using proto::Opcode;

std::span<const std::byte> B(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
std::string_view S(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// A temp dir named kvd-client-test-*.
class TempDir : public test::TempDir {
 public:
  TempDir() : test::TempDir("client-test") {}
};

Fd Listen(const std::string& path, bool listen = true) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  if (listen) REQUIRE(::listen(fd.get(), 16) == 0);
  return fd;
}

bool SendAll(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Answers one request; false closes the connection.
bool Answer(const proto::Request& req, uint64_t* lsn, std::string* out) {
  const auto& h = req.header;
  const std::string_view p = S(req.payload);
  proto::ReplyHeader r{h.opcode, Code::kOk, h.request_id, *lsn, 0};
  auto reply = [&](std::initializer_list<std::string_view> parts = {}) { proto::EncodeReply(out, r, parts); };
  switch (h.opcode) {
    case Opcode::kGet:
      if (p == "close") return false;
      if (p == "missing") {
        r.status = Code::kNotFound;
        reply();
      } else {
        reply({"v:", p});
      }
      return true;
    case Opcode::kPut: {
      auto put = proto::DecodePut(req.payload, kMaxKeyBytes, kMaxValueBytes);
      if (!put || put->key == "fail") {
        r.status = put ? Code::kNoSpace : put.error().code();
        reply({put ? "disk full" : put.error().message()});
        return true;
      }
      r.lsn = ++*lsn;
      r.durable_lsn = (h.flags & proto::kFlagDurable) ? r.lsn : 0;
      reply();
      return true;
    }
    case Opcode::kDel:
      r.lsn = ++*lsn;
      if (p == "absent") r.status = Code::kNotFound;
      reply();
      return true;
    case Opcode::kBatch: {
      std::vector<BatchOp> ops;
      Status s = proto::DecodeBatch(req.payload, kMaxKeyBytes, kMaxValueBytes, &ops);
      r.status = s.code();
      if (s.ok()) r.lsn = ++*lsn;
      reply({s.ok() ? std::to_string(ops.size()) : s.message()});
      return true;
    }
    case Opcode::kScan: {
      auto args = proto::DecodeScan(req.payload);
      if (!args) return false;
      proto::ScanReplyBuilder b;
      b.Add(std::string(args->a) + "1", "one");
      b.Add(std::string(args->a) + "2", std::string(args->after));
      reply({b.Finish(true)});
      return true;
    }
    case Opcode::kCount: reply({proto::EncodeU64(p.size())}); return true;
    case Opcode::kFlush:
      r.lsn = *lsn;
      reply();
      return true;
    case Opcode::kSnapshot:
      r.lsn = 7;
      reply();
      return true;
    case Opcode::kStatus: reply({R"({"keys":0})"}); return true;
    case Opcode::kConfigGet: reply({"{\"", p, "\":\"1\"}"}); return true;
    case Opcode::kConfigSet: {
      auto cs = proto::DecodeConfigSet(req.payload);
      if (!cs || cs->value == "bad") r.status = Code::kInvalidArgument;
      reply({r.status == Code::kOk ? "" : "bad value"});
      return true;
    }
    case Opcode::kPing: reply(); return true;
    case Opcode::kDelRange:
    case Opcode::kBackupBegin:
    case Opcode::kBackupRead:
    case Opcode::kBackupEnd:
    case Opcode::kPromote:
    case Opcode::kReplicate:
      break;  // not served by this fake (tests/integration cover them against kvd)
  }
  return false;
}

// Serves one connection on its own thread until the client hangs up.
class FakeServer {
 public:
  FakeServer() : listen_(Listen(dir_.path() + "/kvd.sock")) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeServer() {
    ::shutdown(listen_.get(), SHUT_RDWR);  // wakes accept() if no client ever came
    thread_.join();
  }
  std::string path() const { return dir_.path() + "/kvd.sock"; }

 private:
  void Serve() {
    Fd conn(::accept(listen_.get(), nullptr, nullptr));
    if (!conn.valid()) return;
    std::string in, out;
    uint64_t lsn = 0;
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(conn.get(), buf, sizeof buf, 0);
      if (n <= 0) return;
      in.append(buf, static_cast<size_t>(n));
      for (;;) {
        auto split = proto::SplitFrame(B(in), proto::kDefaultMaxFrameBytes);
        if (!split || !split->has_value()) break;
        const size_t len = **split;
        proto::RequestHeader partial;
        auto req = proto::DecodeRequest(B(in).first(len), &partial);
        bool keep = false;
        if (req) {
          keep = Answer(*req, &lsn, &out);
        } else {
          proto::EncodeReply(&out, proto::ReplyHeader{partial.opcode, req.error().code(), partial.request_id, lsn, 0},
                             {req.error().message()});
        }
        in.erase(0, len);
        if (!SendAll(conn.get(), out) || !keep) return;
        out.clear();
      }
    }
  }

  TempDir dir_;
  Fd listen_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("convenience calls against the fake server") {
  FakeServer server;
  auto c = Client::Connect(server.path(), std::chrono::seconds(10));
  REQUIRE(c);
  Client& cl = **c;
  CHECK(cl.Ping().ok());

  auto v = cl.Get("k");
  REQUIRE(v);
  REQUIRE(v->has_value());
  CHECK(**v == "v:k");
  v = cl.Get("missing");
  REQUIRE(v);
  CHECK_FALSE(v->has_value());

  auto put = cl.Put("k", "value", /*durable=*/true);
  REQUIRE(put);
  CHECK(put->lsn == 1);
  CHECK(put->durable_lsn == 1);
  put = cl.Put("k2", "value");
  REQUIRE(put);
  CHECK(put->lsn == 2);
  CHECK(put->durable_lsn == 0);

  auto del = cl.Del("present");
  REQUIRE(del);
  CHECK(del->existed);
  CHECK(del->lsn == 3);
  del = cl.Del("absent");
  REQUIRE(del);  // absent is not an error
  CHECK_FALSE(del->existed);
  CHECK(del->lsn == 4);

  const BatchOp ops[] = {{OpType::kPut, "a", "1"}, {OpType::kDel, "b", ""}};
  auto batch = cl.Batch(ops);
  REQUIRE(batch);
  CHECK(batch->lsn == 5);

  auto scan = cl.Scan(proto::ScanArgs{proto::ScanArgs::kPrefix, 10, "p", "", "after"});
  REQUIRE(scan);
  REQUIRE(scan->items.size() == 2);
  CHECK(scan->items[0].first == "p1");
  CHECK(scan->items[1].second == "after");
  CHECK(scan->more);

  auto count = cl.Count("abc");
  REQUIRE(count);
  CHECK(*count == 3);
  auto flushed = cl.FlushWal();
  REQUIRE(flushed);
  CHECK(*flushed == 5);
  auto snap = cl.Snapshot();
  REQUIRE(snap);
  CHECK(*snap == 7);
  auto st = cl.StatusJson();
  REQUIRE(st);
  CHECK(*st == R"({"keys":0})");
  auto cfg = cl.ConfigGet("durability.mode");
  REQUIRE(cfg);
  CHECK(*cfg == R"({"durability.mode":"1"})");
  CHECK(cl.ConfigSet("durability.mode", "sync").ok());
}

TEST_CASE("error replies map to Status with the payload as message") {
  FakeServer server;
  auto c = Client::Connect(server.path());
  REQUIRE(c);
  auto put = (*c)->Put("fail", "v");
  REQUIRE_FALSE(put);
  CHECK(put.error().code() == Code::kNoSpace);
  CHECK(put.error().message() == "disk full");
  Status s = (*c)->ConfigSet("durability.batch_size", "bad");
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message() == "bad value");

  // Raw use: a reply's status() and an unknown opcode's error reply.
  (*c)->Queue(static_cast<Opcode>(42), 0);
  REQUIRE((*c)->Flush().ok());
  auto r = (*c)->Receive();
  REQUIRE(r);
  CHECK_FALSE(r->ok());
  CHECK(static_cast<uint8_t>(r->header.opcode) == 42);
  CHECK(r->status().code() == Code::kUnsupported);
  CHECK(r->status().message().find("opcode") != std::string::npos);
}

TEST_CASE("64 pipelined requests come back in order") {
  FakeServer server;
  auto c = Client::Connect(server.path(), std::chrono::seconds(10));
  REQUIRE(c);
  Client& cl = **c;
  std::vector<uint64_t> ids;
  std::vector<std::string> keys;
  for (int i = 0; i < 64; i++) {
    keys.push_back("key" + std::to_string(i));
    if (i % 2 == 0) {
      ids.push_back(cl.Queue(Opcode::kGet, 0, {keys.back()}));
    } else {
      const std::string p = proto::EncodePutPayload(keys.back(), "v");
      ids.push_back(cl.Queue(Opcode::kPut, 0, {p}));
    }
  }
  REQUIRE(cl.Flush().ok());
  uint64_t last_lsn = 0;
  for (int i = 0; i < 64; i++) {
    CAPTURE(i);
    auto r = cl.Receive();
    REQUIRE(r);
    CHECK(r->header.request_id == ids[i]);
    CHECK(r->ok());
    if (i % 2 == 0) {
      CHECK(r->header.opcode == Opcode::kGet);
      CHECK(r->payload == "v:" + keys[i]);
    } else {
      CHECK(r->header.opcode == Opcode::kPut);
      CHECK(r->header.lsn == last_lsn + 1);
      last_lsn = r->header.lsn;
    }
  }
  CHECK(last_lsn == 32);
  // The connection is still usable for ordinary calls.
  CHECK(cl.Ping().ok());
}

TEST_CASE("connection refused and missing socket give kIOError naming the path") {
  TempDir dir;
  const std::string stale = dir.path() + "/stale.sock";
  { Fd fd = Listen(stale, /*listen=*/false); }  // bound, never listening: ECONNREFUSED
  auto c = Client::Connect(stale);
  REQUIRE_FALSE(c);
  CHECK(c.error().code() == Code::kIOError);
  CHECK(c.error().message().find(stale) != std::string::npos);
  CHECK(c.error().message().find(std::strerror(ECONNREFUSED)) != std::string::npos);

  const std::string missing = dir.path() + "/missing.sock";
  c = Client::Connect(missing);
  REQUIRE_FALSE(c);
  CHECK(c.error().code() == Code::kIOError);
  CHECK(c.error().message().find(missing) != std::string::npos);

  c = Client::Connect(std::string(200, 'x'));
  REQUIRE_FALSE(c);
  CHECK(c.error().code() == Code::kInvalidArgument);
}

TEST_CASE("a server that never answers hits the timeout") {
  TempDir dir;
  Fd listener = Listen(dir.path() + "/mute.sock");  // accepts into its backlog, never replies
  auto c = Client::Connect(dir.path() + "/mute.sock", std::chrono::milliseconds(100));
  REQUIRE(c);
  Status s = (*c)->Ping();
  CHECK(s.code() == Code::kIOError);
  CHECK(s.message().find("timed out") != std::string::npos);
  CHECK(s.message().find("mute.sock") != std::string::npos);
}

TEST_CASE("a server that hangs up gives kIOError naming the path") {
  FakeServer server;
  auto c = Client::Connect(server.path());
  REQUIRE(c);
  auto v = (*c)->Get("close");
  REQUIRE_FALSE(v);
  CHECK(v.error().code() == Code::kIOError);
  CHECK(v.error().message().find(server.path()) != std::string::npos);
}

}  // namespace kvd
