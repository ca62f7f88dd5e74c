// The node's write fence (node/node_controller.h) on a real engine: set
// through the node it refuses writes with its own status code and shows in
// STATUS; lifted, writes go on. STATUS also names the role, the epoch and the
// counters by operation.
#include <doctest/doctest.h>
#include <uv.h>

#include <nlohmann/json.hpp>

#include "daemon/node/node_controller.h"
#include "daemon/node/status_report.h"
#include "tests/storage/engine_test_util.h"

namespace kvd::daemon {
namespace {

class NullSink : public CompletionSink {
 public:
  void OnWriteDone(Lsn, const kvd::Status&, bool) override {}
  void OnFlushDone(uint64_t, const kvd::Status&, Lsn) override {}
};

nlohmann::json StatusOf(const Engine& engine, const ServerCounters& counters) {
  Config config;
  RecoveryReport recovery;
  SnapshotHistory history;
  StatusInputs in;
  in.config = &config;
  in.engine = &engine;
  in.recovery = &recovery;
  in.counters = &counters;
  in.snapshots = &history;
  in.role = RoleName(Role::kPrimary);
  return nlohmann::json::parse(BuildStatusJson(in));
}

TEST_CASE("the node's write fence refuses writes with its code, shows in STATUS, and lifts") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  testing::TempDir dir;
  Config config;
  Notifier notifier;
  NullSink sink;
  ServerCounters counters;
  counters.ops[static_cast<size_t>(Op::kConfigSet)] = 4;
  {
    NodeController node(&loop, &sink, &config, &notifier);
    node.Adopt(testing::MustOpen(testing::BasicOptions(Env::Default(), dir, DurabilityMode::kSync)), {});
    Engine& e = *node.engine();

    auto j = StatusOf(e, counters);
    CHECK(j["role"] == "primary");
    CHECK(j["write_fence"] == "");
    CHECK(j["epoch"] == 1);
    CHECK(j["ops"]["config_set"] == 4);
    CHECK(j["ops"].size() == kOpCount);
    auto first = e.Put("a", "1", false);
    REQUIRE(first.has_value());
    REQUIRE(e.WaitDurable(first->lsn, &sink).ok());

    // Only the two reversible codes are fences.
    CHECK(node.SetWriteFence(kvd::Status(Code::kBusy, "not a fence")).code() == Code::kInvalidArgument);
    CHECK(node.write_fence().ok());

    REQUIRE(node.SetWriteFence(kvd::Status(Code::kFenced, "fenced by epoch 7")).ok());
    CHECK(node.write_fence().code() == Code::kFenced);
    auto refused = e.Put("b", "2", false);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code() == Code::kFenced);
    j = StatusOf(e, counters);
    CHECK(j["write_fence"].get<std::string>().find("fenced by epoch 7") != std::string::npos);
    CHECK(e.state().Get("a").has_value());  // reads go on

    node.ClearWriteFence();
    CHECK(node.write_fence().ok());
    CHECK(StatusOf(e, counters)["write_fence"] == "");
    auto again = e.Put("b", "2", false);
    REQUIRE(again.has_value());
    REQUIRE(e.WaitDurable(again->lsn, &sink).ok());
    CHECK(node.CloseEngine(&sink).ok());
    node.CloseHandles();
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // let the closed handles finish
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace kvd::daemon
