// A cluster member's fence of a silent primary's epoch (Replication::
// FenceEpoch) and its undoing once etcd refused the takeover
// (LiftEpochFence, docs/cluster.md §3.5): the fence is lifted only while it
// is the newest thing this node has seen, the seen_epoch file follows, and a
// file that cannot be replaced keeps the fence. Until etcd answered, the
// fence is not announced in this node's frames (announced_epoch).
#include <doctest/doctest.h>
#include <uv.h>

#include <cerrno>

#include "daemon/node/node_controller.h"
#include "daemon/repl/replication.h"
#include "kvd/epoch_history.h"
#include "kvd/fault_env.h"
#include "tests/storage/engine_test_util.h"

namespace kvd::daemon {
namespace {

Epoch SavedEpoch(Env* env, const std::string& wal_dir) {
  auto e = LoadSeenEpoch(env, wal_dir);
  REQUIRE_MESSAGE(e.has_value(), e.error().ToString());
  return *e;
}

TEST_CASE("a takeover's fence is lifted only while nothing newer was seen, and the saved epoch follows") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  testing::TempDir dir;
  FaultEnv env(Env::Default());
  const EngineOptions options = testing::BasicOptions(&env, dir, DurabilityMode::kSync);
  Config config;
  config.wal_path = options.wal_dir;
  config.snapshot_path = options.snapshot_dir;
  config.replication.listen = "127.0.0.1:0";
  config.replication.name = "m1";
  // A cluster member: etcd is the coordinator's business, never dialled here.
  config.cluster.etcd_endpoints = "http://127.0.0.1:2379";
  Notifier notifier;
  testing::RecordingSink sink;
  {
    NodeController node(&loop, &sink, &config, &notifier);
    node.Adopt(testing::MustOpen(options), {});
    Replication repl(&loop, config);
    repl.set_env(&env);
    REQUIRE(repl.Start(node.engine(), &node).ok());
    const Epoch own = repl.highest_epoch_seen();  // the engine's epoch: nothing else seen yet

    // Fence epoch 5: 6 is seen and saved, but not announced in this node's
    // frames until etcd answered. etcd refuses the takeover: lifted.
    repl.FenceEpoch(5);
    CHECK(repl.highest_epoch_seen() == 6);
    CHECK(repl.announced_epoch() == own);
    CHECK(SavedEpoch(&env, config.wal_path) == 6);
    Result<bool> lifted = repl.LiftEpochFence(5);
    REQUIRE(lifted.has_value());
    CHECK(*lifted);
    CHECK(repl.highest_epoch_seen() == std::max<Epoch>(5, own));
    CHECK(repl.announced_epoch() == std::max<Epoch>(5, own));
    CHECK(SavedEpoch(&env, config.wal_path) == 5);

    // Nothing fenced at 5 any more: nothing to lift.
    lifted = repl.LiftEpochFence(5);
    REQUIRE(lifted.has_value());
    CHECK_FALSE(*lifted);
    CHECK(SavedEpoch(&env, config.wal_path) == 5);

    // A newer epoch seen after the fence (here another fence, of 6): the fence
    // of 5 stays, since lifting it would lower what this node has seen.
    repl.FenceEpoch(5);
    CHECK(repl.announced_epoch() == std::max<Epoch>(5, own));
    repl.ConfirmEpochFence(5);  // the takeover went ahead: announced
    CHECK(repl.announced_epoch() == 6);
    repl.FenceEpoch(6);
    CHECK(repl.highest_epoch_seen() == 7);
    CHECK(repl.announced_epoch() == 6);  // the fence of 6 is provisional
    lifted = repl.LiftEpochFence(5);
    REQUIRE(lifted.has_value());
    CHECK_FALSE(*lifted);
    CHECK(repl.highest_epoch_seen() == 7);
    CHECK(SavedEpoch(&env, config.wal_path) == 7);
    repl.ConfirmEpochFence(6);
    CHECK(repl.announced_epoch() == 7);

    // The file cannot be replaced: an error, and the fence stays in memory
    // and on disk.
    lifted = repl.LiftEpochFence(6);  // 7 -> 6
    REQUIRE(lifted.has_value());
    CHECK(*lifted);
    repl.FenceEpoch(6);  // 7 again
    env.FailNext(FaultEnv::Op::kRename, EIO, 1, std::string(kSeenEpochFileName));
    lifted = repl.LiftEpochFence(6);
    CHECK_FALSE(lifted.has_value());
    CHECK(repl.highest_epoch_seen() == 7);
    CHECK(SavedEpoch(&env, config.wal_path) == 7);

    repl.Stop();
    CHECK(node.CloseEngine(&sink).ok());
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // the listener's close callbacks
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("a primary fenced by a newer epoch keeps its acknowledgement gate off, switchover fence or not") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  testing::TempDir dir;
  const EngineOptions options = testing::BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
  Config config;
  config.wal_path = options.wal_dir;
  config.snapshot_path = options.snapshot_dir;
  config.replication.listen = "127.0.0.1:0";
  config.replication.name = "p";
  config.replication.sync_replicas = 1;
  Notifier notifier;
  testing::RecordingSink sink;
  {
    NodeController node(&loop, &sink, &config, &notifier);
    node.Adopt(testing::MustOpen(options), {});
    // Another node's epoch 9 was seen before this start, and writes carry a
    // switchover's fence (kFenced too): a newer epoch still fences for good.
    REQUIRE(SaveSeenEpoch(Env::Default(), config.wal_path, 9).ok());
    REQUIRE(node.SetWriteFence(Status::Fenced("a switchover to r1 is in progress")).ok());
    Replication repl(&loop, config);
    REQUIRE(repl.Start(node.engine(), &node).ok());
    CHECK(repl.fenced_by_newer_epoch());
    const EngineStats st = node.engine()->stats();
    CHECK(st.write_fence.find("a newer epoch 9 exists") != std::string::npos);
    CHECK_FALSE(st.ack_gate);  // the sync gate turned it on; the fence turned it off
    // A reload of the sync settings does not turn it on again.
    REQUIRE(repl.SetSync(1, std::chrono::seconds(60)).ok());
    CHECK_FALSE(node.engine()->stats().ack_gate);
    auto put = node.engine()->Put("k", "v", true);
    REQUIRE_FALSE(put.has_value());
    CHECK(put.error().code() == Code::kFenced);

    // Made a replica: no longer an old primary.
    REQUIRE(repl.BecomeReplica(HostPort{"127.0.0.1", 1}).ok());
    CHECK_FALSE(repl.fenced_by_newer_epoch());
    repl.Stop();
    CHECK(node.CloseEngine(&sink).ok());
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace kvd::daemon
