// WalReceiver's ACKs (docs/replication.md §4.4): a replica ACKs each
// fdatasync that moved its durable LSN, once; records it merely wrote cost
// no ACK of their own. The primary is played by the test; the replica's feed
// wakes the loop for written records too (a primary's setting), so an ACK
// per feed update would show up as an ACK with written > durable. The epoch
// its frames carry leaves out a takeover fence not yet confirmed.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "kvd/crc32c.h"
#include "kvd/fault_env.h"
#include "kvd/fd.h"
#include "kvd/snapshot.h"
#include "kvd/wal.h"
#include "repl/snapshot_messages.h"
#include "repl/wal_feed.h"
#include "repl/wal_receiver.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using namespace daemon::repl;

// A primary that listens on 127.0.0.1, accepts the replica and trades frames
// while the loop runs (bounded waits: 10 s).
struct FakePrimary {
  uv_loop_t* loop;
  Fd listener, conn;
  uint16_t port = 0;
  std::string in;

  explicit FakePrimary(uv_loop_t* l) : loop(l) {
    listener = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener.get(), 4) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
  }
  void Pump() {
    uv_run(loop, UV_RUN_NOWAIT);
    if (!conn.valid()) {
      const int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd >= 0) conn = Fd(fd);
      return;
    }
    char buf[65536];
    const ssize_t n = ::read(conn.get(), buf, sizeof buf);
    if (n > 0) in.append(buf, static_cast<size_t>(n));
    if (n == 0) Drop();  // the replica closed the link: its reconnect is accepted next
  }
  // Ends the link from this side (or forgets a closed one).
  void Drop() {
    conn = Fd();
    in.clear();
  }
  // The replica's HELLO on its next connection.
  Hello NextHello() {
    std::string keep;
    Frame f = Next(&keep);
    REQUIRE(f.type == MsgType::kHello);
    auto h = DecodeHello(f.body);
    REQUIRE(h.has_value());
    return *h;
  }
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
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      Pump();
      ::usleep(500);
    }
  }
  Ack NextAck() {
    std::string keep;
    Frame f = Next(&keep);
    while (f.type != MsgType::kAck) f = Next(&keep);
    auto a = DecodeAck(f.body);
    REQUIRE(a.has_value());
    return *a;
  }
  // The first ACK that reports durable LSN `durable`; the ACK timer's ACKs
  // before it (every 200 ms, whatever happened) report `before`.
  Ack NextAckDurable(Lsn durable, Lsn before) {
    Ack a = NextAck();
    for (int i = 0; i < 100 && a.durable_lsn != durable; ++i) {
      CHECK(a.durable_lsn == before);
      a = NextAck();
    }
    CHECK(a.durable_lsn == durable);
    return a;
  }
  // The first ACK that reports `written` written (the feed woke the loop).
  Ack NextAckWritten(Lsn written) {
    Ack a = NextAck();
    while (a.written_lsn < written) a = NextAck();
    return a;
  }
  void Send(MsgType t, Epoch e, std::initializer_list<std::string_view> body) {
    std::string f;
    AppendFrame(&f, t, e, body);
    REQUIRE(::write(conn.get(), f.data(), f.size()) == ssize_t(f.size()));
  }
  // One WAL message: puts of k<lsn> = value for LSNs first..last.
  void SendRecords(Epoch e, Lsn first, Lsn last, const std::string& value) {
    std::string records;
    for (Lsn l = first; l <= last; ++l) AppendPutRecord(&records, l, e, "k" + std::to_string(l), value);
    Send(MsgType::kWal, e, {EncodeWalHeader({first, last, last, 7}), records});
  }
  // A fresh replica streams records 1..last ("old") until they are durable
  // there; then the link drops, and on the next connection this primary says
  // the log forked after `fork` (a TRUNCATE welcome).
  void StreamThenFork(Epoch e, const EpochHistory& history, Lsn last, Lsn fork) {
    CHECK(NextHello().last_lsn == 0);
    Send(MsgType::kWelcome, e, {EncodeWelcome({"p", StartMode::kStream, 1, 0, history})});
    SendRecords(e, 1, last, "old");
    NextAckDurable(last, 0);
    Drop();
    CHECK(NextHello().durable_lsn == last);
    Send(MsgType::kWelcome, e, {EncodeWelcome({"p", StartMode::kTruncate, fork + 1, fork, history})});
  }
};

// A replica's engine and WAL feed on a loop, driven as the daemon drives
// them: once per loop turn, finished commits are taken (the engine's durable
// and applied LSNs move) and the next one is started, so a WAL message's
// records are one group. Its FaultEnv can hold fdatasyncs.
struct ReplicaNode {
  testing::TempDir dir;
  testing::RecordingSink sink, sink_after_cut;  // a sink sees each LSN once
  CompletionSink* current_sink = &sink;
  FaultEnv env{Env::Default()};
  uv_loop_t loop{};
  std::unique_ptr<WalFeed> feed;
  std::unique_ptr<Engine> engine;
  uv_prepare_t turn{};
  Epoch epoch = 0;

  ReplicaNode() {
    REQUIRE(uv_loop_init(&loop) == 0);
    feed = std::make_unique<WalFeed>(&loop);
    EngineOptions o = testing::BasicOptions(&env, dir, DurabilityMode::kSync);
    o.commit_observer = feed.get();
    engine = testing::MustOpen(o);
    epoch = engine->current_epoch();
    engine->SetDeferredCommitStart(true);
    REQUIRE(uv_prepare_init(&loop, &turn) == 0);
    turn.data = this;
    uv_prepare_start(&turn, [](uv_prepare_t* p) {
      auto* self = static_cast<ReplicaNode*>(p->data);
      self->engine->Poll(self->current_sink);
      self->engine->StartCommits();
    });
    feed->Start(engine->last_lsn(), engine->durable_lsn(), nullptr);
  }
  // fdatasyncs are held from now until the returned file is removed.
  std::string HoldSyncs() {
    const std::string stall = dir.Sub("stall");
    { auto f = Env::Default()->NewWritableFile(stall, OpenMode::kCreateTruncate); REQUIRE(f.has_value()); }
    env.StallSyncWhileFileExists(stall);
    return stall;
  }
  // Pumps `primary` (and so the loop) until `done` holds (10 s at most).
  template <typename Primary, typename Done>
  static void PumpUntil(Primary& primary, Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      primary.Pump();
      ::usleep(500);
    }
  }
  template <typename Primary>
  void WaitForHeldSync(Primary& primary) {
    PumpUntil(primary, [&] { return env.syncs_stalled_now() > 0; });
  }
  // The receiver under test; the feed wakes it for records written too
  // (see the top of this file).
  std::unique_ptr<WalReceiver> MakeReceiver(uint16_t primary_port) {
    auto rx = std::make_unique<WalReceiver>(&loop, daemon::HostPort{"127.0.0.1", primary_port}, "r1");
    WalReceiver* r = rx.get();
    feed->set_on_update([this, r] { r->OnLocalDurable(feed->durable_lsn()); }, /*wake_on_written=*/true);
    return rx;
  }
  // After the receiver is gone.
  void Close() {
    uv_close(reinterpret_cast<uv_handle_t*>(&turn), nullptr);
    CHECK(engine->Close(current_sink).ok());
    feed->Close();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
};

TEST_CASE("a replica ACKs each fdatasync once, and sends no ACK for records merely written") {
  ReplicaNode node;
  Engine* engine = node.engine.get();
  const Epoch epoch = node.epoch;
  FakePrimary primary(&node.loop);
  auto rx = node.MakeReceiver(primary.port);
  rx->Start(engine);

  std::string keep;
  Frame hello = primary.Next(&keep);
  REQUIRE(hello.type == MsgType::kHello);
  primary.Send(MsgType::kWelcome, epoch,
               {EncodeWelcome({"p", StartMode::kStream, engine->last_lsn() + 1, 0, engine->epoch_history()})});
  // The ACK timer's first ACK (none was sent on this link yet); its next
  // one is 200 ms (the ACK interval) later.
  const Ack first = primary.NextAck();
  CHECK(first.durable_lsn == 0);

  std::string records;
  for (Lsn l = 1; l <= 3; ++l) AppendPutRecord(&records, l, epoch, "k" + std::to_string(l), "value");
  const std::string stall = node.HoldSyncs();
  primary.Send(MsgType::kWal, epoch, {EncodeWalHeader({1, 3, 3, 7}), records});
  // The records are written (a feed update: the loop wakes) and their
  // fdatasync is held: nothing is ACKed while the loop runs.
  node.WaitForHeldSync(primary);
  for (int i = 0; i < 20; ++i) primary.Pump();
  CHECK(node.feed->last_lsn() == 3);  // the loop saw the records written
  CHECK(primary.in.empty());
  // Made durable (another feed update): ACKed, once.
  REQUIRE(::unlink(stall.c_str()) == 0);
  const Ack next = primary.NextAckDurable(3, 0);
  CHECK(next.written_lsn == 3);
  CHECK(next.echo_sent_at_us == 7);

  rx.reset();
  node.Close();
}

TEST_CASE("after its log is cut, a replica ACKs as durable only what an fdatasync of the new records covered") {
  // Records 4 and 5 were durable here, then cut (a TRUNCATE welcome); the
  // new 4 and 5 are written but their fdatasync is held. An ACK that still
  // counted the old records' fdatasync would tell a synchronous primary that
  // the new ones are durable here.
  ReplicaNode node;
  Engine* engine = node.engine.get();
  const Epoch epoch = node.epoch;
  FakePrimary primary(&node.loop);
  auto rx = node.MakeReceiver(primary.port);
  // As the daemon cuts a log (Replication::RewindLog): the engine, then the feed.
  int rewinds = 0;
  rx->set_role_hooks({[&] { return epoch; }, [](Epoch) { return Status::Ok(); },
                      [&](Lsn fork, Lsn) -> Status {
                        auto r = engine->RewindTo(fork, node.dir.Sub("diverged.broken"), node.current_sink);
                        if (!r) return r.error();
                        node.feed->Rewind(engine->last_lsn());
                        node.current_sink = &node.sink_after_cut;
                        ++rewinds;
                        return Status::Ok();
                      },
                      [] {}, nullptr});
  rx->Start(engine);
  // The primary's log forked after LSN 3: on the next connection it says so.
  primary.StreamThenFork(epoch, engine->epoch_history(), 5, 3);
  const Hello after_cut = primary.NextHello();  // the receiver reconnects with the shorter log
  REQUIRE(rewinds == 1);
  CHECK(after_cut.last_lsn == 3);
  CHECK(after_cut.durable_lsn == 3);
  primary.Send(MsgType::kWelcome, epoch, {EncodeWelcome({"p", StartMode::kStream, 4, 0, engine->epoch_history()})});

  const std::string stall = node.HoldSyncs();
  primary.SendRecords(epoch, 4, 5, "new");
  const Ack held = primary.NextAckWritten(5);  // their fdatasync cannot return
  CHECK(held.durable_lsn == 3);
  node.WaitForHeldSync(primary);  // the held fdatasync is the new records'
  REQUIRE(::unlink(stall.c_str()) == 0);
  primary.NextAckDurable(5, 3);
  // The ACK leaves when the fdatasync returns; the records are applied when
  // the loop takes the commit's result.
  ReplicaNode::PumpUntil(primary, [&] { return engine->applied_lsn() >= 5; });
  auto k5 = engine->state().Get("k5");
  REQUIRE(k5.has_value());
  CHECK(*k5 == "new");

  rx.reset();
  node.Close();
}

TEST_CASE("after a resync from the primary's snapshot, a replica ACKs as durable only what an fdatasync after it "
          "covered") {
  // Records 1-8 were durable here; the primary's log forked after 3 inside
  // what this node cannot cut, so it resyncs from the primary's snapshot at
  // LSN 5. The new 6 and 7 are written with their fdatasync held. An ACK
  // that still counted the old log's fdatasync (up to 8) would tell a
  // synchronous primary that they are durable here.
  ReplicaNode node;
  Engine* engine = node.engine.get();
  const Epoch epoch = node.epoch;
  FakePrimary primary(&node.loop);
  auto rx = node.MakeReceiver(primary.port);
  rx->SetStorage(&node.env, node.dir.Sub("wal"), node.dir.Sub("snap"));
  int resets = 0;
  rx->set_role_hooks({[&] { return epoch; }, [](Epoch) { return Status::Ok(); },
                      [](Lsn, Lsn) { return Status::Unsupported("the divergent tail is inside a snapshot"); },
                      [&] {
                        node.feed->Rewind(engine->last_lsn());
                        node.current_sink = &node.sink_after_cut;
                        ++resets;
                      },
                      nullptr});
  rx->Start(engine);
  primary.StreamThenFork(epoch, engine->epoch_history(), 8, 3);
  CHECK(primary.NextHello().last_lsn == 0);  // reconnected asking for a whole state: a snapshot
  State primary_state;
  for (int i = 1; i <= 5; ++i) primary_state.Put("k" + std::to_string(i), "new");
  auto info = WriteSnapshotFile(Env::Default(), node.dir.Sub("primary.kvs"), primary_state, 5);
  REQUIRE(info.has_value());
  auto bytes = Env::Default()->ReadFileToString(info->path);
  REQUIRE(bytes.has_value());
  REQUIRE(bytes->size() <= kSnapshotChunkBytes);
  primary.Send(MsgType::kWelcome, epoch, {EncodeWelcome({"p", StartMode::kSnapshot, 6, 0, engine->epoch_history()})});
  primary.Send(MsgType::kSnapshotBegin, epoch, {EncodeSnapshotBegin({5})});
  primary.Send(MsgType::kSnapshotChunk, epoch, {*bytes});
  primary.Send(MsgType::kSnapshotEnd, epoch,
               {EncodeSnapshotEnd({bytes->size(), Crc32c(bytes->data(), bytes->size())})});
  ReplicaNode::PumpUntil(primary, [&] { return resets == 1; });
  REQUIRE(engine->last_lsn() == 5);
  REQUIRE(engine->durable_lsn() == 5);

  const std::string stall = node.HoldSyncs();
  primary.SendRecords(epoch, 6, 7, "newer");
  CHECK(primary.NextAckWritten(7).durable_lsn == 5);  // their fdatasync cannot return
  node.WaitForHeldSync(primary);  // the held fdatasync is the new records'
  REQUIRE(::unlink(stall.c_str()) == 0);
  primary.NextAckDurable(7, 5);
  ReplicaNode::PumpUntil(primary, [&] { return engine->applied_lsn() >= 7; });
  CHECK(engine->state().Get("k3") == std::optional<std::string>("new"));
  CHECK(engine->state().Get("k7") == std::optional<std::string>("newer"));
  CHECK_FALSE(engine->state().Get("k8").has_value());

  rx.reset();
  node.Close();
}

TEST_CASE("a takeover fence still provisional refuses the old primary's records without showing it the new epoch") {
  // seen: what the replica refuses below; announced: what its frames carry
  // (Replication::FenceEpoch keeps them apart until etcd answered).
  ReplicaNode node;
  Engine* engine = node.engine.get();
  const Epoch epoch = node.epoch;
  Epoch seen = epoch, announced = epoch;
  FakePrimary primary(&node.loop);
  auto rx = node.MakeReceiver(primary.port);
  rx->set_role_hooks({[&] { return seen; }, [&](Epoch e) { seen = announced = e; return Status::Ok(); },
                      [](Lsn, Lsn) { return Status::Unsupported("no cut here"); }, [] {}, [&] { return announced; }});
  rx->Start(engine);
  CHECK(primary.NextHello().last_lsn == 0);
  primary.Send(MsgType::kWelcome, epoch, {EncodeWelcome({"p", StartMode::kStream, 1, 0, engine->epoch_history()})});
  primary.SendRecords(epoch, 1, 2, "v");
  primary.NextAckDurable(2, 0);

  // The fence of `epoch`, provisional: the next records are refused, and
  // every frame the primary reads (ACKs, the refusal, the next HELLO)
  // carries the old epoch, which fences nobody.
  seen = epoch + 1;
  primary.SendRecords(epoch, 3, 3, "v");
  std::string keep;
  Frame f = primary.Next(&keep);
  while (f.type == MsgType::kAck) {
    CHECK(f.epoch == epoch);
    f = primary.Next(&keep);
  }
  REQUIRE(f.type == MsgType::kError);
  CHECK(f.epoch == epoch);
  CHECK(DecodeError(f.body)->reason.find("stale_epoch") != std::string::npos);
  CHECK(engine->last_lsn() == 2);
  primary.Drop();
  f = primary.Next(&keep);
  REQUIRE(f.type == MsgType::kHello);
  CHECK(f.epoch == epoch);

  // Confirmed (the takeover went ahead): the refusal carries the new epoch.
  announced = epoch + 1;
  primary.Send(MsgType::kWelcome, epoch, {EncodeWelcome({"p", StartMode::kStream, 3, 0, engine->epoch_history()})});
  f = primary.Next(&keep);
  while (f.type == MsgType::kAck) f = primary.Next(&keep);
  REQUIRE(f.type == MsgType::kError);
  CHECK(f.epoch == epoch + 1);
  CHECK(engine->last_lsn() == 2);

  rx.reset();
  node.Close();
}

TEST_CASE("a receiver destroyed while its connect is in flight is never called back") {
  // kvd drains its loop after the server (and its receivers) are gone: a
  // replica stopped while connecting to its primary must not be reached by
  // that connect's callback. Under ASan a use after free fails this.
  ReplicaNode node;
  FakePrimary primary(&node.loop);
  auto rx = node.MakeReceiver(primary.port);
  rx->Start(node.engine.get());
  CHECK(rx->StatusJson()["state"] == "connecting");
  rx.reset();
  uv_run(&node.loop, UV_RUN_NOWAIT);  // the connect's callback (UV_ECANCELED) and the socket's close
  node.Close();
}

}  // namespace
}  // namespace kvd
