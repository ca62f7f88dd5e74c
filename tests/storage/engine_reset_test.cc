// Engine::ResetToSnapshot (a replica installing a transferred snapshot) and
// the snapshot stream writer it is fed by.
#include <doctest/doctest.h>
#include <unistd.h>

#include <thread>

#include "kvd/fault_env.h"
#include "kvd/snapshot_stream.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

using testing::BasicOptions;
using testing::Contents;
using testing::MustOpen;
using testing::TempDir;

// An engine with `n` keys "<prefix>-i", everything durable and reported.
std::unique_ptr<Engine> Filled(const EngineOptions& o, const std::string& prefix, int n) {
  auto e = MustOpen(o);
  for (int i = 0; i < n; ++i) REQUIRE(e->Put(prefix + "-" + std::to_string(i), std::string(100, 'v'), false).has_value());
  REQUIRE(e->WaitDurable(e->last_lsn(), nullptr).ok());
  e->Poll(nullptr);
  return e;
}

std::vector<std::string> Names(const std::string& dir) {
  auto names = Env::Default()->ListDir(dir);
  REQUIRE(names.has_value());
  std::sort(names->begin(), names->end());
  return *names;
}

struct Pair {
  TempDir dir;
  EngineOptions primary, replica;
  Pair() {
    primary = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
    primary.wal_dir = dir.Sub("p-wal");
    primary.snapshot_dir = dir.Sub("p-snap");
    replica = BasicOptions(Env::Default(), dir, DurabilityMode::kSync);
    replica.segment_size = 8192;  // several segments to set aside
  }
};

TEST_CASE("ResetToSnapshot replaces state and WAL, sets the old WAL aside, and survives a restart") {
  Pair p;
  auto primary = Filled(p.primary, "p", 300);
  const Lsn snap_lsn = primary->last_lsn();
  const auto want = Contents(primary->state());
  auto replica = Filled(p.replica, "r", 200);  // its own, older history
  const std::vector<std::string> old_wal = Names(p.replica.wal_dir);
  REQUIRE(old_wal.size() > 2);

  auto info = WriteSnapshot(Env::Default(), p.replica.snapshot_dir, primary->state(), snap_lsn);
  REQUIRE(info.has_value());
  const std::string aside = JoinPath(p.dir.Sub("wal"), "replaced-by-snapshot");
  SnapshotResetReport rep;
  Status s = replica->ResetToSnapshot(info->path, primary->epoch_history(), aside, &rep);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(rep.old_last_lsn == 200);
  CHECK(rep.snapshot_lsn == snap_lsn);
  CHECK(rep.entries == 300);
  CHECK(Contents(replica->state()) == want);
  CHECK(replica->last_lsn() == snap_lsn);
  CHECK(replica->durable_lsn() == snap_lsn);
  CHECK(replica->applied_lsn() == snap_lsn);
  // Every old segment moved aside, none deleted.
  size_t segments_aside = 0;
  for (const std::string& n : old_wal) segments_aside += ParseSegmentFileName(n) ? 1 : 0;
  CHECK(rep.set_aside_files.size() == segments_aside);
  for (const std::string& f : rep.set_aside_files) CHECK(Env::Default()->FileExists(f));

  // The log continues after the snapshot.
  auto t = replica->Put("after", "x", true);
  REQUIRE(t.has_value());
  CHECK(t->lsn == snap_lsn + 1);
  REQUIRE(replica->WaitDurable(t->lsn, nullptr).ok());
  REQUIRE(replica->Close(nullptr).ok());
  replica.reset();

  RecoveryReport rr;
  auto again = MustOpen(p.replica, &rr);
  auto want_after = want;
  want_after["after"] = "x";
  CHECK(Contents(again->state()) == want_after);
  CHECK(again->last_lsn() == snap_lsn + 1);
  CHECK(rr.snapshot_lsn == snap_lsn);
}

TEST_CASE("ResetToSnapshot refuses a damaged snapshot and leaves the engine as it was") {
  Pair p;
  auto primary = Filled(p.primary, "p", 50);
  auto replica = Filled(p.replica, "r", 40);
  const auto before = Contents(replica->state());
  REQUIRE(Env::Default()->CreateDirs(p.dir.Sub("elsewhere")).ok());
  auto info = WriteSnapshot(Env::Default(), p.dir.Sub("elsewhere"), primary->state(), primary->last_lsn());
  REQUIRE(info.has_value());
  {
    auto f = Env::Default()->NewWritableFile(info->path, OpenMode::kExisting);
    REQUIRE(f.has_value());
    const std::byte flip[1] = {std::byte{0x5a}};
    REQUIRE((*f)->WriteAt(100, flip).ok());
    REQUIRE((*f)->Close().ok());
  }
  const std::string aside = p.dir.Sub("aside");
  Status s = replica->ResetToSnapshot(info->path, primary->epoch_history(), aside, nullptr);
  CHECK(s.IsCorruption());
  CHECK(Contents(replica->state()) == before);
  CHECK(replica->last_lsn() == 40);
  CHECK_FALSE(Env::Default()->FileExists(aside));
  auto t = replica->Put("still", "writable", true);
  REQUIRE(t.has_value());
  CHECK(t->lsn == 41);
  CHECK(replica->WaitDurable(41, nullptr).ok());
}

TEST_CASE("ResetToSnapshot waits for records in flight (kBusy)") {
  Pair p;
  auto primary = Filled(p.primary, "p", 10);
  auto replica = Filled(p.replica, "r", 10);
  REQUIRE(Env::Default()->CreateDirs(p.dir.Sub("elsewhere")).ok());
  auto info = WriteSnapshot(Env::Default(), p.dir.Sub("elsewhere"), primary->state(), primary->last_lsn());
  REQUIRE(info.has_value());
  REQUIRE(replica->Put("pending", "v", true).has_value());  // not yet durable nor reported
  Status s = replica->ResetToSnapshot(info->path, primary->epoch_history(), p.dir.Sub("aside"), nullptr);
  CHECK(s.code() == Code::kBusy);
  CHECK(replica->state().size() == 10);
  testing::RecordingSink sink;
  REQUIRE(replica->WaitDurable(replica->last_lsn(), &sink).ok());
  replica->Poll(&sink);
  s = replica->ResetToSnapshot(info->path, primary->epoch_history(), p.dir.Sub("aside"), nullptr);
  CHECK_MESSAGE(s.ok(), s.ToString());
  CHECK(Contents(replica->state()) == Contents(primary->state()));
}

// The primary's snapshot as a replica holds it before a resync: a verified
// file named incoming.tmp in the replica's snapshot directory.
std::string IncomingCopy(const Pair& p, const Engine& primary) {
  const std::string elsewhere = p.dir.Sub("elsewhere");
  REQUIRE(Env::Default()->CreateDirs(elsewhere).ok());
  REQUIRE(Env::Default()->CreateDirs(p.replica.snapshot_dir).ok());
  auto info = WriteSnapshot(Env::Default(), elsewhere, primary.state(), primary.last_lsn());
  REQUIRE(info.has_value());
  const std::string tmp = JoinPath(p.replica.snapshot_dir, "incoming.tmp");
  REQUIRE(Env::Default()->RenameFile(info->path, tmp).ok());
  return tmp;
}

TEST_CASE("ResyncFromSnapshot: a divergent state inside its own snapshot is set aside whole, never mixed in") {
  Pair p;
  auto primary = Filled(p.primary, "p", 300);
  const auto want = Contents(primary->state());
  // The replica's own log runs further, and its snapshot covers all of it.
  auto replica = Filled(p.replica, "r", 500);
  const auto divergent = Contents(replica->state());
  auto own = WriteSnapshot(Env::Default(), p.replica.snapshot_dir, replica->state(), replica->last_lsn());
  REQUIRE(own.has_value());
  const std::vector<std::string> old_wal = Names(p.replica.wal_dir);
  const std::string tmp = IncomingCopy(p, *primary);
  const std::string aside = JoinPath(p.replica.wal_dir, "replaced-by-snapshot-300");

  SnapshotResetReport rep;
  Status s = replica->ResyncFromSnapshot(tmp, primary->epoch_history(), aside, &rep);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(rep.old_last_lsn == 500);
  CHECK(rep.snapshot_lsn == 300);
  CHECK(Contents(replica->state()) == want);
  CHECK(replica->last_lsn() == 300);
  CHECK_FALSE(Env::Default()->FileExists(tmp));
  // The old snapshot and every segment moved aside, nothing deleted.
  REQUIRE(rep.set_aside_snapshots.size() == 1);
  CHECK(rep.set_aside_snapshots[0] ==
        JoinPath(JoinPath(p.replica.snapshot_dir, "replaced-by-snapshot-300"), SnapshotFileName(500)));
  State back;
  REQUIRE(LoadSnapshot(Env::Default(), rep.set_aside_snapshots[0], &back).has_value());
  CHECK(Contents(back) == divergent);
  size_t segments = 0;
  for (const std::string& n : old_wal) segments += ParseSegmentFileName(n) ? 1 : 0;
  CHECK(rep.set_aside_files.size() == segments);
  for (const std::string& f : rep.set_aside_files) CHECK(Env::Default()->FileExists(f));

  REQUIRE(replica->Close(nullptr).ok());
  replica.reset();
  RecoveryReport rr;
  auto again = MustOpen(p.replica, &rr);
  CHECK(Contents(again->state()) == want);
  CHECK(again->last_lsn() == 300);
}

TEST_CASE("ResyncFromSnapshot under power cuts: the old state, none, or the new one; never a mix") {
  // A power cut before each mutating step of the resync, then a restart:
  // recovery gives the divergent state (untouched, or its WAL moved aside
  // with the snapshot still there), an empty node (everything moved, the
  // new snapshot not yet in place), or the new state.
  bool saw_old = false, saw_empty = false, saw_new = false;
  for (uint64_t n = 0; n < 200; ++n) {
    CAPTURE(n);
    Pair p;
    FaultEnv env(Env::Default());
    p.replica.env = &env;
    auto primary = Filled(p.primary, "p", 30);
    const auto want = Contents(primary->state());
    auto replica = Filled(p.replica, "r", 50);
    const auto divergent = Contents(replica->state());
    REQUIRE(WriteSnapshot(&env, p.replica.snapshot_dir, replica->state(), replica->last_lsn()).has_value());
    const std::string tmp = IncomingCopy(p, *primary);
    env.CutPowerAfter(n);
    Status s = replica->ResyncFromSnapshot(tmp, primary->epoch_history(),
                                           JoinPath(p.replica.wal_dir, "replaced-by-snapshot-30"), nullptr);
    const bool finished = s.ok();
    env.PowerOn();
    env.SimulatePowerLoss();
    replica.reset();
    auto again = Engine::Open(p.replica, nullptr);
    REQUIRE_MESSAGE(again.has_value(), again.error().ToString());
    const auto got = Contents((*again)->state());
    CHECK((got == divergent || got.empty() || got == want));
    if (finished) CHECK(got == want);
    saw_old = saw_old || got == divergent;
    saw_empty = saw_empty || got.empty();
    saw_new = saw_new || got == want;
    if (finished) break;
  }
  CHECK(saw_old);
  CHECK(saw_empty);
  CHECK(saw_new);
}

TEST_CASE("WriteSnapshotStream through a pipe gives the bytes of a snapshot file") {
  TempDir dir;
  State st;
  for (int i = 0; i < 5000; ++i) st.Put("k" + std::to_string(i), std::string(static_cast<size_t>(i % 700), 'z'));
  auto file = WriteSnapshotFile(Env::Default(), dir.Sub("f.kvs"), st, 77);
  REQUIRE(file.has_value());
  auto want = Env::Default()->ReadFileToString(file->path);
  REQUIRE(want.has_value());

  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::string got;
  std::thread reader([&] {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
  });
  uint64_t bytes = 0;
  {
    auto sink = NewFdStreamFile(fds[1], "pipe");
    Status s = WriteSnapshotStream(sink.get(), st, 77, &bytes);
    CHECK_MESSAGE(s.ok(), s.ToString());
    // Only appending is possible.
    const std::byte one[1] = {std::byte{0}};
    CHECK(sink->WriteAt(0, one).code() == Code::kInvalidArgument);
  }
  ::close(fds[1]);
  reader.join();
  ::close(fds[0]);
  CHECK(bytes == want->size());
  CHECK(got == *want);
}

}  // namespace
}  // namespace kvd
