// Engine micro-benchmark: buffered appends (mode none), recovery replay,
// snapshot write/load, memory per key. Prints figures; asserts nothing.
//
//   engine_bench [--records N] [--dir DIR]
// DIR defaults to $TMPDIR (or /tmp); a fresh subdirectory is used and removed.
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "kvd/engine.h"
#include "kvd/snapshot.h"

namespace {

using kvd::Clock;

double Seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int Fail(const char* what, const kvd::Status& s) {
  std::fprintf(stderr, "engine_bench: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t n = 1'000'000;
  std::string base = std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--records") == 0 && i + 1 < argc) {
      n = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
      base = argv[++i];
    } else {
      std::fprintf(stderr, "usage: engine_bench [--records N] [--dir DIR]\n");
      return 2;
    }
  }
  std::string tmpl = base + "/kvd-bench-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string dir = tmpl;

  kvd::EngineOptions o;
  o.wal_dir = dir + "/wal";
  o.snapshot_dir = dir + "/snap";
  o.durability.mode = kvd::DurabilityMode::kNone;

  // 16-byte keys, 100-byte values.
  char key[32];
  std::string value(100, 'v');
  double put_s = 0, close_s = 0;
  size_t mem = 0, data = 0;
  {
    auto e = kvd::Engine::Open(o, nullptr);
    if (!e) return Fail("open", e.error());
    auto t0 = Clock::now();
    for (uint64_t i = 0; i < n; ++i) {
      // "key" + 13 decimal digits, without printf's cost in the timed loop.
      std::memcpy(key, "key", 3);
      for (uint64_t v = i, d = 15; d >= 3; --d, v /= 10) key[d] = static_cast<char>('0' + v % 10);
      std::memcpy(value.data(), key, 16);
      auto t = (*e)->Put(std::string_view(key, 16), value, false);
      if (!t) return Fail("put", t.error());
      if ((i & 4095) == 0) (*e)->Poll(nullptr);
    }
    put_s = Seconds(t0);
    mem = (*e)->state().MemoryBytes();
    data = (*e)->state().DataBytes();
    t0 = Clock::now();
    kvd::Status s = (*e)->Close(nullptr);
    if (!s.ok()) return Fail("close", s);
    close_s = Seconds(t0);
  }
  std::printf("records                  %llu (16-byte keys, 100-byte values)\n", static_cast<unsigned long long>(n));
  std::printf("put, mode none           %.0f records/s (%.3f s; Close with final fdatasync %.3f s)\n",
              static_cast<double>(n) / put_s, put_s, close_s);
  std::printf("memory                   %.1f bytes/key (raw data %.1f bytes/key)\n",
              static_cast<double>(mem) / static_cast<double>(n), static_cast<double>(data) / static_cast<double>(n));

  kvd::RecoveryReport rep;
  auto t0 = Clock::now();
  auto e = kvd::Engine::Open(o, &rep);
  if (!e) return Fail("reopen", e.error());
  const double open_s = Seconds(t0);
  std::printf("recovery replay          %.0f records/s (%llu records, %.1f MiB, %.3f s; whole Open %.3f s)\n",
              static_cast<double>(rep.wal.records_replayed) / (static_cast<double>(rep.duration.count()) / 1e6),
              static_cast<unsigned long long>(rep.wal.records_replayed),
              static_cast<double>(rep.wal.bytes_replayed) / (1 << 20), static_cast<double>(rep.duration.count()) / 1e6,
              open_s);

  t0 = Clock::now();
  auto info = kvd::WriteSnapshot(kvd::Env::Default(), o.snapshot_dir, (*e)->state(), (*e)->SnapshotLsn());
  if (!info) return Fail("snapshot write", info.error());
  const double snap_w = Seconds(t0);
  kvd::State loaded;
  t0 = Clock::now();
  auto li = kvd::LoadSnapshot(kvd::Env::Default(), info->path, &loaded);
  if (!li) return Fail("snapshot load", li.error());
  const double snap_l = Seconds(t0);
  std::printf("snapshot write           %.0f entries/s (%.1f MiB, %.3f s)\n", static_cast<double>(info->entries) / snap_w,
              static_cast<double>(info->bytes) / (1 << 20), snap_w);
  std::printf("snapshot load            %.0f entries/s (%.3f s)\n", static_cast<double>(li->entries) / snap_l, snap_l);
  if (loaded.Digest() != (*e)->state().Digest()) std::printf("WARNING: snapshot digest differs\n");
  (void)(*e)->Close(nullptr);
  e = kvd::Status::Internal("closed");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
