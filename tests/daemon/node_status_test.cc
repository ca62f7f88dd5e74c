// STATUS reports the node's role and write fence (node/node_controller.h),
// beside the engine's figures and the serving counters by operation.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "daemon/node/node_controller.h"
#include "daemon/node/status_report.h"
#include "util/fake_engine.h"

namespace kvd::daemon {
namespace {

nlohmann::json Status(const kvd::Status* fence) {
  test::FakeEngine engine;
  Config config;
  RecoveryReport recovery;
  ServerCounters counters;
  counters.ops[static_cast<size_t>(Op::kConfigSet)] = 4;
  SnapshotHistory history;
  StatusInputs in;
  in.config = &config;
  in.engine = &engine;
  in.recovery = &recovery;
  in.counters = &counters;
  in.snapshots = &history;
  in.role = RoleName(Role::kPrimary);
  in.write_fence = fence;
  return nlohmann::json::parse(BuildStatusJson(in));
}

TEST_CASE("STATUS names the node's role and its write fence") {
  const kvd::Status open;
  auto j = Status(&open);
  CHECK(j["role"] == "primary");
  CHECK(j["write_fence"] == "");
  CHECK(j["ops"]["config_set"] == 4);
  CHECK(j["ops"].size() == kOpCount);

  const kvd::Status fenced(Code::kBusy, "fenced by epoch 7");
  j = Status(&fenced);
  CHECK(j["write_fence"].get<std::string>().find("fenced by epoch 7") != std::string::npos);
}

}  // namespace
}  // namespace kvd::daemon
