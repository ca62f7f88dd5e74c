// WAL throughput: buffered append (encode + WalWriter::Write, no fdatasync)
// and RecoverWal replay from a warm page cache, for 16-byte keys and
// 100-byte values. Prints figures; asserts nothing.
// Usage: wal_bench [dir] [records]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "kvd/state.h"
#include "kvd/wal.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

void Check(const kvd::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : (std::filesystem::temp_directory_path() / "kvd-wal-bench").string();
  uint64_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1'000'000;
  constexpr uint64_t kGroup = 1024;  // records per Write, like a commit group
  std::filesystem::remove_all(dir);
  kvd::Env* env = kvd::Env::Default();

  char key[24];  // 16 digits used
  std::string value(100, 'v');
  std::string buf;
  buf.reserve(kGroup * 160);

  // 1. Encoding alone.
  auto t0 = Clock::now();
  uint64_t bytes = 0;
  for (uint64_t lsn = 1; lsn <= n; ++lsn) {
    std::snprintf(key, sizeof(key), "%016llu", static_cast<unsigned long long>(lsn));
    kvd::AppendPutRecord(&buf, lsn, kvd::kFirstEpoch, {key, 16}, value);
    if (lsn % kGroup == 0) {
      bytes += buf.size();
      buf.clear();
    }
  }
  double enc = Seconds(t0);
  std::printf("encode only:            %10.0f records/s (%.1f MB/s)\n", n / enc, bytes / enc / 1e6);

  // 2. Encode + WalWriter::Write (page cache), no fdatasync.
  kvd::WalRecoveryReport none;
  kvd::WalWriterOptions wo;
  wo.dir = dir;
  auto w = kvd::WalWriter::Open(env, wo, none, 1);
  Check(w.error(), "open");
  buf.clear();
  t0 = Clock::now();
  kvd::Lsn first = 1;
  for (uint64_t lsn = 1; lsn <= n; ++lsn) {
    std::snprintf(key, sizeof(key), "%016llu", static_cast<unsigned long long>(lsn));
    kvd::AppendPutRecord(&buf, lsn, kvd::kFirstEpoch, {key, 16}, value);
    if (lsn % kGroup == 0 || lsn == n) {
      Check((*w)->Write(buf, first, lsn), "write");
      buf.clear();
      first = lsn + 1;
    }
  }
  double app = Seconds(t0);
  std::printf("append (encode+write):  %10.0f records/s (%llu segments, no fdatasync)\n", n / app,
              static_cast<unsigned long long>((*w)->stats().segments));
  Check((*w)->Close(), "close");

  // 3. Replay from the warm page cache: verify + decode, then also apply to a State.
  for (int apply = 0; apply < 2; ++apply) {
    kvd::State state;
    kvd::WalRecoveryOptions ro;
    ro.dir = dir;
    ro.dry_run = true;
    uint64_t seen = 0;
    ro.apply = [&](const kvd::WalRecord& r) {
      ++seen;
      return apply ? kvd::ApplyRecord(&state, r) : kvd::Status::Ok();
    };
    kvd::WalRecoveryReport rep;
    t0 = Clock::now();
    Check(kvd::RecoverWal(env, ro, &rep), "recover");
    double rec = Seconds(t0);
    if (seen != n) {
      std::fprintf(stderr, "replayed %llu of %llu\n", static_cast<unsigned long long>(seen),
                   static_cast<unsigned long long>(n));
      return 1;
    }
    std::printf("replay %-16s  %10.0f records/s (%.1f MB/s)\n", apply ? "+ apply to State:" : "(verify only):",
                n / rec, rep.bytes_replayed / rec / 1e6);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
