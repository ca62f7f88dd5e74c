// Synchronous replication on the primary (docs/replication.md §6): the
// watermark computation, and a ReplPrimary with sync_replicas = 1 against a
// replica played by the test, so each ACK's effect on a waiting write is
// seen: written-but-not-durable releases nothing, durable releases every
// write it covers, too few replicas fail the write after sync_timeout.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include "kvd/fd.h"
#include "repl/repl_primary.h"
#include "repl/sync_gate.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using daemon::ReplicationConfig;
using namespace daemon::repl;
using namespace std::chrono_literals;

TEST_CASE("the watermark is the N-th highest durable LSN, each replica counted once") {
  std::vector<std::string> counting;
  const std::vector<SyncGate::Replica> three{{"a", 10}, {"b", 30}, {"c", 20}};
  CHECK(SyncGate::Watermark(three, 1, &counting) == 30);
  CHECK(counting == std::vector<std::string>{"b"});
  CHECK(SyncGate::Watermark(three, 2, &counting) == 20);
  CHECK(counting == std::vector<std::string>{"b", "c"});
  CHECK(SyncGate::Watermark(three, 3, &counting) == 10);
  CHECK(counting == std::vector<std::string>{"b", "c", "a"});
  // Fewer replicas than required: no watermark at all.
  CHECK(SyncGate::Watermark(three, 4, &counting) == 0);
  CHECK(counting.empty());
  CHECK(SyncGate::Watermark({}, 1, nullptr) == 0);
  // 0 = asynchronous: the gate is off, there is no watermark.
  CHECK(SyncGate::Watermark(three, 0, &counting) == 0);
  // A replica that reconnected is listed twice: it counts once, at its highest.
  const std::vector<SyncGate::Replica> twice{{"a", 5}, {"a", 40}, {"b", 7}};
  CHECK(SyncGate::Watermark(twice, 2, &counting) == 7);
  CHECK(counting == std::vector<std::string>{"a", "b"});
  CHECK(SyncGate::Watermark(twice, 3, nullptr) == 0);
  // Equal LSNs: the order among them does not change the value.
  const std::vector<SyncGate::Replica> equal{{"x", 9}, {"y", 9}, {"z", 3}};
  CHECK(SyncGate::Watermark(equal, 2, nullptr) == 9);
}

struct Rig {
  testing::TempDir dir;
  uv_loop_t loop{};
  std::unique_ptr<WalFeed> feed;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<ReplPrimary> primary;
  testing::RecordingSink sink;

  explicit Rig(std::chrono::milliseconds timeout) {
    REQUIRE(uv_loop_init(&loop) == 0);
    feed = std::make_unique<WalFeed>(&loop);
    EngineOptions o = testing::BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
    o.commit_observer = feed.get();
    engine = testing::MustOpen(o);
    ReplicationConfig c;
    c.listen = "127.0.0.1:0";
    c.sync_replicas = 1;
    c.sync_timeout = timeout;
    primary = std::make_unique<ReplPrimary>(&loop, c, "p", o.wal_dir);
    feed->Start(engine->last_lsn(), engine->durable_lsn(), [this] { primary->OnFeedUpdate(); });
    REQUIRE(primary->Start(engine.get(), feed.get()).ok());
    REQUIRE(primary->StartSync([this] { engine->Poll(&sink); }).ok());
  }
  ~Rig() {
    primary.reset();
    (void)engine->Close(&sink);
    feed->Close();
    uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);
  }
  // A write, durable here: with the gate on it is not acknowledged yet.
  Lsn Put(const std::string& k) {
    auto t = engine->Put(k, "v", false);
    REQUIRE(t.has_value());
    CHECK_FALSE(t->done);
    REQUIRE(engine->WaitDurable(t->lsn, &sink).ok());
    return t->lsn;
  }
  // Runs the loop until pred holds (bounded: 10 s).
  template <typename Pred>
  void RunUntil(Pred pred, int fd = -1) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!pred()) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      uv_run(&loop, UV_RUN_NOWAIT);
      if (fd >= 0) {
        char buf[65536];
        (void)::read(fd, buf, sizeof buf);  // WELCOME, WAL, HEARTBEAT: not needed here
      }
      ::usleep(1000);
    }
  }
};

Fd ConnectReplica(Rig* rig) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(rig->primary->port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::fcntl(fd.get(), F_SETFL, O_NONBLOCK) == 0);
  return fd;
}

void Send(const Fd& fd, MsgType t, const std::string& body) {
  std::string f;
  AppendFrame(&f, t, 1, {body});
  REQUIRE(::write(fd.get(), f.data(), f.size()) == ssize_t(f.size()));
}

}  // namespace

TEST_CASE("a write is acknowledged only once a replica's durable LSN covers it; one ACK releases all it covers") {
  Rig rig(30s);
  const Lsn first = rig.Put("a");
  Fd r = ConnectReplica(&rig);
  Send(r, MsgType::kHello, EncodeHello({kProtocolVersion, "r1", 0, 0, EpochHistory::Initial()}));
  rig.RunUntil([&] { return rig.primary->StatusJson()["sync"]["connected"] == 1; }, r.get());
  const Lsn second = rig.Put("b");
  const Lsn third = rig.Put("c");
  rig.RunUntil([&] { return rig.primary->StatusJson()["replicas"][0]["sent_lsn"] == third; }, r.get());
  CHECK(rig.sink.writes.empty());
  // Written there, not yet durable: nothing is acknowledged.
  Send(r, MsgType::kAck, EncodeAck({third, 0, 0, 0}));
  rig.RunUntil([&] { return rig.primary->StatusJson()["replicas"][0]["written_lsn"] == third; }, r.get());
  rig.engine->Poll(&rig.sink);
  CHECK(rig.sink.writes.empty());
  CHECK(rig.engine->stats().gated_writes == 3);
  CHECK(rig.primary->CountDurable(first) == 0);
  // Durable up to the second: the first two are acknowledged, the third waits.
  Send(r, MsgType::kAck, EncodeAck({third, second, second, 0}));
  rig.RunUntil([&] { return rig.sink.writes.size() == 2; }, r.get());
  CHECK(rig.sink.writes[0].lsn == first);
  CHECK(rig.sink.writes[1].lsn == second);
  CHECK(rig.sink.writes[1].status.ok());
  CHECK(rig.primary->CountDurable(second) == 1);
  CHECK(rig.primary->CountDurable(third) == 0);
  const auto st = rig.primary->StatusJson()["sync"];
  CHECK(st["watermark"] == second);
  CHECK(st["counting"] == nlohmann::json::array({"r1"}));
  CHECK(st["state"] == "ok");
  Send(r, MsgType::kAck, EncodeAck({third, third, third, 0}));
  rig.RunUntil([&] { return rig.sink.writes.size() == 3; }, r.get());
  CHECK(rig.sink.writes[2].status.ok());
}

TEST_CASE("an ACK claiming more durable than written is refused: the gate never trusts it") {
  Rig rig(30s);
  const Lsn lsn = rig.Put("a");
  Fd r = ConnectReplica(&rig);
  Send(r, MsgType::kHello, EncodeHello({kProtocolVersion, "r1", 0, 0, EpochHistory::Initial()}));
  rig.RunUntil([&] { return rig.primary->StatusJson()["replicas"][0]["sent_lsn"] == lsn; }, r.get());
  Send(r, MsgType::kAck, EncodeAck({0, lsn, 0, 0}));
  rig.RunUntil([&] { return rig.primary->StatusJson()["replicas"].empty(); }, r.get());
  rig.engine->Poll(&rig.sink);
  CHECK(rig.sink.writes.empty());
  CHECK(rig.primary->StatusJson()["sync"]["watermark"] == 0);
}

TEST_CASE("with too few replicas a write fails after sync_timeout, naming how many there are") {
  Rig rig(150ms);
  const auto t0 = std::chrono::steady_clock::now();
  const Lsn lsn = rig.Put("a");
  rig.RunUntil([&] { return !rig.sink.writes.empty(); });
  CHECK(std::chrono::steady_clock::now() - t0 >= 150ms);
  REQUIRE(rig.sink.writes.size() == 1);
  CHECK(rig.sink.writes[0].lsn == lsn);
  CHECK(rig.sink.writes[0].status.code() == Code::kIOError);
  CHECK(rig.sink.writes[0].status.message() == "not enough synchronous replicas (have 0 of 1)");
  CHECK(rig.engine->state().Get("a").has_value());  // durable and applied here; only the acknowledgement failed
  const auto st = rig.primary->StatusJson()["sync"];
  CHECK(st["state"] == "too_few_replicas");
  CHECK(st["timeouts"] == 1);
  // sync_replicas = 0 at run time: the next write is acknowledged at once.
  REQUIRE(rig.primary->ConfigureSync(0, 150ms).ok());
  auto t = rig.engine->Put("b", "v", false);
  REQUIRE(t.has_value());
  REQUIRE(rig.engine->WaitDurable(t->lsn, &rig.sink).ok());
  rig.engine->Poll(&rig.sink);
  REQUIRE(rig.sink.writes.size() == 2);
  CHECK(rig.sink.writes[1].status.ok());
}

TEST_CASE("with an eligible set (the cluster's published sync set) only its members' ACKs count") {
  Rig rig(30s);
  rig.primary->SetSyncEligible(std::vector<std::string>{"member"});
  Fd r = ConnectReplica(&rig);
  Send(r, MsgType::kHello, EncodeHello({kProtocolVersion, "outsider", 0, 0, EpochHistory::Initial()}));
  rig.RunUntil([&] { return rig.primary->Connected().size() == 1; }, r.get());
  const Lsn lsn = rig.Put("a");
  rig.RunUntil([&] { return rig.primary->StatusJson()["replicas"][0]["sent_lsn"] == lsn; }, r.get());
  Send(r, MsgType::kAck, EncodeAck({lsn, lsn, lsn, 0}));
  rig.RunUntil([&] { return rig.primary->StatusJson()["replicas"][0]["durable_lsn"] == lsn; }, r.get());
  rig.engine->Poll(&rig.sink);
  CHECK(rig.sink.writes.empty());  // durable on a replica outside the set: not acknowledged
  CHECK(rig.primary->StatusJson()["sync"]["connected"] == 0);
  // Published now: the same replica's ACK releases the write.
  rig.primary->SetSyncEligible(std::vector<std::string>{"member", "outsider"});
  rig.RunUntil([&] { return rig.sink.writes.size() == 1; }, r.get());
  CHECK(rig.sink.writes[0].status.ok());
}

}  // namespace kvd
