// Power loss at random points through the fault-injecting Env.
//
// Each cycle: run a small random workload (puts, overwrites, deletes,
// batches, random `durable` flags, mode switches, FLUSH, occasional
// snapshots) on an engine whose FaultEnv cuts the power after a random number
// of file operations; then recover and check that
//   - every record at or below the last durable LSN seen before the cut is
//     there (recovered last LSN >= it), and
//   - the state is exactly the history applied up to the recovered LSN: a
//     prefix, with no holes and no reordering.
// The recovered state is the base of the next cycle. Small segments make
// roll-overs frequent; torn writes keep random prefixes of unsynced data, or
// random pages of it. The run must show torn tails and lost records, or it
// proved nothing.
//
// KVD_SEED and KVD_POWER_LOSS_CYCLES override the seed and the cycle count.
#include <doctest/doctest.h>

#include <cstdlib>
#include <random>

#include "kvd/fault_env.h"
#include "kvd/snapshot.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::Contents;
using testing::TempDir;
using Model = std::map<std::string, std::string>;

// One logged mutation: the ops of a PUT, DEL or BATCH.
struct Mutation {
  struct KV {
    bool put;
    std::string key, value;
  };
  std::vector<KV> ops;
};

void ApplyTo(Model* m, const Mutation& mu) {
  for (const auto& op : mu.ops) {
    if (op.put) {
      (*m)[op.key] = op.value;
    } else {
      m->erase(op.key);
    }
  }
}

uint64_t DigestOf(const Model& m) {
  State s;
  for (const auto& [k, v] : m) s.Put(k, v);
  return s.Digest();
}

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

DurabilityOptions RandomDurability(std::mt19937_64& rng) {
  DurabilityOptions d;
  const DurabilityMode modes[] = {DurabilityMode::kSync, DurabilityMode::kBatch, DurabilityMode::kNone};
  d.mode = modes[rng() % 3];
  const uint32_t batches[] = {1, 2, 8, 64};
  d.batch_size = batches[rng() % 4];
  d.flush_interval = std::chrono::microseconds(100 + rng() % 2000);
  return d;
}

class Workload {
 public:
  Workload(std::mt19937_64* rng, Engine* e) : rng_(*rng), e_(e) {}

  // Runs up to n steps; stops early when the engine refuses (the power is
  // off). Appends what it logged to *log (LSN base+1, base+2, ...).
  void Run(FaultEnv* env, const std::string& snap_dir, int n, std::vector<Mutation>* log, Lsn* max_durable) {
    for (int i = 0; i < n; ++i) {
      const uint64_t r = rng_() % 100;
      if (r < 80) {
        if (!Write(log)) break;
      } else if (r < 86) {
        if (!e_->WaitDurable(e_->last_lsn(), nullptr).ok()) break;
      } else if (r < 90) {
        e_->RequestFlush(i);
        e_->Poll(nullptr);
      } else if (r < 94) {
        e_->Tick(Clock::now(), nullptr);
      } else if (r < 97) {
        (void)e_->SetDurability(RandomDurability(rng_));
      } else {
        // A snapshot of the applied state, as the daemon's forked child writes it.
        const Lsn lsn = e_->SnapshotLsn();
        if (WriteSnapshot(env, snap_dir, e_->state(), lsn).has_value()) {
          *max_durable = std::max(*max_durable, lsn);
          (void)e_->SnapshotInstalled(lsn);
        }
      }
      *max_durable = std::max(*max_durable, e_->durable_lsn());
    }
    *max_durable = std::max(*max_durable, e_->durable_lsn());
  }

 private:
  std::string Key() { return "k" + std::to_string(rng_() % 24); }
  std::string Value() { return std::string(rng_() % 40, static_cast<char>('a' + rng_() % 26)); }

  bool Write(std::vector<Mutation>* log) {
    Mutation mu;
    const bool durable = rng_() % 10 == 0;
    Result<WriteTicket> t = Status::Internal("unset");
    const uint64_t kind = rng_() % 10;
    if (kind < 5) {
      mu.ops.push_back({true, Key(), Value()});
      t = e_->Put(mu.ops[0].key, mu.ops[0].value, durable);
    } else if (kind < 7) {
      mu.ops.push_back({false, Key(), {}});
      t = e_->Del(mu.ops[0].key, durable);
    } else {
      const int n = 1 + static_cast<int>(rng_() % 4);
      for (int i = 0; i < n; ++i) mu.ops.push_back({rng_() % 3 != 0, Key(), Value()});
      std::vector<BatchOp> ops;
      for (const auto& op : mu.ops) ops.push_back({op.put ? OpType::kPut : OpType::kDel, op.key, op.value});
      t = e_->Batch(ops, durable);
    }
    if (!t.has_value()) return false;
    log->push_back(std::move(mu));
    return true;
  }

  std::mt19937_64& rng_;
  Engine* e_;
};

TEST_CASE("power loss at random points: durable writes survive, state is a prefix of history") {
  const uint64_t seed = EnvNumber("KVD_SEED", std::random_device{}());
  const uint64_t cycles = EnvNumber("KVD_POWER_LOSS_CYCLES", 1000);
  INFO("seed " << seed << " (rerun with KVD_SEED=" << seed << ")");
  std::mt19937_64 rng(seed);

  TempDir dir;
  FaultEnv::Options fo;
  fo.seed = seed;
  fo.torn_writes = true;
  fo.torn_pages = true;
  FaultEnv env(Env::Default(), fo);
  EngineOptions o;
  o.env = &env;
  o.wal_dir = dir.Sub("wal");
  o.snapshot_dir = dir.Sub("snap");
  o.segment_size = 4096;
  o.durability = RandomDurability(rng);

  auto opened = Engine::Open(o, nullptr);
  REQUIRE_MESSAGE(opened.has_value(), opened.error().ToString());
  std::unique_ptr<Engine> e = std::move(opened).value();
  Model base;  // the verified state at base_lsn
  Lsn base_lsn = 0;
  uint64_t crashes = 0, torn_tails = 0, lost_records = 0;

  for (uint64_t cycle = 0; cycle < cycles; ++cycle) {
    CAPTURE(cycle);
    // The power goes out after a random number of file operations (or, now
    // and then, only once the workload is over).
    if (rng() % 8 != 0) env.CutPowerAfter(rng() % 48);
    std::vector<Mutation> log;
    Lsn max_durable = base_lsn;
    Workload w(&rng, e.get());
    w.Run(&env, o.snapshot_dir, 5 + static_cast<int>(rng() % 30), &log, &max_durable);
    env.CutPower();
    e.reset();  // its Close fails: the power is off
    env.PowerOn();
    crashes++;

    o.durability = RandomDurability(rng);
    RecoveryReport rep;
    auto r = Engine::Open(o, &rep);
    REQUIRE_MESSAGE(r.has_value(), "recovery failed: " << r.error().ToString());
    e = std::move(r).value();
    const Lsn recovered = rep.last_lsn;
    const Lsn assigned = base_lsn + log.size();
    if (rep.wal.truncated) torn_tails++;
    lost_records += assigned - recovered;
    if (recovered < max_durable || recovered > assigned || recovered < base_lsn) {
      FAIL("recovered LSN " << recovered << " outside [durable " << max_durable << ", assigned " << assigned
                            << "] (base " << base_lsn << ")");
    }
    Model expected = base;
    for (Lsn l = base_lsn + 1; l <= recovered; ++l) ApplyTo(&expected, log[l - base_lsn - 1]);
    Model got = Contents(e->state());
    if (got != expected || e->state().Digest() != DigestOf(expected)) {
      FAIL("state after recovery to LSN " << recovered << " is not the history prefix (" << got.size() << " keys, expected "
                                          << expected.size() << ")");
    }
    base = std::move(got);
    base_lsn = recovered;
  }
  MESSAGE("power-loss cycles: " << crashes << ", torn tails cut: " << torn_tails
                                << ", unsynced records lost: " << lost_records << ", files whose unsynced data a cut took: "
                                << env.files_hit_by_power_loss() << ", final LSN " << base_lsn);
  CHECK(crashes >= cycles);
  // The run must have exercised what it claims to survive: torn tails cut by
  // recovery and unsynced records lost (a FaultEnv that lost nothing, or an
  // engine that synced everything, would pass the checks above vacuously).
  CHECK_MESSAGE(torn_tails >= cycles / 200, "too few torn tails cut: " << torn_tails);
  CHECK_MESSAGE(lost_records >= cycles / 2, "too few unsynced records lost: " << lost_records);
  CHECK_MESSAGE(env.files_hit_by_power_loss() >= cycles / 20,
                "too few power cuts took unsynced data: " << env.files_hit_by_power_loss());
  REQUIRE(e->Close(nullptr).ok());
}

}  // namespace
}  // namespace kvd
