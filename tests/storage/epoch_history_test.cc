// The epoch history: rules, the file (round trip, damage, durability under
// power loss) and the fork point between two nodes' histories.
#include <doctest/doctest.h>

#include "kvd/epoch_history.h"
#include "kvd/fault_env.h"
#include "tests/storage/engine_test_util.h"

namespace kvd {
namespace {

EpochHistory Make(std::initializer_list<EpochStart> entries) {
  EpochHistory h;
  for (const EpochStart& e : entries) REQUIRE(h.Append(e.epoch, e.first_lsn).ok());
  return h;
}

TEST_CASE("epoch history: append rules and which epoch owns an LSN") {
  EpochHistory h = EpochHistory::Initial();
  CHECK(h.current() == 1);
  CHECK(h.EpochOf(0) == 0);
  CHECK(h.EpochOf(1) == 1);
  CHECK(h.EpochOf(1000) == 1);
  CHECK(h.Append(1, 5).code() == Code::kInvalidArgument);  // not newer
  CHECK(h.Append(0, 5).code() == Code::kInvalidArgument);
  REQUIRE(h.Append(3, 11).ok());
  CHECK(h.Append(4, 10).code() == Code::kInvalidArgument);  // before epoch 3's first LSN
  REQUIRE(h.Append(4, 11).ok());                             // epoch 3 wrote nothing
  REQUIRE(h.Append(7, 20).ok());
  CHECK(h.current() == 7);
  CHECK(h.EpochOf(10) == 1);
  CHECK(h.EpochOf(11) == 4);
  CHECK(h.EpochOf(19) == 4);
  CHECK(h.EpochOf(20) == 7);
  // Clamping moves epochs begun past the next LSN back to it.
  EpochHistory c = h;
  CHECK_FALSE(c.ClampTo(20));
  CHECK(c == h);
  CHECK(c.ClampTo(15));
  CHECK(c.entries().back() == EpochStart{7, 15});
  CHECK(c.EpochOf(14) == 4);
}

TEST_CASE("epoch history: the file round trips and any flipped bit or cut is refused") {
  EpochHistory h = Make({{1, 1}, {2, 40}, {5, 41}, {9, 1000}});
  const std::string bytes = h.Encode();
  CHECK(bytes.size() == 20 + 16 * 4);
  auto back = EpochHistory::Decode(bytes);
  REQUIRE(back.has_value());
  CHECK(*back == h);
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      auto r = EpochHistory::Decode(bad);
      CAPTURE(i);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().IsCorruption());
    }
  }
  for (size_t n = 0; n < bytes.size(); ++n) CHECK(EpochHistory::Decode(bytes.substr(0, n)).error().IsCorruption());
  CHECK(EpochHistory::Decode(EpochHistory().Encode()).error().IsCorruption());  // no entries
}

TEST_CASE("epoch history: the worked example of docs/wal_format.md §8.1, byte for byte") {
  static const char* d = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : Make({{1, 1}, {2, 40}}).Encode()) {
    hex += d[c >> 4];
    hex += d[c & 15];
  }
  CHECK(hex == "6b766445504f4348" "01000000" "02000000" "0100000000000000" "0100000000000000"
               "0200000000000000" "2800000000000000" "dc35acd4");
}

TEST_CASE("epoch history: fork point table") {
  struct Row {
    const char* what;
    EpochHistory mine;
    Lsn my_last;
    EpochHistory theirs;
    Lsn their_last;
    Lsn fork;
  };
  const EpochHistory e1 = EpochHistory::Initial();
  const Row rows[] = {
      {"same history, I am behind", e1, 10, e1, 20, 10},
      {"same history, I am ahead", e1, 20, e1, 10, 10},
      {"both empty logs", e1, 0, e1, 0, 0},
      {"they began epoch 2 after my last record", e1, 10, Make({{1, 1}, {2, 11}}), 30, 10},
      {"they began epoch 2 inside my tail", e1, 15, Make({{1, 1}, {2, 11}}), 30, 10},
      {"I wrote in epoch 2, they in epoch 3 from the same LSN", Make({{1, 1}, {2, 11}}), 15,
       Make({{1, 1}, {3, 11}}), 30, 10},
      {"I wrote in epoch 2 past where they started epoch 3", Make({{1, 1}, {2, 11}}), 25,
       Make({{1, 1}, {2, 11}, {3, 21}}), 30, 20},
      {"I know epoch 3 too", Make({{1, 1}, {2, 11}, {3, 21}}), 25, Make({{1, 1}, {2, 11}, {3, 21}}), 30, 25},
      {"an empty epoch on one side only", Make({{1, 1}, {2, 11}, {3, 11}}), 15, Make({{1, 1}, {3, 11}}), 15, 15},
      {"they lost epoch 2 (it started later for them)", Make({{1, 1}, {2, 11}}), 20, Make({{1, 1}, {2, 13}}), 20,
       10},
      {"different first epoch", Make({{2, 1}}), 10, e1, 10, 0},
      {"a history that does not cover LSN 1", Make({{1, 5}}), 10, e1, 10, 0},
      // Failover shapes (docs/replication.md §5): the old primary (epoch 1)
      // wrote 11..25 that only it has; a replica promoted at its LSN 10.
      {"old primary's unreplicated tail vs the promoted replica", e1, 25, Make({{1, 1}, {2, 11}}), 40, 10},
      {"old primary's tail, the new primary wrote nothing yet", e1, 25, Make({{1, 1}, {2, 11}}), 10, 10},
      {"a replica that had 11..12 of the old tail", e1, 12, Make({{1, 1}, {2, 11}}), 40, 10},
      {"two failovers: a node left in epoch 2 meets epoch 3", Make({{1, 1}, {2, 11}}), 30,
       Make({{1, 1}, {2, 11}, {3, 26}}), 50, 25},
      {"two failovers: a node left in epoch 1 meets epoch 3", e1, 30, Make({{1, 1}, {2, 11}, {3, 26}}), 50, 10},
  };
  for (const Row& r : rows) {
    CAPTURE(r.what);
    CHECK(ForkPoint(r.mine, r.my_last, r.theirs, r.their_last) == r.fork);
    CHECK(ForkPoint(r.theirs, r.their_last, r.mine, r.my_last) == r.fork);  // symmetric
  }
}

TEST_CASE("epoch history: saved durably; a power loss keeps the old or the new file, never a torn one") {
  testing::TempDir dir;
  const std::string d = dir.Sub("wal");
  REQUIRE(Env::Default()->CreateDirs(d).ok());
  FaultEnv env(Env::Default());
  CHECK(LoadEpochHistory(&env, d).error().IsNotFound());
  const EpochHistory old_h = Make({{1, 1}, {2, 50}});
  REQUIRE(SaveEpochHistory(&env, d, old_h).ok());
  CHECK(env.unsynced_files() == 0);
  CHECK(env.unsynced_dir_ops() == 0);
  env.SimulatePowerLoss();
  REQUIRE(LoadEpochHistory(&env, d).has_value());
  CHECK(*LoadEpochHistory(&env, d) == old_h);

  // Cut the power before each mutating step of the next save: the file is
  // the old history until the rename is durable, the new one after.
  const EpochHistory new_h = Make({{1, 1}, {2, 50}, {3, 70}});
  bool saw_new = false, saw_old = false;
  for (uint64_t n = 0; n < 8; ++n) {
    CAPTURE(n);
    env.CutPowerAfter(n);
    Status s = SaveEpochHistory(&env, d, new_h);
    env.PowerOn();
    env.SimulatePowerLoss();
    auto loaded = LoadEpochHistory(&env, d);
    REQUIRE_MESSAGE(loaded.has_value(), loaded.error().ToString());
    if (s.ok()) CHECK(*loaded == new_h);  // an OK save survives
    CHECK((*loaded == old_h || *loaded == new_h));
    saw_new = saw_new || *loaded == new_h;
    saw_old = saw_old || *loaded == old_h;
    REQUIRE(SaveEpochHistory(&env, d, old_h).ok());  // back to the start
  }
  CHECK(saw_new);
  CHECK(saw_old);
  // A damaged file is reported as corruption, not as missing.
  std::string bytes = old_h.Encode();
  bytes[20] ^= 1;
  {
    auto f = Env::Default()->NewWritableFile(JoinPath(d, kEpochHistoryFileName), OpenMode::kCreateTruncate);
    REQUIRE(f.has_value());
    REQUIRE((*f)->WriteAt(0, AsBytes(bytes)).ok());
    REQUIRE((*f)->Close().ok());
  }
  CHECK(LoadEpochHistory(Env::Default(), d).error().IsCorruption());
}

TEST_CASE("highest epoch seen: absent is 0, saved durably, a damaged file is corruption") {
  testing::TempDir dir;
  const std::string d = dir.Sub("wal");
  REQUIRE(Env::Default()->CreateDirs(d).ok());
  FaultEnv env(Env::Default());
  REQUIRE(LoadSeenEpoch(&env, d).has_value());
  CHECK(*LoadSeenEpoch(&env, d) == 0);
  REQUIRE(SaveSeenEpoch(&env, d, 7).ok());
  CHECK(env.unsynced_files() == 0);
  CHECK(env.unsynced_dir_ops() == 0);
  env.SimulatePowerLoss();
  CHECK(*LoadSeenEpoch(&env, d) == 7);
  // Power cut before each step of the next save: 7 or 9, never torn.
  bool saw_new = false, saw_old = false;
  for (uint64_t n = 0; n < 8; ++n) {
    CAPTURE(n);
    env.CutPowerAfter(n);
    Status s = SaveSeenEpoch(&env, d, 9);
    env.PowerOn();
    env.SimulatePowerLoss();
    auto loaded = LoadSeenEpoch(&env, d);
    REQUIRE_MESSAGE(loaded.has_value(), loaded.error().ToString());
    if (s.ok()) CHECK(*loaded == 9);
    CHECK((*loaded == 7 || *loaded == 9));
    saw_new = saw_new || *loaded == 9;
    saw_old = saw_old || *loaded == 7;
    REQUIRE(SaveSeenEpoch(&env, d, 7).ok());
  }
  CHECK(saw_new);
  CHECK(saw_old);
  // The bytes of docs/wal_format.md §8.5, then every flipped bit and cut refused.
  auto bytes = Env::Default()->ReadFileToString(JoinPath(d, kSeenEpochFileName));
  REQUIRE(bytes.has_value());
  static const char* hexd = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : *bytes) {
    hex += hexd[c >> 4];
    hex += hexd[c & 15];
  }
  CHECK(hex.substr(0, 40) == "6b76645345454e45" "01000000" "0700000000000000");
  auto put = [&](const std::string& b) {
    auto f = Env::Default()->NewWritableFile(JoinPath(d, kSeenEpochFileName), OpenMode::kCreateTruncate);
    REQUIRE(f.has_value());
    REQUIRE((*f)->WriteAt(0, AsBytes(b)).ok());
    REQUIRE((*f)->Close().ok());
  };
  for (size_t i = 0; i < bytes->size(); ++i) {
    std::string bad = *bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    put(bad);
    CAPTURE(i);
    CHECK(LoadSeenEpoch(Env::Default(), d).error().IsCorruption());
  }
  for (size_t n = 0; n < bytes->size(); ++n) {
    put(bytes->substr(0, n));
    CHECK(LoadSeenEpoch(Env::Default(), d).error().IsCorruption());
  }
}

}  // namespace
}  // namespace kvd
