// The reversible write fence: its own status codes, lifted by ClearWriteFence,
// and never a way around the sticky refusal after a failed fdatasync.
#include <doctest/doctest.h>

#include <cerrno>

#include "kvd/fault_env.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::BasicOptions;
using testing::MustOpen;
using testing::RecordingSink;
using testing::TempDir;
using Op = FaultEnv::Op;

void CheckWritesFailWith(Engine* e, Code code) {
  const Lsn last = e->last_lsn();
  CHECK(e->Put("p", "v", false).error().code() == code);
  CHECK(e->Del("p", true).error().code() == code);
  std::vector<BatchOp> ops{{OpType::kPut, "b", std::string_view("v")}};
  CHECK(e->Batch(ops, false).error().code() == code);
  CHECK(e->last_lsn() == last);  // no LSN taken
}

TEST_CASE("a fence refuses writes with its own code and is lifted again") {
  TempDir dir;
  auto e = MustOpen(BasicOptions(Env::Default(), dir, DurabilityMode::kSync));
  RecordingSink sink;
  auto t = e->Put("before", "1", false);
  REQUIRE(e->WaitDurable(t->lsn, &sink).ok());

  REQUIRE(e->SetWriteFence(Status::NotPrimary("this node is a replica of node-2")).ok());
  CheckWritesFailWith(e.get(), Code::kNotPrimary);
  CHECK(e->Put("p", "v", false).error().message() == "this node is a replica of node-2");
  CHECK(e->write_fence().code() == Code::kNotPrimary);
  CHECK(e->stats().write_fence == "NotPrimary: this node is a replica of node-2");
  CHECK(e->write_refusal().ok());          // not the sticky refusal
  CHECK(e->stats().write_refusal.empty());
  CHECK(e->state().Get("before").has_value());  // reads work
  e->RequestFlush(1);                            // so does FLUSH
  REQUIRE(e->WaitDurable(e->last_lsn(), &sink).ok());

  REQUIRE(e->SetWriteFence(Status::Fenced("epoch 8 is newer than ours (7)")).ok());  // replaces it
  CheckWritesFailWith(e.get(), Code::kFenced);
  CHECK(e->stats().write_fence.starts_with("Fenced: "));

  e->ClearWriteFence();
  CHECK(e->write_fence().ok());
  CHECK(e->stats().write_fence.empty());
  auto t2 = e->Put("after", "2", false);
  REQUIRE(t2.has_value());
  CHECK(t2->lsn == t->lsn + 1);
  REQUIRE(e->WaitDurable(t2->lsn, &sink).ok());
  REQUIRE(e->Close(&sink).ok());
  REQUIRE(sink.flushes.size() == 1);
  CHECK(sink.flushes[0].second.ok());
}

TEST_CASE("only NotPrimary and Fenced can fence") {
  TempDir dir;
  auto e = MustOpen(BasicOptions(Env::Default(), dir, DurabilityMode::kNone));
  CHECK(e->SetWriteFence(Status::IOError("no")).code() == Code::kInvalidArgument);
  CHECK(e->SetWriteFence(Status::WritesRefused("no")).code() == Code::kInvalidArgument);
  CHECK(e->SetWriteFence(Status::Ok()).code() == Code::kInvalidArgument);
  CHECK(e->write_fence().ok());
  CHECK(e->Put("k", "v", false).has_value());
}

TEST_CASE("writes appended before the fence complete as usual") {
  TempDir dir;
  auto e = MustOpen(BasicOptions(Env::Default(), dir, DurabilityMode::kSync));
  RecordingSink sink;
  auto t = e->Put("k", "v", false);
  REQUIRE(t.has_value());
  CHECK_FALSE(t->done);
  REQUIRE(e->SetWriteFence(Status::NotPrimary("stepping down")).ok());
  REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
  REQUIRE(sink.writes.size() == 1);
  CHECK(sink.writes[0].status.ok());
  CHECK(e->state().Get("k").has_value());
  REQUIRE(e->Close(&sink).ok());
}

TEST_CASE("the sticky refusal after a failed fdatasync wins over a fence, set or lifted") {
  TempDir dir;
  FaultEnv env(Env::Default());
  auto e = MustOpen(BasicOptions(&env, dir, DurabilityMode::kSync));
  RecordingSink sink;
  REQUIRE(e->SetWriteFence(Status::NotPrimary("replica")).ok());
  e->ClearWriteFence();
  env.FailNext(Op::kSync, EIO, 1, "wal-");
  auto t = e->Put("k", "v", false);
  REQUIRE(t.has_value());
  CHECK(e->WaitDurable(t->lsn, &sink).code() == Code::kWritesRefused);

  REQUIRE(e->SetWriteFence(Status::Fenced("epoch 3")).ok());
  CheckWritesFailWith(e.get(), Code::kWritesRefused);
  e->ClearWriteFence();
  CheckWritesFailWith(e.get(), Code::kWritesRefused);  // lifting the fence does not lift the refusal
  CHECK_FALSE(e->stats().write_refusal.empty());
  CHECK(e->Close(&sink).code() == Code::kWritesRefused);
}

TEST_CASE("a NotPrimary fence stops clients' writes but not AppendReplicated; Fenced stops both") {
  TempDir dir;
  auto e = MustOpen(BasicOptions(Env::Default(), dir, DurabilityMode::kSync));
  RecordingSink sink;
  REQUIRE(e->SetWriteFence(Status::NotPrimary("replica of node-1")).ok());
  std::string rec;
  AppendPutRecord(&rec, 1, kFirstEpoch, "k", "from-primary");
  auto bytes = std::as_bytes(std::span(rec.data(), rec.size()));
  auto t = e->AppendReplicated(bytes);
  REQUIRE_MESSAGE(t.has_value(), t.error().ToString());
  REQUIRE(e->WaitDurable(t->lsn, &sink).ok());
  CHECK(e->state().Get("k").has_value());
  CheckWritesFailWith(e.get(), Code::kNotPrimary);  // clients still refused

  REQUIRE(e->SetWriteFence(Status::Fenced("epoch 8 is newer")).ok());
  std::string rec2;
  AppendPutRecord(&rec2, 2, kFirstEpoch, "k2", "v");
  CHECK(e->AppendReplicated(std::as_bytes(std::span(rec2.data(), rec2.size()))).error().code() == Code::kFenced);
  CHECK(e->last_lsn() == 1);
  REQUIRE(e->Close(&sink).ok());
}

}  // namespace
}  // namespace kvd
