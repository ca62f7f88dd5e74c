// Snapshots through the fault-injecting Env: a snapshot is either wholly
// there and valid after a power cut at any point of its write, or absent,
// and failures never touch the previous snapshot.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "kvd/fault_env.h"
#include "kvd/snapshot.h"
#include "util/temp_dir.h"

namespace kvd {
namespace {

// A temp dir named kvd-snapfault-test-*.
class TempDir : public test::TempDir {
 public:
  TempDir() : test::TempDir("snapfault-test") {}
};

State MakeState(int n, const std::string& tag) {
  State s;
  for (int i = 0; i < n; ++i) s.Put("key" + std::to_string(i), tag + std::string(200, 'x'));
  return s;
}

bool HasTmp(Env* env, const std::string& dir) {
  auto names = env->ListDir(dir);
  REQUIRE(names.has_value());
  for (auto& n : *names) {
    if (n.ends_with(".tmp")) return true;
  }
  return false;
}

TEST_CASE("a returned snapshot survives power loss") {
  TempDir dir;
  FaultEnv env(Env::Default());
  State s = MakeState(5000, "a");
  auto w = WriteSnapshot(&env, dir.path(), s, 10);
  REQUIRE(w.has_value());
  env.SimulatePowerLoss();
  State t;
  auto r = LoadSnapshot(&env, w->path, &t);
  REQUIRE(r.has_value());
  CHECK(t.Digest() == s.Digest());
}

TEST_CASE("injected failures fail the write and leave the old snapshot alone") {
  TempDir dir;
  FaultEnv env(Env::Default());
  State old_state = MakeState(100, "old");
  REQUIRE(WriteSnapshot(&env, dir.path(), old_state, 5).has_value());
  State s = MakeState(20000, "new");  // > 1 MiB: several buffered writes
  struct Case {
    FaultEnv::Op op;
    int err;
    const char* name;
  };
  for (Case c :
       {Case{FaultEnv::Op::kCreate, EIO, "create"}, Case{FaultEnv::Op::kWrite, ENOSPC, "write"},
        Case{FaultEnv::Op::kSync, EIO, "fsync"}, Case{FaultEnv::Op::kRename, EIO, "rename"},
        Case{FaultEnv::Op::kSyncDir, EIO, "dir fsync"}}) {
    CAPTURE(c.name);
    if (c.op == FaultEnv::Op::kWrite) {
      env.FailAfter(c.op, 1, c.err);  // the second buffer fails
    } else {
      env.FailNext(c.op, c.err);
    }
    auto w = WriteSnapshot(&env, dir.path(), s, 9);
    REQUIRE_FALSE(w.has_value());
    if (c.err == ENOSPC) CHECK(w.error().code() == Code::kNoSpace);
    env.ClearFailures();
    CHECK_FALSE(HasTmp(&env, dir.path()));
    auto list = ListSnapshots(&env, dir.path());
    REQUIRE(list.has_value());
    REQUIRE(list->size() == 1);
    CHECK((*list)[0].lsn == 5);
    env.SimulatePowerLoss();
    State t;
    REQUIRE(LoadSnapshot(&env, (*list)[0].path, &t).has_value());
    CHECK(t.Digest() == old_state.Digest());
  }
}

TEST_CASE("power cut at every step of a snapshot write") {
  TempDir dir;
  FaultEnv::Options opt;
  opt.torn_writes = true;
  FaultEnv env(Env::Default(), opt);
  State old_state = MakeState(50, "old");
  REQUIRE(WriteSnapshot(&env, dir.path(), old_state, 5).has_value());
  State s = MakeState(12000, "new");  // ~2.5 MiB: three buffered writes
  bool completed = false;
  for (uint64_t n = 0; !completed && n < 100; ++n) {
    CAPTURE(n);
    env.CutPowerAfter(n);
    auto w = WriteSnapshot(&env, dir.path(), s, 9);
    completed = w.has_value();
    env.SimulatePowerLoss();
    env.PowerOn();
    // Whatever is named snap-*.kvs must load, and be either the old or the new image.
    auto list = ListSnapshots(&env, dir.path());
    REQUIRE(list.has_value());
    REQUIRE_FALSE(list->empty());
    for (auto& info : *list) {
      State t;
      auto r = LoadSnapshot(&env, info.path, &t);
      REQUIRE(r.has_value());
      CHECK(t.Digest() == (info.lsn == 9 ? s.Digest() : old_state.Digest()));
    }
    if (completed) CHECK((*list)[0].lsn == 9);
    REQUIRE(PruneSnapshots(&env, dir.path(), (*list)[0].lsn).ok());
    CHECK_FALSE(HasTmp(&env, dir.path()));
  }
  CHECK(completed);
}

}  // namespace
}  // namespace kvd
