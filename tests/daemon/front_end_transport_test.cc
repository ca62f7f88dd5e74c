// The transport seam: one front end, one codec, two transports. A real
// libuv loop serves the native protocol on a TCP loopback listener and on
// a Unix socket; a blocking client in another thread pipelines requests
// over each and checks the replies.
#include "daemon/serve/front_end.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "daemon/net/uv_handle.h"
#include "daemon/serve/dispatcher.h"
#include "daemon/serve/native_codec.h"
#include "kvd/env.h"
#include "kvd/fd.h"
#include "kvd/protocol.h"
#include "util/fake_engine.h"
#include "util/temp_dir.h"

namespace kvd::daemon {
namespace {

using proto::Opcode;

struct Host : DispatchHost {
  FrontEnd* front = nullptr;
  Session* FindSession(uint64_t id) override { return front->FindSession(id); }
  void SessionReady(Session* s) override { front->SessionReady(s); }
  std::string StatusJson() override { return "{}"; }
  Result<std::string> ConfigGetJson(std::string_view) override { return std::string("{}"); }
  Status ConfigSet(std::string_view, std::string_view, const Peer&) override { return Status::Ok(); }
  void RequestSnapshot() override {}
  void OnWriteError(const Status&) override {}
};

// The serving side: a loop with one native front end.
struct Served {
  uv_loop_t loop{};
  test::FakeEngine engine;
  Host host;
  ServerCounters counters;
  Dispatcher dispatcher{&engine, &host, Dispatcher::Limits{}, &counters};
  uint64_t next_id = 1;
  FrontEnd front{&loop, std::make_unique<NativeProtocol>(NativeCodec::Limits{}), &dispatcher, &counters, &next_id,
                 FrontEnd::Options{}};
  UvHandle<uv_prepare_t> prepare;
  UvHandle<uv_async_t> stop;

  Served() {
    REQUIRE(uv_loop_init(&loop) == 0);
    host.front = &front;
    engine.mutable_state().Put("k", "value over the wire");
    REQUIRE(InitPrepare(&loop, &prepare, this));
    uv_prepare_start(prepare.get(), [](uv_prepare_t* p) { static_cast<Served*>(p->data)->front.FlushDirty(); });
    REQUIRE(InitAsync(&loop, &stop, [](uv_async_t* a) { static_cast<Served*>(a->data)->Stop(); }, this));
  }
  ~Served() {
    Stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
  void Stop() {
    front.StopListening();
    front.CloseAll();
    prepare.reset();
    stop.reset();
  }
  // Runs the loop until client (on its own thread) returns.
  void Serve(const std::function<void()>& client) {
    uv_async_t* a = stop.get();
    std::thread t([&client, a] {
      client();
      uv_async_send(a);
    });
    uv_run(&loop, UV_RUN_DEFAULT);
    t.join();
  }
};

std::string Request(Opcode op, uint64_t id, std::string_view payload = {}) {
  std::string out;
  proto::RequestHeader h;
  h.opcode = op;
  h.request_id = id;
  proto::EncodeRequest(&out, h, {payload});
  return out;
}

// Sends three pipelined requests and reads their replies, in order. Runs
// on the client thread: no assertions here, the caller checks the result.
std::vector<std::pair<proto::ReplyHeader, std::string>> Exchange(int fd) {
  std::vector<std::pair<proto::ReplyHeader, std::string>> replies;
  const std::string out = Request(Opcode::kPing, 1) + Request(Opcode::kGet, 2, "k") + Request(Opcode::kGet, 3, "nope");
  if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) return replies;
  std::string in;
  char buf[4096];
  while (replies.size() < 3) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return replies;
    in.append(buf, static_cast<size_t>(n));
    for (;;) {
      auto split = proto::SplitFrame(AsBytes(in), 1 << 20, proto::kReplyHeaderBytes);
      if (!split.has_value()) return replies;
      if (!split->has_value()) break;
      auto frame = AsBytes(in).first(**split);
      auto h = proto::DecodeReplyHeader(frame);
      if (!h.has_value()) return replies;
      replies.emplace_back(*h, std::string(AsStringView(proto::ReplyPayload(frame))));
      in.erase(0, **split);
    }
  }
  return replies;
}

void CheckReplies(const std::vector<std::pair<proto::ReplyHeader, std::string>>& r) {
  REQUIRE(r.size() == 3);
  CHECK(r[0].first.opcode == Opcode::kPing);
  CHECK(r[0].first.request_id == 1);
  CHECK(r[1].first.status == Code::kOk);
  CHECK(r[1].second == "value over the wire");
  CHECK(r[2].first.request_id == 3);
  CHECK(r[2].first.status == Code::kNotFound);
}

TEST_CASE("a TCP loopback listener serves the native protocol with the same front end and codec") {
  Served s;
  REQUIRE(s.front.ListenTcp("127.0.0.1", 0).ok());
  const uint16_t port = s.front.tcp_port();
  REQUIRE(port != 0);
  std::vector<std::pair<proto::ReplyHeader, std::string>> replies;
  s.Serve([&] {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    replies = Exchange(fd.get());
  });
  CheckReplies(replies);
  CHECK(s.counters.connections_total == 1);
  CHECK(s.counters.ops[static_cast<size_t>(Op::kGet)] == 2);
}

TEST_CASE("the Unix socket listener feeds the same front end") {
  test::TempDir dir("transport");
  Served s;
  const std::string path = dir.path() + "/kvd.sock";
  REQUIRE(s.front.ListenUnix(path, 0600).ok());
  std::vector<std::pair<proto::ReplyHeader, std::string>> replies;
  s.Serve([&] {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    replies = Exchange(fd.get());
  });
  CheckReplies(replies);
}

TEST_CASE("a TCP listener refuses what is not an address") {
  Served s;
  CHECK(s.front.ListenTcp("not-an-address", 0).code() == Code::kInvalidArgument);
}

}  // namespace
}  // namespace kvd::daemon
