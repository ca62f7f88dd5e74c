// The acknowledgement gate with a fake consumer that moves the watermark: a
// write completes only when both the local durable LSN and the watermark
// cover it; FailGatedWrites fails what the gate holds, in LSN order;
// DropAckGate (a primary stepping down) fails every write waiting then.
#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>

#include "kvd/fault_env.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::BasicOptions;
using testing::MustOpen;
using testing::NotifyCounter;
using testing::RecordingSink;
using testing::TempDir;
using Op = FaultEnv::Op;

std::vector<Lsn> DoneLsns(const RecordingSink& sink) {
  std::vector<Lsn> out;
  for (const auto& d : sink.writes) out.push_back(d.lsn);
  return out;
}

// A sync-mode engine that reports its commits to `notes`, with the gate on.
std::unique_ptr<Engine> OpenGated(const TempDir& dir, NotifyCounter& notes) {
  auto o = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
  o.notify = notes.Hook();
  auto e = MustOpen(o);
  REQUIRE(e->SetAckWatermarkRequired(true).ok());
  return e;
}

// Polls on every notify until `done` holds (at most 100 notifies of 10 s each).
template <typename Pred>
void PollUntil(Engine* e, NotifyCounter& notes, RecordingSink* sink, Pred done) {
  for (int i = 0; i < 100; ++i) {
    const uint64_t seen = notes.count();
    e->Poll(sink);
    if (done()) return;
    REQUIRE(notes.WaitPastFor(seen, std::chrono::seconds(10)));
  }
  FAIL("the engine never got there");
}

// Polls until an fdatasync after `syncs_before` returned. Counting notifies
// alone is not enough: a notify of the commit before may still arrive after
// WaitDurable returned.
void PollUntilSynced(Engine* e, NotifyCounter& notes, RecordingSink* sink, uint64_t syncs_before) {
  PollUntil(e, notes, sink, [&] { return e->stats().syncs > syncs_before; });
}

TEST_CASE("sync mode: a locally durable write waits for the watermark; reads already see it") {
  TempDir dir;
  auto e = MustOpen(BasicOptions(Env::Default(), dir, DurabilityMode::kSync));
  RecordingSink sink;
  REQUIRE(e->SetAckWatermarkRequired(true).ok());
  auto t1 = e->Put("a", "1", false);
  auto t2 = e->Put("b", "2", false);
  REQUIRE(t1.has_value());
  REQUIRE(t2.has_value());
  CHECK_FALSE(t1->done);
  REQUIRE(e->WaitDurable(t2->lsn, &sink).ok());
  CHECK(e->durable_lsn() == 2);
  CHECK(sink.writes.empty());                    // durable, not acknowledged
  CHECK(e->state().Get("a").has_value());        // applied when durable, as without the gate
  CHECK(e->ack_lsn() == 0);
  EngineStats st = e->stats();
  CHECK(st.ack_gate);
  CHECK(st.gated_writes == 2);

  e->AdvanceAckWatermark(1);
  CHECK(sink.writes.empty());  // reported by the next Poll, not before
  e->Poll(&sink);
  CHECK(DoneLsns(sink) == std::vector<Lsn>{1});
  CHECK(sink.writes[0].status.ok());
  CHECK(e->ack_lsn() == 1);
  e->AdvanceAckWatermark(2);
  e->Poll(&sink);
  CHECK(DoneLsns(sink) == std::vector<Lsn>{1, 2});
  CHECK(sink.writes[1].status.ok());
  CHECK(e->stats().gated_writes == 0);

  e->AdvanceAckWatermark(1);  // never goes back
  CHECK(e->stats().ack_watermark == 2);
  REQUIRE(e->Close(&sink).ok());
}

TEST_CASE("batch and none mode: gated writes are not acknowledged at once and wait for an fdatasync") {
  for (DurabilityMode mode : {DurabilityMode::kBatch, DurabilityMode::kNone}) {
    CAPTURE(ToString(mode));
    TempDir dir;
    FaultEnv env(Env::Default());
    auto o = BasicOptions(&env, dir, mode);
    o.durability.batch_size = 1000;
    o.durability.flush_interval = std::chrono::hours(1);
    auto e = MustOpen(o);
    RecordingSink sink;
    REQUIRE(e->SetAckWatermarkRequired(true).ok());
    const uint64_t syncs = env.count(Op::kSync);
    auto t = e->Put("k", "v", false);
    REQUIRE(t.has_value());
    CHECK_FALSE(t->done);                    // without the gate: done at once
    CHECK(e->state().Get("k").has_value());  // visible at once, as the mode says
    REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
    CHECK(env.count(Op::kSync) > syncs);
    CHECK(sink.writes.empty());
    e->AdvanceAckWatermark(t->lsn);
    e->Poll(&sink);
    REQUIRE(sink.writes.size() == 1);
    CHECK(sink.writes[0].lsn == t->lsn);
    CHECK(sink.writes[0].status.ok());

    // Off again: acknowledged at once, as before.
    REQUIRE(e->SetAckWatermarkRequired(false).ok());
    auto t2 = e->Put("k2", "v", false);
    CHECK(t2->done);
    REQUIRE(e->Close(&sink).ok());
  }
}

TEST_CASE("FailGatedWrites fails the writes and FLUSHes the gate holds, in LSN order; others keep waiting") {
  TempDir dir;
  NotifyCounter notes;
  auto e = OpenGated(dir, notes);
  RecordingSink sink;
  for (int i = 1; i <= 3; ++i) REQUIRE(e->Put("k" + std::to_string(i), "v", false).has_value());
  REQUIRE(e->WaitDurable(3, &sink).ok());
  const uint64_t syncs_before = e->stats().syncs;
  e->RequestFlush(7);  // target 3: its sync returns, then the gate holds it
  PollUntilSynced(e.get(), notes, &sink, syncs_before);
  CHECK(sink.flushes.empty());
  e->AdvanceAckWatermark(1);

  // A write whose commit is still running is not held by the gate yet.
  uint64_t seen = notes.count();
  auto t4 = e->Put("k4", "v", false);
  REQUIRE(t4.has_value());
  const Status timeout = Status::Busy("replicas did not confirm within sync_timeout");
  e->FailGatedWrites(timeout);
  CHECK(sink.writes.empty());  // reported by the next Poll
  notes.WaitPast(seen);
  e->Poll(&sink);
  REQUIRE(DoneLsns(sink) == std::vector<Lsn>{1, 2, 3});
  CHECK(sink.writes[0].status.ok());                       // the watermark covered it
  CHECK(sink.writes[1].status.code() == Code::kBusy);
  CHECK(sink.writes[2].status.message() == timeout.message());
  REQUIRE(sink.flushes.size() == 1);
  CHECK(sink.flushes[0].first == 7);
  CHECK(sink.flushes[0].second.code() == Code::kBusy);
  CHECK(sink.last_flush_durable == 1);  // ack_lsn(): what a reply may promise
  CHECK(e->state().Get("k3").has_value());  // failed acknowledgement, durable and applied

  // Write 4 became durable after the call: it waits for the watermark.
  REQUIRE(e->WaitDurable(t4->lsn, &sink).ok());
  e->Poll(&sink);
  CHECK(sink.writes.size() == 3);
  e->AdvanceAckWatermark(t4->lsn);
  e->Poll(&sink);
  REQUIRE(sink.writes.size() == 4);
  CHECK(sink.writes[3].lsn == 4);
  CHECK(sink.writes[3].status.ok());
  REQUIRE(e->Close(&sink).ok());
}

TEST_CASE("FailGatedWritesUpTo fails only the held writes up to its bound; younger ones keep waiting") {
  TempDir dir;
  NotifyCounter notes;
  auto e = OpenGated(dir, notes);
  RecordingSink sink;
  for (int i = 1; i <= 3; ++i) REQUIRE(e->Put("k" + std::to_string(i), "v", false).has_value());
  REQUIRE(e->WaitDurable(3, &sink).ok());
  const uint64_t syncs_before = e->stats().syncs;
  e->RequestFlush(5);  // target 3: above the bound below, so it keeps waiting
  PollUntilSynced(e.get(), notes, &sink, syncs_before);
  CHECK(e->stats().gated_writes == 3);
  e->FailGatedWritesUpTo(Status::IOError("not enough synchronous replicas (have 0 of 1)"), 2);
  e->Poll(&sink);
  REQUIRE(DoneLsns(sink) == std::vector<Lsn>{1, 2});
  CHECK(sink.writes[0].status.code() == Code::kIOError);
  CHECK(sink.writes[1].status.message() == "not enough synchronous replicas (have 0 of 1)");
  CHECK(sink.flushes.empty());
  CHECK(e->stats().gated_writes == 1);
  e->AdvanceAckWatermark(3);
  e->Poll(&sink);
  REQUIRE(DoneLsns(sink) == std::vector<Lsn>{1, 2, 3});
  CHECK(sink.writes[2].status.ok());
  REQUIRE(sink.flushes.size() == 1);
  CHECK(sink.flushes[0].second.ok());
  REQUIRE(e->Close(&sink).ok());
}

TEST_CASE("FLUSH with the gate completes when the watermark covers it and reports ack_lsn") {
  TempDir dir;
  NotifyCounter notes;
  auto e = OpenGated(dir, notes);
  RecordingSink sink;
  REQUIRE(e->Put("a", "1", false).has_value());
  REQUIRE(e->Put("b", "2", false).has_value());
  REQUIRE(e->WaitDurable(2, &sink).ok());
  // The flush asks for a fresh fdatasync: wait until that commit has been
  // collected (a notify of the earlier commit may still arrive after
  // WaitDurable returned, so counting notifies alone is not enough).
  const uint64_t syncs_before = e->stats().syncs;
  e->RequestFlush(9);
  PollUntilSynced(e.get(), notes, &sink, syncs_before);
  CHECK(sink.flushes.empty());  // durable, watermark behind
  e->AdvanceAckWatermark(1);
  e->Poll(&sink);
  CHECK(sink.flushes.empty());
  e->AdvanceAckWatermark(2);
  e->Poll(&sink);
  REQUIRE(sink.flushes.size() == 1);
  CHECK(sink.flushes[0].second.ok());
  CHECK(sink.last_flush_durable == 2);
  REQUIRE(e->Close(&sink).ok());
}

TEST_CASE("the watermark never covers an LSN not handed out yet") {
  TempDir dir;
  auto e = MustOpen(BasicOptions(Env::Default(), dir, DurabilityMode::kSync));
  RecordingSink sink;
  REQUIRE(e->SetAckWatermarkRequired(true).ok());
  REQUIRE(e->Put("a", "1", false).has_value());
  e->AdvanceAckWatermark(1000);
  CHECK(e->stats().ack_watermark == 1);
  auto t2 = e->Put("b", "2", false);
  REQUIRE(e->WaitDurable(t2->lsn, &sink).ok());
  CHECK(DoneLsns(sink) == std::vector<Lsn>{1});  // write 2 still waits
  REQUIRE(e->Close(&sink).ok());
}

TEST_CASE("switching the gate: on holds waiting writes, off releases them; Close fails what it still holds") {
  TempDir dir;
  auto e = MustOpen(BasicOptions(Env::Default(), dir, DurabilityMode::kSync));
  RecordingSink sink;
  auto t1 = e->Put("a", "1", false);
  REQUIRE(e->SetAckWatermarkRequired(true).ok());  // t1 was waiting already: now for the gate too
  REQUIRE(e->WaitDurable(t1->lsn, &sink).ok());
  CHECK(sink.writes.empty());
  REQUIRE(e->SetAckWatermarkRequired(false).ok());
  e->Poll(&sink);
  REQUIRE(sink.writes.size() == 1);
  CHECK(sink.writes[0].status.ok());

  REQUIRE(e->SetAckWatermarkRequired(true).ok());
  auto t2 = e->Put("b", "2", false);
  REQUIRE(e->WaitDurable(t2->lsn, &sink).ok());
  CHECK(e->Close(&sink).ok());  // everything is durable
  REQUIRE(sink.writes.size() == 2);
  CHECK(sink.writes[1].status.code() == Code::kShuttingDown);
  CHECK(sink.writes[1].status.message().find("watermark") != std::string::npos);
}

TEST_CASE("DropAckGate (stepping down): every waiting write fails, one in its fdatasync too; later ones not gated") {
  TempDir dir;
  NotifyCounter notes;
  auto e = OpenGated(dir, notes);
  RecordingSink sink;
  REQUIRE(e->Put("a", "1", false).has_value());
  REQUIRE(e->Put("b", "2", false).has_value());
  REQUIRE(e->WaitDurable(2, &sink).ok());
  e->AdvanceAckWatermark(1);

  // Write 3's commit is submitted; the engine has not collected it yet.
  auto t3 = e->Put("c", "3", false);
  REQUIRE(t3.has_value());
  e->RequestFlush(8);  // target 3
  REQUIRE(e->durable_lsn() == 2);
  const Status down = Status::NotPrimary("this node stepped down");
  e->DropAckGate(down);
  CHECK_FALSE(e->stats().ack_gate);
  PollUntil(e.get(), notes, &sink, [&] { return sink.writes.size() == 3 && sink.flushes.size() == 1; });
  CHECK(DoneLsns(sink) == std::vector<Lsn>{1, 2, 3});
  CHECK(sink.writes[0].status.ok());  // the watermark covered it
  CHECK(sink.writes[1].status.code() == Code::kNotPrimary);
  CHECK(sink.writes[2].status.message() == down.message());  // durable after the call, failed all the same
  CHECK(sink.flushes[0].first == 8);
  CHECK(sink.flushes[0].second.code() == Code::kNotPrimary);
  CHECK(e->state().Get("c").has_value());  // durable and applied; only the acknowledgement failed

  // A record appended afterwards (a replica's) waits for nobody's ACK.
  auto t4 = e->Put("d", "4", false);
  REQUIRE(t4.has_value());
  REQUIRE(e->WaitDurable(t4->lsn, &sink).ok());
  e->Poll(&sink);
  REQUIRE(sink.writes.size() == 4);
  CHECK(sink.writes[3].status.ok());
  e->RequestFlush(9);
  PollUntil(e.get(), notes, &sink, [&] { return sink.flushes.size() == 2; });
  CHECK(sink.flushes[1].second.ok());

  // Promoted again: the gate holds new writes as before.
  REQUIRE(e->SetAckWatermarkRequired(true).ok());
  auto t5 = e->Put("e", "5", false);
  REQUIRE(e->WaitDurable(t5->lsn, &sink).ok());
  e->Poll(&sink);
  CHECK(sink.writes.size() == 4);
  e->AdvanceAckWatermark(t5->lsn);
  e->Poll(&sink);
  REQUIRE(sink.writes.size() == 5);
  CHECK(sink.writes[4].status.ok());
  REQUIRE(e->Close(&sink).ok());
}

TEST_CASE("DropAckGate: an LSN that ENOSPC hands out again is not failed for the write it was first given to") {
  TempDir dir;
  FaultEnv env(Env::Default());
  auto e = MustOpen(BasicOptions(&env, dir, DurabilityMode::kSync));
  RecordingSink sink;
  REQUIRE(e->SetAckWatermarkRequired(true).ok());
  REQUIRE(e->Put("a", "1", false).has_value());
  REQUIRE(e->WaitDurable(1, &sink).ok());
  env.FailNext(Op::kWrite, ENOSPC, 1, "wal-");
  auto lost = e->Put("lost", "x", false);
  REQUIRE(lost.has_value());
  e->DropAckGate(Status::NotPrimary("this node stepped down"));
  CHECK(e->WaitDurable(lost->lsn, &sink).code() == Code::kNoSpace);
  auto again = e->Put("again", "y", false);
  REQUIRE(again.has_value());
  REQUIRE(again->lsn == lost->lsn);
  REQUIRE(e->WaitDurable(again->lsn, &sink).ok());
  e->Poll(&sink);
  REQUIRE(sink.writes.size() == 3);
  CHECK(sink.writes[0].status.code() == Code::kNotPrimary);  // write 1: durable, never confirmed
  CHECK(sink.writes[1].status.IsNoSpace());
  CHECK(sink.writes[2].lsn == again->lsn);
  CHECK(sink.writes[2].status.ok());
  REQUIRE(e->Close(&sink).ok());
}

}  // namespace
}  // namespace kvd
