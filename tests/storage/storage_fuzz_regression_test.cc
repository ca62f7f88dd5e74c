// Replays every checked-in input of the wal_reader and snapshot_reader fuzz
// targets (crash regressions and seed corpora) through the functions the
// fuzzer calls, checks that the valid-* seeds still match the format, and
// runs a short burst of mutated seeds. A failing invariant aborts with the
// condition; the file being replayed is printed first.
#include <doctest/doctest.h>

#include <cstdio>
#include <random>
#include <string>

#include "fuzz/mem_env.h"
#include "fuzz/replay.h"
#include "fuzz/snapshot_reader_target.h"
#include "fuzz/wal_reader_target.h"

namespace kvd::fuzz {
namespace {

using Target = int (*)(const uint8_t*, size_t);

int Run(Target target, const std::string& data) {
  return target(reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

void ReplayAll(const char* name, Target target) {
  const auto files = FuzzInputs(name, /*include_corpus=*/true);
  // The seed corpus is checked in: an empty list means the path is wrong.
  REQUIRE(files.size() >= 5);
  for (const auto& f : files) {
    std::fprintf(stderr, "replay %s\n", f.c_str());
    CHECK(Run(target, ReadInput(f)) == 0);
  }
}

void Mutate(const char* name, Target target, int rounds) {
  const uint32_t seed = std::random_device{}();
  CAPTURE(seed);
  std::fprintf(stderr, "%s mutation seed %u\n", name, seed);
  std::mt19937 rng(seed);
  const auto files = FuzzInputs(name, /*include_corpus=*/true);
  REQUIRE_FALSE(files.empty());
  for (int i = 0; i < rounds; i++) {
    std::string data = ReadInput(files[rng() % files.size()]);
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int j = 0; j < flips && !data.empty(); j++) data[rng() % data.size()] ^= static_cast<char>(1 + rng() % 255);
    if (rng() % 4 == 0 && !data.empty()) data.resize(rng() % data.size());
    CHECK(Run(target, data) == 0);
  }
}

bool IsValidSeed(const std::filesystem::path& p) { return p.filename().string().rfind("valid-", 0) == 0; }

}  // namespace

TEST_CASE("wal_reader: checked-in regressions and corpus replay cleanly") {
  ReplayAll("wal_reader", WalReaderTarget);
}

TEST_CASE("snapshot_reader: checked-in regressions and corpus replay cleanly") {
  ReplayAll("snapshot_reader", SnapshotReaderTarget);
}

TEST_CASE("wal_reader: valid-* seeds still recover without damage") {
  int seen = 0;
  for (const auto& f : FuzzInputs("wal_reader", true)) {
    if (!IsValidSeed(f)) continue;
    ++seen;
    CAPTURE(f.string());
    MemEnv env;
    const std::string data = ReadInput(f);
    REQUIRE(data.size() >= 24);
    const Lsn first = wal::GetFixed64(data.data() + 16);
    env.files()[JoinPath(kWalFuzzDir, SegmentFileName(first))] = data;
    WalFuzzRun run = RecoverForFuzz(&env, RecoveryMode::kAbsolute, true, first - 1);
    CHECK(run.status.ok());
    REQUIRE(run.report.segments.size() == 1);
    CHECK(run.report.segments[0].damage == DamageKind::kNone);
  }
  CHECK(seen >= 2);
}

TEST_CASE("snapshot_reader: valid-* seeds still load") {
  int seen = 0;
  for (const auto& f : FuzzInputs("snapshot_reader", true)) {
    if (!IsValidSeed(f)) continue;
    ++seen;
    CAPTURE(f.string());
    MemEnv env;
    const std::string path = "/snap/" + SnapshotFileName(1);
    env.files()[path] = ReadInput(f);
    State state;
    auto loaded = LoadSnapshot(&env, path, &state);
    CHECK(loaded.has_value());
  }
  CHECK(seen >= 2);
}

TEST_CASE("storage fuzz targets: mutated seeds") {
  Mutate("wal_reader", WalReaderTarget, 1500);
  Mutate("snapshot_reader", SnapshotReaderTarget, 3000);
}

}  // namespace kvd::fuzz
