// The replication frame and message codec (docs/replication.md §3-4):
// round trips, and hostile bytes refused with a message that says why.
#include <doctest/doctest.h>

#include "kvd/wal.h"
#include "repl/repl_codec.h"

using namespace kvd;
using namespace kvd::daemon::repl;

namespace {

std::string OneFrame(MsgType t, Epoch e, std::string_view body) {
  std::string out;
  AppendFrame(&out, t, e, {body});
  return out;
}

Frame MustDecode(const std::string& bytes) {
  size_t consumed = 0;
  auto r = DecodeFrame(bytes, &consumed);
  REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
  REQUIRE(r->has_value());
  CHECK(consumed == bytes.size());
  return **r;
}

Status FrameError(const std::string& bytes) {
  size_t consumed = 0;
  auto r = DecodeFrame(bytes, &consumed);
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

EpochHistory TwoEpochs() {
  EpochHistory h = EpochHistory::Initial();
  REQUIRE(h.Append(3, 40).ok());
  return h;
}

}  // namespace

TEST_CASE("a frame carries type, epoch and body under its CRC; the layout is docs/replication.md §3") {
  const std::string f = OneFrame(MsgType::kHeartbeat, 7, "abc");
  REQUIRE(f.size() == kFrameOverhead + 3);
  CHECK(static_cast<uint8_t>(f[0]) == 16);  // length: type + epoch + body + crc
  CHECK(f[4] == 5);
  CHECK(static_cast<uint8_t>(f[5]) == 7);
  CHECK(f.substr(13, 3) == "abc");
  const Frame d = MustDecode(f);
  CHECK(d.type == MsgType::kHeartbeat);
  CHECK(d.epoch == 7);
  CHECK(d.body == "abc");
}

TEST_CASE("frames arrive in pieces: nothing is decoded until the whole frame is there") {
  std::string two = OneFrame(MsgType::kAck, 1, EncodeAck({5, 4, 3, 99}));
  AppendFrame(&two, MsgType::kHeartbeat, 1, {EncodeHeartbeat({9, 8, 7})});
  const size_t first = kFrameOverhead + 32;
  for (size_t n = 0; n < first; ++n) {
    size_t consumed = 1;
    auto r = DecodeFrame(std::string_view(two).substr(0, n), &consumed);
    REQUIRE(r.has_value());
    CHECK_FALSE(r->has_value());
    CHECK(consumed == 0);
  }
  size_t consumed = 0;
  auto r = DecodeFrame(two, &consumed);
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  CHECK(consumed == first);
  auto ack = DecodeAck((*r)->body);
  REQUIRE(ack.has_value());
  CHECK(ack->written_lsn == 5);
  CHECK(ack->durable_lsn == 4);
  CHECK(ack->applied_lsn == 3);
  CHECK(ack->echo_sent_at_us == 99);
  auto hb = DecodeHeartbeat(MustDecode(two.substr(first)).body);
  REQUIRE(hb.has_value());
  CHECK(hb->last_lsn == 9);
  CHECK(hb->sent_at_us == 7);
}

TEST_CASE("every flipped bit of a frame is refused (CRC, length or type), never decoded as another frame") {
  const std::string f = OneFrame(MsgType::kHello, 2, EncodeHello({1, "replica-a", 10, 9, TwoEpochs()}));
  for (size_t i = 0; i < f.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = f;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      size_t consumed = 0;
      auto r = DecodeFrame(bad, &consumed);
      // A longer length waits for more bytes; everything else is an error.
      if (r.has_value()) {
        CHECK_MESSAGE(!r->has_value(), "offset " << i << " bit " << bit);
        CHECK(i < 4);
      }
    }
  }
  std::string bad = f;
  bad[20] = static_cast<char>(bad[20] ^ 1);
  const Status st = FrameError(bad);
  CHECK(st.IsCorruption());
  CHECK(st.message().find("CRC") != std::string::npos);
}

TEST_CASE("bad lengths and garbage are refused at once with a reason") {
  std::string small = OneFrame(MsgType::kAck, 1, "");
  small[0] = 12;
  CHECK(FrameError(small).message().find("out of range") != std::string::npos);
  std::string huge(4, '\xff');
  CHECK(FrameError(huge).message().find("out of range") != std::string::npos);
  // A client speaking another protocol to the replication port.
  CHECK(FrameError("GET key\r\n").message().find("out of range") != std::string::npos);
  std::string unknown = OneFrame(MsgType::kAck, 1, "");
  unknown[4] = 42;
  CHECK(FrameError(unknown.substr(0, 5)).message().find("unknown message type 42") != std::string::npos);
  unknown[4] = 0;
  CHECK(FrameError(unknown).message().find("unknown message type 0") != std::string::npos);
}

TEST_CASE("HELLO and WELCOME round-trip with their epoch histories") {
  auto h = DecodeHello(EncodeHello({1, "replica-a", 10, 9, TwoEpochs()}));
  REQUIRE_MESSAGE(h.has_value(), h.error().ToString());
  CHECK(h->protocol_version == 1);
  CHECK(h->node_name == "replica-a");
  CHECK(h->last_lsn == 10);
  CHECK(h->durable_lsn == 9);
  CHECK(h->history == TwoEpochs());

  Welcome w;
  w.primary_name = "p";
  w.start = StartMode::kStream;
  w.start_lsn = 11;
  w.history = TwoEpochs();
  auto d = DecodeWelcome(EncodeWelcome(w));
  REQUIRE(d.has_value());
  CHECK(d->primary_name == "p");
  CHECK(d->start == StartMode::kStream);
  CHECK(d->start_lsn == 11);
  CHECK(d->history == TwoEpochs());
}

TEST_CASE("bodies that do not decode exactly are refused: short, trailing bytes, broken invariants") {
  const std::string hello = EncodeHello({1, "n", 10, 9, TwoEpochs()});
  for (size_t n = 0; n < hello.size(); ++n) {
    auto r = DecodeHello(hello.substr(0, n));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message().find("bad HELLO message") != std::string::npos);
  }
  auto trailing = DecodeHello(hello + "x");
  REQUIRE_FALSE(trailing.has_value());
  CHECK(trailing.error().message().find("1 bytes after the end") != std::string::npos);
  CHECK_FALSE(DecodeHello(EncodeHello({1, "n", 5, 9, TwoEpochs()})).has_value());  // durable > last
  // An epoch history whose epochs go back.
  std::string backwards = EncodeHello({1, "n", 10, 9, TwoEpochs()});
  backwards[backwards.size() - 16] = 0;  // epoch 3 -> 0
  CHECK(DecodeHello(backwards).error().message().find("epoch history") != std::string::npos);
  // A count that promises more entries than there are bytes.
  std::string many = EncodeHello({1, "n", 10, 9, TwoEpochs()});
  many[many.size() - 36] = 100;
  CHECK(DecodeHello(many).error().message().find("100 entries") != std::string::npos);
  CHECK_FALSE(DecodeAck(EncodeAck({5, 6, 5, 0})).has_value());   // durable > written
  CHECK_FALSE(DecodeAck(EncodeAck({5, 4, 3, 0}) + "z").has_value());
  Welcome w;
  w.history = TwoEpochs();
  std::string welcome = EncodeWelcome(w);
  welcome[2] = 9;  // start mode
  CHECK(DecodeWelcome(welcome).error().message().find("start mode 9") != std::string::npos);
}

TEST_CASE("a HELLO without history asks for a full resync (§4.1): only with last LSN 0") {
  auto d = DecodeHello(EncodeHello({1, "n", 0, 0, EpochHistory()}));
  REQUIRE_MESSAGE(d.has_value(), d.error().ToString());
  CHECK(d->history.empty());
  CHECK(d->last_lsn == 0);
  auto bad = DecodeHello(EncodeHello({1, "n", 7, 7, EpochHistory()}));
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message().find("no epoch history but last LSN 7") != std::string::npos);
  Welcome w;  // a WELCOME always carries the primary's history
  CHECK(DecodeWelcome(EncodeWelcome(w)).error().message().find("0 entries") != std::string::npos);
}

TEST_CASE("a WAL message carries whole records after its header; empty or inverted ranges are refused") {
  std::string records;
  AppendPutRecord(&records, 4, 1, "k", "v");
  AppendDelRecord(&records, 5, 1, "k");
  WalHeader h{4, 5, 3, 1234};
  const std::string message = EncodeWalHeader(h) + records;  // the decoded records view into it
  auto m = DecodeWal(message);
  REQUIRE(m.has_value());
  CHECK(m->header.first_lsn == 4);
  CHECK(m->header.last_lsn == 5);
  CHECK(m->header.primary_durable_lsn == 3);
  CHECK(m->header.sent_at_us == 1234);
  CHECK(m->records == records);
  CHECK_FALSE(DecodeWal(EncodeWalHeader(h)).has_value());
  CHECK_FALSE(DecodeWal(EncodeWalHeader({6, 5, 0, 0}) + records).has_value());
  CHECK_FALSE(DecodeWal(EncodeWalHeader({0, 5, 0, 0}) + records).has_value());
  CHECK_FALSE(DecodeWal("short").has_value());
}

TEST_CASE("ERROR carries a status code and a reason") {
  auto e = DecodeError(EncodeError({Code::kInvalidArgument, "stale_epoch"}));
  REQUIRE(e.has_value());
  CHECK(e->code == Code::kInvalidArgument);
  CHECK(e->reason == "stale_epoch");
}
