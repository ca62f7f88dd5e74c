// FaultEnv's own model of a power cut, injected errors and a full disk.
#include "kvd/fault_env.h"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <thread>
#include "util/temp_dir.h"

namespace kvd {
namespace {

using Op = FaultEnv::Op;

// A temp dir named kvd-faultenv-*.
class TempDir : public test::TempDir {
 public:
  TempDir() : test::TempDir("faultenv") {}
};

std::string Read(Env* env, const std::string& path) {
  auto r = env->ReadFileToString(path);
  REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
  return *r;
}

std::unique_ptr<WritableFile> Create(Env* env, const std::string& path) {
  auto f = env->NewWritableFile(path, OpenMode::kCreateTruncate);
  REQUIRE_MESSAGE(f.has_value(), f.error().ToString());
  return std::move(f).value();
}

TEST_CASE("power loss keeps synced bytes and drops the rest") {
  TempDir d;
  FaultEnv env(Env::Default());
  const std::string p = d.Sub("f");
  auto f = Create(&env, p);
  REQUIRE(f->WriteAt(0, AsBytes("hello ")).ok());
  REQUIRE(f->Sync().ok());
  REQUIRE(env.SyncDir(d.path()).ok());
  REQUIRE(f->WriteAt(6, AsBytes("world")).ok());
  REQUIRE(f->WriteAt(0, AsBytes("HELLO")).ok());  // overwrites synced bytes
  CHECK(Read(&env, p) == "HELLO world");
  CHECK(env.unsynced_files() == 1);
  env.SimulatePowerLoss();
  CHECK(Read(&env, p) == "hello ");
  // Handles from before the power cut are dead.
  CHECK(f->WriteAt(0, AsBytes("x")).code() == Code::kIOError);
}

TEST_CASE("preallocated space and truncation are undone too") {
  TempDir d;
  FaultEnv env(Env::Default());
  const std::string p = d.Sub("f");
  auto f = Create(&env, p);
  REQUIRE(f->WriteAt(0, AsBytes("abcdef")).ok());
  REQUIRE(f->Sync().ok());
  REQUIRE(env.SyncDir(d.path()).ok());
  REQUIRE(f->Allocate(0, 1 << 16).ok());
  REQUIRE(f->Truncate(3).ok());
  CHECK(Read(&env, p) == "abc");
  env.SimulatePowerLoss();
  CHECK(Read(&env, p) == "abcdef");
}

TEST_CASE("creations, renames and removals need a directory fsync") {
  TempDir d;
  FaultEnv env(Env::Default());
  // Created and synced, but the directory was not: gone after power loss.
  auto f = Create(&env, d.Sub("new"));
  REQUIRE(f->WriteAt(0, AsBytes("data")).ok());
  REQUIRE(f->Sync().ok());
  // Atomic replace: old content comes back if the rename was not made durable.
  auto g = Create(&env, d.Sub("target"));
  REQUIRE(g->WriteAt(0, AsBytes("old")).ok());
  REQUIRE(g->Sync().ok());
  auto gone = Create(&env, d.Sub("gone"));
  REQUIRE(gone->Sync().ok());
  REQUIRE(env.SyncDir(d.path()).ok());
  CHECK(env.unsynced_dir_ops() == 0);
  auto f2 = Create(&env, d.Sub("target.tmp"));
  REQUIRE(f2->WriteAt(0, AsBytes("new")).ok());
  REQUIRE(f2->Sync().ok());
  REQUIRE(env.RenameFile(d.Sub("target.tmp"), d.Sub("target")).ok());
  REQUIRE(env.RemoveFile(d.Sub("gone")).ok());
  auto unsynced_new = Create(&env, d.Sub("new2"));
  CHECK(Read(&env, d.Sub("target")) == "new");
  CHECK_FALSE(env.FileExists(d.Sub("gone")));
  auto names = env.ListDir(d.path());
  REQUIRE(names.has_value());
  CHECK(names->size() == 3);  // new, target, new2: the hidden removed file is not listed
  CHECK(env.unsynced_dir_ops() == 4);  // create tmp, rename, remove, create new2

  env.SimulatePowerLoss();
  CHECK(env.FileExists(d.Sub("new")));  // its creation was synced with the directory
  CHECK(Read(&env, d.Sub("target")) == "old");
  CHECK_FALSE(env.FileExists(d.Sub("target.tmp")));  // the tmp file's creation was never synced
  CHECK(env.FileExists(d.Sub("gone")));
  CHECK_FALSE(env.FileExists(d.Sub("new2")));

  // With the directory synced, the same operations stick.
  auto f3 = Create(&env, d.Sub("target.tmp"));
  REQUIRE(f3->WriteAt(0, AsBytes("newer")).ok());
  REQUIRE(f3->Sync().ok());
  REQUIRE(env.RenameFile(d.Sub("target.tmp"), d.Sub("target")).ok());
  REQUIRE(env.RemoveFile(d.Sub("gone")).ok());
  REQUIRE(env.SyncDir(d.path()).ok());
  env.SimulatePowerLoss();
  CHECK(Read(&env, d.Sub("target")) == "newer");
  CHECK_FALSE(env.FileExists(d.Sub("gone")));
  CHECK(Env::Default()->ListDir(d.path())->size() == 2);  // no trash left behind
}

TEST_CASE("torn writes keep a prefix of the unsynced data") {
  TempDir d;
  bool saw_partial = false, saw_none = false;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    FaultEnv::Options o;
    o.seed = seed;
    o.torn_writes = true;
    FaultEnv env(Env::Default(), o);
    const std::string p = d.Sub("torn" + std::to_string(seed));
    auto f = Create(&env, p);
    REQUIRE(f->Sync().ok());
    REQUIRE(env.SyncDir(d.path()).ok());
    REQUIRE(f->WriteAt(0, AsBytes("0123456789")).ok());
    REQUIRE(f->WriteAt(10, AsBytes("abcdefghij")).ok());
    env.SimulatePowerLoss();
    std::string got = Read(&env, p);
    CHECK(std::string("0123456789abcdefghij").starts_with(got));
    saw_partial |= !got.empty() && got.size() < 20 && got.size() != 10;
    saw_none |= got.empty();
  }
  CHECK(saw_partial);
  CHECK(saw_none);
}

TEST_CASE("torn pages: a later page may survive while an earlier one is lost") {
  TempDir d;
  const std::string a(4096, 'a'), b(4096, 'b'), c(4096, 'c');
  bool later_without_earlier = false, all_lost = false, all_kept = false;
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    FaultEnv::Options o;
    o.seed = seed;
    o.torn_pages = true;
    FaultEnv env(Env::Default(), o);
    const std::string p = d.Sub("pages" + std::to_string(seed));
    auto f = Create(&env, p);
    REQUIRE(f->WriteAt(0, AsBytes(std::string(100, 's'))).ok());
    REQUIRE(f->Sync().ok());
    REQUIRE(env.SyncDir(d.path()).ok());
    REQUIRE(f->WriteAt(4096, AsBytes(a)).ok());
    REQUIRE(f->WriteAt(8192, AsBytes(b + c)).ok());  // one write over two pages
    env.SimulatePowerLoss();
    const std::string got = Read(&env, p);
    REQUIRE(got.starts_with(std::string(100, 's')));
    // Each page is all old (zeros past the synced end) or all new.
    auto page = [&](size_t i) { return got.size() > i * 4096 ? got.substr(i * 4096, 4096) : std::string(); };
    const std::string zeros(4096, '\0');
    const std::string news[] = {a, b, c};
    bool kept[3];
    for (size_t i = 0; i < 3; ++i) {
      const std::string pg = page(i + 1);
      CHECK((pg.empty() || pg == zeros || pg == news[i]));
      kept[i] = pg == news[i];
    }
    later_without_earlier |= (kept[1] || kept[2]) && !kept[0];
    later_without_earlier |= kept[2] && !kept[1];
    all_lost |= got.size() == 100;
    all_kept |= kept[0] && kept[1] && kept[2];
  }
  CHECK(later_without_earlier);
  CHECK(all_lost);
  CHECK(all_kept);
}

TEST_CASE("a failed fsync drops the unsynced data: a retry that succeeds does not make it durable") {
  TempDir d;
  FaultEnv env(Env::Default());
  const std::string p = d.Sub("f");
  auto f = Create(&env, p);
  REQUIRE(f->WriteAt(0, AsBytes("synced;")).ok());
  REQUIRE(f->Sync().ok());
  REQUIRE(env.SyncDir(d.path()).ok());
  REQUIRE(f->WriteAt(7, AsBytes("doomed;")).ok());
  env.FailNext(Op::kSync, EIO);
  REQUIRE_FALSE(f->Sync().ok());
  CHECK(Read(&env, p) == "synced;doomed;");  // still in the page cache
  REQUIRE(f->Sync().ok());                    // the retry "succeeds"...
  env.SimulatePowerLoss();
  CHECK(Read(&env, p) == "synced;");  // ...but the pages were clean: lost

  // Data written and synced after the failure is durable; the failed write's
  // bytes read back as zeros where a later write extended the file past them.
  auto g = Create(&env, d.Sub("g"));
  REQUIRE(env.SyncDir(d.path()).ok());
  REQUIRE(g->WriteAt(0, AsBytes("AAAA")).ok());
  env.FailNext(Op::kSync, EIO);
  REQUIRE_FALSE(g->Sync().ok());
  REQUIRE(g->WriteAt(4, AsBytes("BBBB")).ok());
  REQUIRE(g->WriteAt(0, AsBytes("C")).ok());  // rewrites one byte of the lost write
  REQUIRE(g->Sync().ok());
  env.SimulatePowerLoss();
  CHECK(Read(&env, d.Sub("g")) == std::string("C\0\0\0BBBB", 8));
}

TEST_CASE("write-through: a failed fsync drops the unsynced data for good") {
  TempDir d;
  FaultEnv::Options o;
  o.write_through_on_sync = true;
  FaultEnv env(Env::Default(), o);
  const std::string p = d.Sub("w");
  auto f = Create(&env, p);
  REQUIRE(env.SyncDir(d.path()).ok());
  REQUIRE(f->WriteAt(0, AsBytes("lost")).ok());
  env.FailNext(Op::kSync, EIO);
  REQUIRE_FALSE(f->Sync().ok());
  REQUIRE(f->WriteAt(4, AsBytes("kept")).ok());
  REQUIRE(f->Sync().ok());
  CHECK(Read(Env::Default(), p) == std::string("\0\0\0\0kept", 8));
}

TEST_CASE("write-through: directory operations without a directory fsync are undone by the next env") {
  TempDir d;
  FaultEnv::Options o;
  o.write_through_on_sync = true;
  auto make = [&](const std::string& name, const std::string& data, FaultEnv* env) {
    auto f = Create(env, d.Sub(name));
    REQUIRE(f->WriteAt(0, AsBytes(data)).ok());
    REQUIRE(f->Sync().ok());
  };
  {
    FaultEnv env(Env::Default(), o);
    make("durable", "d", &env);
    make("target", "old", &env);
    make("gone", "g", &env);
    REQUIRE(env.SyncDir(d.path()).ok());
    make("new", "n", &env);  // created and synced, its directory not
    make("target.tmp", "newer", &env);
    REQUIRE(env.RenameFile(d.Sub("target.tmp"), d.Sub("target")).ok());
    REQUIRE(env.RemoveFile(d.Sub("gone")).ok());
    CHECK(Read(&env, d.Sub("target")) == "newer");
    CHECK_FALSE(env.FileExists(d.Sub("gone")));
    auto names = env.ListDir(d.path());
    REQUIRE(names.has_value());
    CHECK(names->size() == 3);  // durable, target, new: no journal or trash shown
  }  // the "process" dies here: nothing in memory survives
  FaultEnv next(Env::Default(), o);
  CHECK(next.FileExists(d.Sub("durable")));
  CHECK_FALSE(next.FileExists(d.Sub("new")));
  CHECK_FALSE(next.FileExists(d.Sub("target.tmp")));
  CHECK(Read(&next, d.Sub("target")) == "old");
  CHECK(Read(&next, d.Sub("gone")) == "g");
  CHECK(Env::Default()->ListDir(d.path())->size() == 3);  // journal and trash cleaned up

  // The same operations with the directory synced stick, and SimulatePowerLoss
  // (the in-process power cut) keeps them.
  make("target.tmp", "newer", &next);
  REQUIRE(next.RenameFile(d.Sub("target.tmp"), d.Sub("target")).ok());
  REQUIRE(next.RemoveFile(d.Sub("gone")).ok());
  REQUIRE(next.SyncDir(d.path()).ok());
  make("unsynced", "u", &next);
  next.SimulatePowerLoss();
  CHECK(Read(&next, d.Sub("target")) == "newer");
  CHECK_FALSE(next.FileExists(d.Sub("gone")));
  CHECK_FALSE(next.FileExists(d.Sub("unsynced")));
  CHECK(Env::Default()->ListDir(d.path())->size() == 2);
}

TEST_CASE("write-through with writeback: a SIGKILL may keep a later page and lose an earlier one") {
  TempDir d;
  bool later_without_earlier = false;
  for (uint64_t seed = 1; seed <= 40 && !later_without_earlier; ++seed) {
    FaultEnv::Options o;
    o.seed = seed;
    o.write_through_on_sync = true;
    o.writeback = true;
    FaultEnv env(Env::Default(), o);
    const std::string p = d.Sub("wb" + std::to_string(seed));
    auto f = Create(&env, p);
    for (int i = 0; i < 8; ++i) REQUIRE(f->WriteAt(i * 4096, AsBytes(std::string(4096, 'a' + i))).ok());
    // What a SIGKILL leaves: whatever reached the file.
    const std::string got = Read(Env::Default(), p);
    bool seen_gap = false;
    for (size_t i = 0; i < 8; ++i) {
      const std::string pg = got.size() > i * 4096 ? got.substr(i * 4096, 4096) : std::string();
      const bool kept = pg == std::string(4096, static_cast<char>('a' + i));
      CHECK((kept || pg.empty() || pg == std::string(4096, '\0')));
      later_without_earlier |= kept && seen_gap;
      seen_gap |= !kept;
    }
  }
  CHECK(later_without_earlier);
}

TEST_CASE("injected failures: FailNext, FailAfter, path filters, CutPowerAfter") {
  TempDir d;
  FaultEnv env(Env::Default());
  auto f = Create(&env, d.Sub("a"));
  env.FailNext(Op::kSync, EIO);
  Status s = f->Sync();
  CHECK(s.code() == Code::kIOError);
  CHECK(s.message().find("injected") != std::string::npos);
  CHECK(f->Sync().ok());  // count 1: only once

  env.FailAfter(Op::kWrite, 2, ENOSPC, 1, "only-this");
  auto g = Create(&env, d.Sub("only-this"));
  CHECK(f->WriteAt(0, AsBytes("x")).ok());  // other path: not counted
  CHECK(g->WriteAt(0, AsBytes("1")).ok());
  CHECK(g->WriteAt(1, AsBytes("2")).ok());
  CHECK(g->WriteAt(2, AsBytes("3")).code() == Code::kNoSpace);
  CHECK(g->WriteAt(2, AsBytes("3")).ok());

  env.FailNext(Op::kAllocate, EOPNOTSUPP);
  CHECK(f->Allocate(0, 100).code() == Code::kUnsupported);
  env.FailNext(Op::kRename, EIO);
  CHECK_FALSE(env.RenameFile(d.Sub("a"), d.Sub("b")).ok());
  CHECK(env.FileExists(d.Sub("a")));

  const uint64_t writes = env.count(Op::kWrite);
  env.CutPowerAfter(1);
  CHECK(f->WriteAt(0, AsBytes("y")).ok());
  CHECK_FALSE(f->WriteAt(0, AsBytes("z")).ok());
  CHECK(env.power_off());
  CHECK_FALSE(env.NewWritableFile(d.Sub("c"), OpenMode::kCreateTruncate).has_value());
  CHECK(env.count(Op::kWrite) == writes + 1);
  env.PowerOn();
  CHECK(env.NewWritableFile(d.Sub("c"), OpenMode::kCreateTruncate).has_value());
}

TEST_CASE("a space limit fails writes with ENOSPC; deleting files frees space") {
  TempDir d;
  FaultEnv::Options o;
  o.partial_write_on_error = false;
  FaultEnv env(Env::Default(), o);
  auto f = Create(&env, d.Sub("big"));
  REQUIRE(f->WriteAt(0, AsBytes(std::string(1000, 'a'))).ok());
  env.SetSpaceLimit(1500);
  CHECK(env.space_used() == 1000);
  CHECK(f->Allocate(0, 2000).code() == Code::kNoSpace);
  auto g = Create(&env, d.Sub("small"));
  CHECK(g->WriteAt(0, AsBytes(std::string(400, 'b'))).ok());
  CHECK(g->WriteAt(400, AsBytes(std::string(400, 'b'))).code() == Code::kNoSpace);
  CHECK(*g->Size() == 500);  // the part that fitted, as a real write() may leave
  REQUIRE(env.RemoveFile(d.Sub("big")).ok());
  CHECK(g->WriteAt(500, AsBytes(std::string(400, 'b'))).ok());
}

TEST_CASE("write-through-on-sync: unsynced bytes stay in memory until Sync") {
  TempDir d;
  FaultEnv::Options o;
  o.write_through_on_sync = true;
  FaultEnv env(Env::Default(), o);
  const std::string p = d.Sub("w");
  auto f = Create(&env, p);
  REQUIRE(env.SyncDir(d.path()).ok());
  REQUIRE(f->WriteAt(0, AsBytes("durable")).ok());
  CHECK(Env::Default()->FileSize(p).value() == 0);  // a SIGKILL now would lose it
  CHECK(*f->Size() == 7);
  REQUIRE(f->Sync().ok());
  CHECK(Read(Env::Default(), p) == "durable");
  REQUIRE(f->WriteAt(7, AsBytes(" lost")).ok());
  REQUIRE(f->Truncate(3).ok());
  CHECK(Read(Env::Default(), p) == "durable");
  env.SimulatePowerLoss();
  CHECK(Read(Env::Default(), p) == "durable");
}

TEST_CASE("a forked child can use the env while another thread is inside it") {
  TempDir d;
  FaultEnv::Options o;
  o.write_through_on_sync = true;  // as the daemon runs it
  FaultEnv env(Env::Default(), o);
  auto busy = Create(&env, d.Sub("busy"));
  std::atomic<bool> stop{false};
  std::thread hammer([&] {
    uint64_t off = 0;
    while (!stop.load()) {
      (void)busy->WriteAt(off++ % 4096, AsBytes("x"));
      (void)busy->Sync();
    }
  });
  for (int i = 0; i < 20; ++i) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::alarm(10);  // a deadlocked child dies of SIGALRM instead of hanging the test
      auto f = env.NewWritableFile(d.Sub("child" + std::to_string(i)), OpenMode::kCreateTruncate);
      bool ok = f.has_value() && (*f)->WriteAt(0, AsBytes("snap")).ok() && (*f)->SyncAll().ok();
      ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  stop = true;
  hammer.join();
  CHECK(Read(Env::Default(), d.Sub("child19")) == "snap");
}

TEST_CASE("a sync stall holds every fdatasync while its file exists, and only that") {
  TempDir d;
  FaultEnv env(Env::Default());
  const std::string stall = d.Sub("stall");
  env.StallSyncWhileFileExists(stall);
  auto f = Create(&env, d.Sub("wal"));
  REQUIRE(env.SyncDir(d.path()).ok());
  REQUIRE(f->WriteAt(0, AsBytes("before")).ok());
  CHECK(f->Sync().ok());  // no stall file yet: not held
  CHECK(env.syncs_stalled() == 0);

  { auto s = Create(Env::Default(), stall); }
  REQUIRE(f->WriteAt(6, AsBytes(" during")).ok());
  std::atomic<bool> synced{false};
  Status sync_status;
  std::thread syncer([&] {
    sync_status = f->Sync();
    synced = true;
  });
  // Await the sync entering the stall (an event the env counts).
  for (int i = 0; i < 2000 && env.syncs_stalled_now() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(env.syncs_stalled_now() == 1);
  CHECK_FALSE(synced.load());
  // The stall holds no lock: another file is written and read meanwhile.
  auto g = Create(&env, d.Sub("other"));
  CHECK(g->WriteAt(0, AsBytes("x")).ok());
  CHECK(Read(&env, d.Sub("other")) == "x");
  CHECK(env.unsynced_files() == 2);  // the stalled sync has not made "wal" durable
  CHECK_FALSE(synced.load());
  REQUIRE(Env::Default()->RemoveFile(stall).ok());
  syncer.join();
  CHECK(sync_status.ok());
  CHECK(env.syncs_stalled() == 1);
  CHECK(env.syncs_stalled_now() == 0);
  CHECK(env.unsynced_files() == 1);  // only "other" now
  env.SimulatePowerLoss();
  CHECK(Read(&env, d.Sub("wal")) == "before during");
}

TEST_CASE("a sync stall is bounded: a forgotten stall file delays, it does not hang") {
  TempDir d;
  FaultEnv env(Env::Default());
  const std::string stall = d.Sub("stall");
  { auto s = Create(Env::Default(), stall); }
  env.StallSyncWhileFileExists(stall, std::chrono::milliseconds(60));
  auto f = Create(&env, d.Sub("f"));
  REQUIRE(f->WriteAt(0, AsBytes("x")).ok());
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(f->SyncAll().ok());
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(60));
  CHECK(env.syncs_stalled() == 1);
  CHECK(env.unsynced_files() == 0);
  env.StallSyncWhileFileExists("");  // off: the file no longer matters
  CHECK(f->Sync().ok());
  CHECK(env.syncs_stalled() == 1);
}

}  // namespace
}  // namespace kvd
