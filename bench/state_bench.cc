// State and snapshot micro-benchmark: memory per key, inserts, lookups,
// overwrites and deletes, snapshot write and load speed for N keys (default
// 1 M, 16-byte keys, 100-byte values).
//
// Each phase reads its keys from one contiguous stream in the order it uses
// them, as the daemon reads them from a request buffer: fetching a random
// std::string instead (16 bytes: heap-allocated) would add two cache misses
// of harness to every operation.
//
//   state_bench [--keys N] [--dir DIR] [--baseline]
//
// --baseline measures a std::map<std::string, std::string> with the same data
// instead (the "before" layout). Figures only; nothing is asserted.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kvd/env.h"
#include "kvd/snapshot.h"
#include "kvd/state.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// CPU time of this thread: the in-memory figures are CPU-bound, and the
// machine is shared, so wall time would mostly measure the neighbours.
double CpuNow() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

size_t RssBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

size_t HeapInUse() { return mallinfo2().uordblks; }

// 16-byte keys: "k" + 15 digits of a pseudo-random permutation of [0, n).
std::vector<std::string> MakeKeys(size_t n) {
  std::vector<std::string> keys(n);
  for (size_t i = 0; i < n; ++i) {
    char k[32];
    std::snprintf(k, sizeof(k), "k%015zu", i);
    keys[i] = k;
  }
  std::mt19937_64 rng(42);
  std::shuffle(keys.begin(), keys.end(), rng);
  return keys;
}

// The keys in the order given by idx, back to back (all keys are 16 bytes).
std::string Stream(const std::vector<std::string>& keys, const std::vector<size_t>& idx) {
  std::string out;
  out.reserve(idx.size() * 16);
  for (size_t i : idx) out += keys[i];
  return out;
}

std::string_view KeyAt(const std::string& stream, size_t i) {
  return std::string_view(stream).substr(i * 16, 16);
}

std::vector<size_t> RandomIndexes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<size_t> idx(n);
  for (auto& i : idx) i = rng() % n;
  return idx;
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 1000000;
  std::string dir = "/tmp";
  bool baseline = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--keys" && i + 1 < argc) {
      n = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--baseline") {
      baseline = true;
    } else {
      std::fprintf(stderr, "usage: %s [--keys N] [--dir DIR] [--baseline]\n", argv[0]);
      return 2;
    }
  }
  std::vector<std::string> keys = MakeKeys(n);
  std::vector<size_t> in_order(n);
  for (size_t i = 0; i < n; ++i) in_order[i] = i;
  const std::string insert_stream = Stream(keys, in_order);  // keys are shuffled already
  const std::string lookup_stream = Stream(keys, RandomIndexes(n, 7));
  const std::string value(100, 'v');
  const double raw = 116.0;
  malloc_trim(0);
  const size_t rss0 = RssBytes(), heap0 = HeapInUse();

  if (baseline) {
    std::map<std::string, std::string> m;
    double c0 = CpuNow();
    for (auto& k : keys) m[k] = value;
    double ins = CpuNow() - c0;
    const size_t rss = RssBytes() - rss0, heap = HeapInUse() - heap0;
    std::printf("std::map<string,string>: %zu keys, insert %.0f keys/s\n", n, n / ins);
    std::printf("  RSS delta %.1f MiB = %.1f B/key; heap %.1f B/key; raw data %.0f B/key\n",
                rss / 1048576.0, double(rss) / n, double(heap) / n, raw);
    return 0;
  }

  kvd::State s;
  double c0 = CpuNow();
  for (size_t i = 0; i < n; ++i) s.Put(KeyAt(insert_stream, i), value);
  double ins = CpuNow() - c0;
  const size_t rss = RssBytes() - rss0, heap = HeapInUse() - heap0;
  std::printf("kvd::State: %zu keys (random order), insert %.0f keys/s (CPU time)\n", n, n / ins);
  std::printf(
      "  RSS delta %.1f MiB = %.1f B/key; heap %.1f B/key; MemoryBytes %.1f B/key; "
      "raw data %.0f B/key (DataBytes %.1f)\n",
      rss / 1048576.0, double(rss) / n, double(heap) / n, double(s.MemoryBytes()) / n, raw,
      double(s.DataBytes()) / n);

  c0 = CpuNow();
  size_t hits = 0;
  for (size_t i = 0; i < n; ++i) hits += s.Get(KeyAt(lookup_stream, i)).has_value();
  double get = CpuNow() - c0;
  std::printf("  random lookups: %.0f /s CPU time (%zu hits)\n", n / get, hits);
  std::string value2(100, 'w');
  c0 = CpuNow();
  size_t existed = 0;
  for (size_t i = 0; i < n; ++i) existed += s.Put(KeyAt(lookup_stream, i), value2);
  double ovw = CpuNow() - c0;
  std::printf("  random overwrites (same size): %.0f /s CPU time (%zu existed)\n", n / ovw,
              existed);

  c0 = CpuNow();
  size_t scanned = 0;
  for (auto c = s.Begin(); c.Valid(); c.Next()) scanned += c.key().size() > 0;
  std::printf("  full scan: %.0f entries/s\n", scanned / (CpuNow() - c0));
  auto t = Clock::now();
  size_t pc = s.CountPrefix("k0000000");
  std::printf("  CountPrefix(\"k0000000\") = %zu in %.3f ms\n", pc, Seconds(t) * 1e3);

  kvd::Env* env = kvd::Env::Default();
  t = Clock::now();
  auto w = kvd::WriteSnapshot(env, dir, s, 1);
  double wr = Seconds(t);
  if (!w) {
    std::fprintf(stderr, "snapshot write failed: %s\n", w.error().ToString().c_str());
    return 1;
  }
  std::printf("snapshot write (incl. fsync): %.3f s, %.1f MiB, %.0f entries/s\n", wr,
              w->bytes / 1048576.0, n / wr);

  t = Clock::now();
  auto v = kvd::VerifySnapshot(env, w->path);
  double ver = Seconds(t);
  std::printf("snapshot verify: %.3f s, %.0f entries/s (%s)\n", ver, n / ver,
              v ? "ok" : v.error().ToString().c_str());

  const uint64_t digest = s.Digest();
  s.Clear();
  malloc_trim(0);
  const size_t rss1 = RssBytes(), heap1 = HeapInUse();
  kvd::State loaded;
  t = Clock::now();
  c0 = CpuNow();
  auto l = kvd::LoadSnapshot(env, w->path, &loaded);
  double ld = Seconds(t), ld_cpu = CpuNow() - c0;
  std::printf(
      "snapshot load: %.3f s wall, %.0f entries/s (CPU time: %.0f entries/s) (%s, digest %s)\n", ld,
      n / ld, n / ld_cpu, l ? "ok" : l.error().ToString().c_str(),
      loaded.Digest() == digest ? "equal" : "DIFFERS");
  std::printf(
      "  after load (keys in order, full leaves): RSS delta %.1f B/key; heap %.1f B/key; "
      "MemoryBytes %.1f B/key\n",
      double(RssBytes() - rss1) / n, double(HeapInUse() - heap1) / n,
      double(loaded.MemoryBytes()) / n);
  c0 = CpuNow();
  size_t deleted = 0;
  for (size_t i = 0; i < n / 2; ++i) deleted += loaded.Del(KeyAt(insert_stream, i));
  double del = CpuNow() - c0;
  std::printf("random deletes of half the keys: %.0f /s CPU time (%zu deleted, %zu left)\n",
              (n / 2) / del, deleted, loaded.size());
  (void)env->RemoveFile(w->path);
  return 0;
}
