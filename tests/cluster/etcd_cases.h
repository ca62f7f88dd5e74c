// Shared by the etcd_cases program (etcd_client_cases.cc,
// etcd_lease_cases.cc): how a case finds the harness's etcd cluster
// (KVD_ETCD_ENDPOINTS, KVD_ETCD_PIDS from tests/cluster/test_etcd_client.py),
// kills one of its members, runs a libuv loop until a predicate holds, makes
// an EtcdClient, fakes a partitioned member (Blackhole) and finds the etcd
// leader. Header-only and test-only; a case file says
// `using namespace etcd_cases;`.
#pragma once

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cluster/etcd_client.h"
#include "cluster/etcd_watch.h"
#include "cluster/leader_lease.h"

namespace etcd_cases {

using namespace kvd;
using namespace kvd::daemon;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline std::vector<std::string> Split(const char* s) {
  std::vector<std::string> out;
  std::stringstream ss(s != nullptr ? s : "");
  for (std::string part; std::getline(ss, part, ',');) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

inline std::vector<std::string> Endpoints() {
  auto eps = Split(std::getenv("KVD_ETCD_ENDPOINTS"));
  REQUIRE_MESSAGE(eps.size() == 3, "run through tests/cluster/test_etcd_client.py");
  return eps;
}

inline pid_t Pid(size_t i) {
  auto pids = Split(std::getenv("KVD_ETCD_PIDS"));
  REQUIRE(pids.size() > i);
  return static_cast<pid_t>(std::stol(pids[i]));
}

// SIGKILLs a harness-started etcd and returns once its client port refuses
// connections (the last of its threads closed the socket; the process
// leader alone turning zombie is not enough). Polls: a process that is not
// our child offers no event to wait for.
inline void KillAndWait(pid_t pid, const std::string& url) {
  REQUIRE(::kill(pid, SIGKILL) == 0);
  const auto colon = url.rfind(':');
  const int port = std::stoi(url.substr(colon + 1));
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    const int err = errno;
    ::close(fd);
    if (rc != 0 && err == ECONNREFUSED) return;
    ::usleep(2000);
  }
  FAIL("etcd pid " << pid << " still accepts on " << url << " after SIGKILL");
}

// Keys of each case live under their own prefix.
inline std::string Prefix(const char* name) {
  return std::string("/kvd-test/") + name + "/" + std::to_string(::getpid());
}

inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// A loop with a ticking timer so RunUntil can check its predicate.
class Loop {
 public:
  Loop() {
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, &tick_);
    uv_timer_start(&tick_, [](uv_timer_t*) {}, 5, 5);
  }
  ~Loop() {
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);  // let the closed handles' callbacks run
    uv_loop_close(&loop_);
  }
  uv_loop_t* get() { return &loop_; }
  // Runs the loop until pred() holds; false if `limit` passed first.
  bool RunUntil(const std::function<bool()>& pred, milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (!pred()) {
      if (Clock::now() > deadline) return false;
      uv_run(&loop_, UV_RUN_ONCE);
    }
    return true;
  }
  void RunFor(milliseconds d) {
    const auto until = Clock::now() + d;
    RunUntil([&] { return Clock::now() >= until; }, d + milliseconds(1000));
  }
  template <typename T>
  Result<T> Await(const std::function<void(EtcdClient::Callback<T>)>& op, milliseconds limit = milliseconds(10000)) {
    std::optional<Result<T>> out;
    op([&](Result<T> r) { out.emplace(std::move(r)); });
    REQUIRE_MESSAGE(RunUntil([&] { return out.has_value(); }, limit), "no answer from etcd in time");
    return std::move(*out);
  }

 private:
  uv_loop_t loop_;
  uv_timer_t tick_;
};

inline std::unique_ptr<EtcdClient> MakeClient(Loop& loop, std::vector<std::string> eps = Endpoints()) {
  EtcdClientOptions o;
  o.endpoints = std::move(eps);
  o.request_timeout = milliseconds(2000);
  auto c = EtcdClient::Create(loop.get(), o);
  REQUIRE(c.has_value());
  return std::move(*c);
}

// A loopback port that accepts connections (the kernel completes the
// handshake) and never answers: a member cut off by a partition.
struct Blackhole {
  int fd = -1;
  std::string url;
  Blackhole() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 64) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  ~Blackhole() { ::close(fd); }
};

// Index of the etcd leader among the endpoints, by asking each member.
inline size_t FindEtcdLeader(Loop& loop, EtcdClient* c) {
  std::vector<uint64_t> ids;
  uint64_t leader = 0;
  for (size_t i = 0; i < c->endpoints().size(); i++) {
    auto st = loop.Await<EtcdMemberStatus>([&](auto cb) { c->MemberStatus(i, cb); });
    REQUIRE(st.has_value());
    ids.push_back(st->member_id);
    leader = st->leader;
  }
  for (size_t i = 0; i < ids.size(); i++) {
    if (ids[i] == leader) return i;
  }
  FAIL("no etcd leader among the members");
  return 0;
}

}  // namespace etcd_cases
