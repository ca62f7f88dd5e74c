// The primary's side of the replication protocol (ReplPrimary + WalSender)
// against a scripted replica: a plain loopback socket driven frame by frame
// with the codec, so each step of the state machine is seen and each
// hostile move checked (docs/replication.md §4-5).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "kvd/fd.h"
#include "kvd/wal.h"
#include "repl/repl_primary.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using daemon::ReplicationConfig;
using namespace daemon::repl;

struct Rig {
  testing::TempDir dir;
  uv_loop_t loop{};
  std::unique_ptr<WalFeed> feed;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<ReplPrimary> primary;
  testing::RecordingSink sink;

  Rig() {
    REQUIRE(uv_loop_init(&loop) == 0);
    feed = std::make_unique<WalFeed>(&loop);
    EngineOptions o = testing::BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
    o.commit_observer = feed.get();
    engine = testing::MustOpen(o);
    ReplicationConfig c;
    c.listen = "127.0.0.1:0";
    primary = std::make_unique<ReplPrimary>(&loop, c, "p", o.wal_dir);
    feed->Start(engine->last_lsn(), engine->durable_lsn(), [this] { primary->OnFeedUpdate(); });
    REQUIRE(primary->Start(engine.get(), feed.get()).ok());
  }
  ~Rig() {
    primary.reset();
    (void)engine->Close(&sink);
    feed->Close();
    uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);
  }
  void Put(const std::string& k, const std::string& v) {
    auto t = engine->Put(k, v, true);
    REQUIRE(t.has_value());
    REQUIRE(engine->WaitDurable(t->lsn, &sink).ok());
  }
};

// A replica played by the test: a non-blocking socket, read while the loop runs.
struct Peer {
  Rig* rig;
  Fd fd;
  std::string in;
  bool eof = false;

  explicit Peer(Rig* r) : rig(r) {
    fd = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(rig->primary->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::fcntl(fd.get(), F_SETFL, O_NONBLOCK) == 0);
  }
  void Send(MsgType t, Epoch e, const std::string& body) {
    std::string f;
    AppendFrame(&f, t, e, {body});
    SendRaw(f);
  }
  void SendRaw(const std::string& bytes) { REQUIRE(::write(fd.get(), bytes.data(), bytes.size()) == ssize_t(bytes.size())); }
  void Pump() {
    uv_run(&rig->loop, UV_RUN_NOWAIT);
    char buf[65536];
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n > 0) in.append(buf, static_cast<size_t>(n));
    if (n == 0) eof = true;
  }
  // The next frame, running the loop until it arrives (bounded: 10 s).
  Frame Next(std::string* keep) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (true) {
      size_t used = 0;
      auto r = DecodeFrame(in, &used);
      REQUIRE(r.has_value());
      if (r->has_value()) {
        *keep = in.substr(0, used);
        in.erase(0, used);
        size_t again = 0;
        return **DecodeFrame(*keep, &again);
      }
      REQUIRE_MESSAGE(!eof, "the primary closed the connection");
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      Pump();
      ::usleep(1000);
    }
  }
  void WaitEof() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!eof) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      Pump();
      ::usleep(1000);
    }
  }
  std::string NextError() {
    std::string keep;
    Frame f = Next(&keep);
    while (f.type != MsgType::kError) f = Next(&keep);  // WELCOME, WAL, HEARTBEAT before it
    REQUIRE(f.type == MsgType::kError);
    auto e = DecodeError(f.body);
    REQUIRE(e.has_value());
    WaitEof();
    return e->reason;
  }
};

std::string HelloAt(Lsn last) {
  return EncodeHello({kProtocolVersion, "r1", last, last, EpochHistory::Initial()});
}

}  // namespace

TEST_CASE("handshake, then every record from the replica's next LSN, then ACKs move its progress") {
  Rig rig;
  rig.Put("a", "1");
  rig.Put("b", "2");
  Peer peer(&rig);
  peer.Send(MsgType::kHello, 1, HelloAt(1));
  std::string keep;
  Frame f = peer.Next(&keep);
  REQUIRE(f.type == MsgType::kWelcome);
  auto w = DecodeWelcome(f.body);
  REQUIRE(w.has_value());
  CHECK(w->start == StartMode::kStream);
  CHECK(w->start_lsn == 2);
  CHECK(w->primary_name == "p");
  rig.Put("c", "3");
  std::vector<Lsn> lsns;
  std::vector<std::string> keys;
  while (lsns.size() < 2) {
    std::string k;
    Frame wal = peer.Next(&k);
    if (wal.type != MsgType::kWal) continue;
    auto m = DecodeWal(wal.body);
    REQUIRE(m.has_value());
    REQUIRE(ForEachVerifiedRecord(m->records, [&](const WalRecord& rec) {
              lsns.push_back(rec.lsn);
              keys.emplace_back(rec.payload.substr(4, 1));
              return Status::Ok();
            }).ok());
    CHECK(m->header.last_lsn == lsns.back());
  }
  CHECK(lsns == std::vector<Lsn>{2, 3});
  CHECK(keys == std::vector<std::string>{"b", "c"});
  peer.Send(MsgType::kAck, 1, EncodeAck({3, 3, 2, 0}));
  for (int i = 0; i < 200 && rig.primary->StatusJson()["replicas"][0]["durable_lsn"] != 3; ++i) {
    peer.Pump();
    ::usleep(1000);
  }
  const auto st = rig.primary->StatusJson();
  REQUIRE(st["replicas"].size() == 1);
  CHECK(st["replicas"][0]["name"] == "r1");
  CHECK(st["replicas"][0]["state"] == "streaming");
  CHECK(st["replicas"][0]["sent_lsn"] == 3);
  CHECK(st["replicas"][0]["durable_lsn"] == 3);
  CHECK(st["replicas"][0]["applied_lsn"] == 2);
}

TEST_CASE("only an echo of a sent_at this connection sent counts (lag_ms and the cluster's read lease)") {
  Rig rig;
  rig.Put("a", "1");
  Peer peer(&rig);
  peer.Send(MsgType::kHello, 1, HelloAt(1));
  std::string keep;
  REQUIRE(peer.Next(&keep).type == MsgType::kWelcome);
  rig.Put("b", "2");
  uint64_t sent_at = 0;
  while (sent_at == 0) {
    std::string k;
    Frame f = peer.Next(&k);
    if (f.type != MsgType::kWal) continue;
    auto m = DecodeWal(f.body);
    REQUIRE(m.has_value());
    sent_at = m->header.sent_at_us;
  }
  // A previous primary's timestamps, from another host's clock: one far in
  // this primary's future, one before this connection began.
  peer.Send(MsgType::kAck, 1, EncodeAck({2, 2, 2, sent_at + 3'600'000'000ull}));
  peer.Send(MsgType::kAck, 1, EncodeAck({2, 2, 2, 1}));
  for (int i = 0; i < 200 && rig.primary->StatusJson()["replicas"][0]["durable_lsn"] != 2; ++i) {
    peer.Pump();
    ::usleep(1000);
  }
  REQUIRE(rig.primary->StatusJson()["replicas"][0]["durable_lsn"] == 2);
  CHECK(rig.primary->EchoSentAtUs("r1") == 0);
  peer.Send(MsgType::kAck, 1, EncodeAck({2, 2, 2, sent_at}));
  for (int i = 0; i < 200 && rig.primary->EchoSentAtUs("r1") == 0; ++i) {
    peer.Pump();
    ::usleep(1000);
  }
  CHECK(rig.primary->EchoSentAtUs("r1") == sent_at);
}

TEST_CASE("an ACK beyond what was sent is refused as future_lsn") {
  Rig rig;
  rig.Put("a", "1");
  Peer peer(&rig);
  peer.Send(MsgType::kHello, 1, HelloAt(0));
  peer.Send(MsgType::kAck, 1, EncodeAck({10, 10, 10, 0}));
  CHECK(peer.NextError().find("future_lsn") != std::string::npos);
}

TEST_CASE("a replica claiming LSNs the primary never wrote is refused as future_lsn") {
  Rig rig;
  rig.Put("a", "1");
  Peer peer(&rig);
  peer.Send(MsgType::kHello, 1, HelloAt(100));
  CHECK(peer.NextError().find("future_lsn: the replica has LSN 100") != std::string::npos);
}

TEST_CASE("garbage, an ACK before HELLO and a newer epoch each end the connection with a reason") {
  Rig rig;
  {
    Peer peer(&rig);
    peer.SendRaw("PING\r\nPING\r\nPING\r\n");
    CHECK(peer.NextError().find("bad frame") != std::string::npos);
  }
  {
    Peer peer(&rig);
    peer.Send(MsgType::kAck, 1, EncodeAck({0, 0, 0, 0}));
    CHECK(peer.NextError().find("ACK before HELLO") != std::string::npos);
  }
  {
    Peer peer(&rig);
    peer.Send(MsgType::kHello, 9, HelloAt(0));
    CHECK(peer.NextError().find("newer_epoch") != std::string::npos);
  }
  // The listener still serves a well-behaved replica afterwards.
  Peer peer(&rig);
  peer.Send(MsgType::kHello, 1, HelloAt(0));
  std::string keep;
  CHECK(peer.Next(&keep).type == MsgType::kWelcome);
}

TEST_CASE("a replica whose log diverged after the fork point is told to TRUNCATE there") {
  Rig rig;
  for (int i = 1; i <= 3; ++i) rig.Put("k" + std::to_string(i), "v");
  REQUIRE(rig.engine->BeginEpoch(2).ok());  // this node was promoted at LSN 3
  rig.Put("k4", "v");
  rig.Put("k5", "v");
  // The old primary: LSNs 4..6 in epoch 1, which only it has.
  Peer peer(&rig);
  peer.Send(MsgType::kHello, 1, HelloAt(6));
  std::string keep;
  Frame f = peer.Next(&keep);
  REQUIRE(f.type == MsgType::kWelcome);
  CHECK(f.epoch == 2);
  auto w = DecodeWelcome(f.body);
  REQUIRE(w.has_value());
  CHECK(w->start == StartMode::kTruncate);
  CHECK(w->fork_lsn == 3);
  CHECK(w->start_lsn == 4);
  CHECK(w->history.entries() == std::vector<EpochStart>{{1, 1}, {2, 4}});
  // After the cut it comes back at the fork point and streams epoch 2.
  Peer again(&rig);
  again.Send(MsgType::kHello, 1, HelloAt(3));
  f = again.Next(&keep);
  REQUIRE(f.type == MsgType::kWelcome);
  w = DecodeWelcome(f.body);
  REQUIRE(w.has_value());
  CHECK(w->start == StartMode::kStream);
  CHECK(w->start_lsn == 4);
}

TEST_CASE("an old primary's tail is cut even when the new primary wrote nothing since its promotion") {
  // Found by tests/crash/repl_crash_loop.py: the old primary rejoined with
  // one unacknowledged record beyond the promoted replica's last LSN, before
  // any write of the new epoch, and was refused as future_lsn forever.
  Rig rig;
  for (int i = 1; i <= 3; ++i) rig.Put("k" + std::to_string(i), "v");
  REQUIRE(rig.engine->BeginEpoch(2).ok());  // promoted at LSN 3; epoch 2 owns LSN 4 on, none written yet
  Peer peer(&rig);
  peer.Send(MsgType::kHello, 1, HelloAt(4));  // LSN 4 in epoch 1: only the old primary has it
  std::string keep;
  Frame f = peer.Next(&keep);
  REQUIRE(f.type == MsgType::kWelcome);
  auto w = DecodeWelcome(f.body);
  REQUIRE(w.has_value());
  CHECK(w->start == StartMode::kTruncate);
  CHECK(w->fork_lsn == 3);
  CHECK(w->start_lsn == 4);
}

TEST_CASE("a newer epoch in a frame or in a HELLO's history is reported to the owner, which fences") {
  Rig rig;
  std::vector<Epoch> newer;
  rig.primary->set_on_newer_epoch([&](Epoch e, const std::string& why) {
    newer.push_back(e);
    CHECK(why.find("newer_epoch") != std::string::npos);
  });
  {
    Peer peer(&rig);
    peer.Send(MsgType::kHello, 5, HelloAt(0));
    CHECK(peer.NextError().find("newer_epoch: a HELLO frame in epoch 5") != std::string::npos);
  }
  {
    // The frame says epoch 1, the history already knows epoch 7.
    EpochHistory h = EpochHistory::Initial();
    REQUIRE(h.Append(7, 1).ok());
    Peer peer(&rig);
    peer.Send(MsgType::kHello, 1, EncodeHello({kProtocolVersion, "r2", 0, 0, h}));
    CHECK(peer.NextError().find("epoch history reaching epoch 7") != std::string::npos);
  }
  CHECK(newer == std::vector<Epoch>{5, 7});
  {
    // Writes fenced as a switchover fences them (kFenced too): replicas are
    // still fed, the switchover's target above all.
    REQUIRE(rig.engine->SetWriteFence(Status::Fenced("a switchover to r1 is in progress")).ok());
    Peer peer(&rig);
    peer.Send(MsgType::kHello, 1, HelloAt(0));
    std::string keep;
    CHECK(peer.Next(&keep).type == MsgType::kWelcome);
  }
  // Once the owner fenced it as an old primary, no replica is fed: a link
  // open then is closed, and a new one is refused.
  Peer open(&rig);
  open.Send(MsgType::kHello, 1, HelloAt(0));
  std::string keep;
  REQUIRE(open.Next(&keep).type == MsgType::kWelcome);
  rig.primary->FenceAsOldPrimary(Status::Fenced("a newer epoch 7 exists"));
  open.WaitEof();
  Peer peer(&rig);
  peer.Send(MsgType::kHello, 1, HelloAt(0));
  const std::string refusal = peer.NextError();
  CHECK(refusal.find("fenced: this node is an old primary") != std::string::npos);
  CHECK(refusal.find("a newer epoch 7 exists") != std::string::npos);
}

}  // namespace kvd
