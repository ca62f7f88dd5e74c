// Measures fdatasync rate after small appends into (a) a growing file,
// (b) fallocated-but-unwritten extents, (c) zero-filled written blocks, and
// the cost of zero-filling a chunk ahead of the writer. Chooses the WAL's
// preallocation strategy (docs/wal_format.md, "Preallocation").
// Usage: prealloc_probe_bench [dir] [seconds-per-case]
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr off_t kFileBytes = 64 << 20;

enum class Mode { kGrow, kFallocate, kZeroFilled };
const char* Name(Mode m) {
  switch (m) {
    case Mode::kGrow: return "growing file";
    case Mode::kFallocate: return "fallocated, unwritten";
    case Mode::kZeroFilled: return "zero-filled, written";
  }
  return "?";
}

void Die(const char* what) {
  std::perror(what);
  std::exit(1);
}

void ZeroFill(int fd, off_t from, off_t len) {
  std::vector<char> zeros(1 << 20, 0);
  for (off_t off = from; off < from + len;) {
    size_t n = static_cast<size_t>(std::min<off_t>(static_cast<off_t>(zeros.size()), from + len - off));
    if (::pwrite(fd, zeros.data(), n, off) != static_cast<ssize_t>(n)) Die("pwrite zeros");
    off += static_cast<off_t>(n);
  }
}

void RunCase(const std::string& dir, Mode mode, size_t write_bytes, double seconds) {
  std::string path = dir + "/probe.dat";
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) Die("open");
  if (mode == Mode::kFallocate && ::fallocate(fd, 0, 0, kFileBytes) != 0) Die("fallocate");
  if (mode == Mode::kZeroFilled) ZeroFill(fd, 0, kFileBytes);
  if (::fsync(fd) != 0) Die("fsync");
  std::vector<char> buf(write_bytes, 'x');
  off_t off = 0;
  uint64_t n = 0;
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline && off + static_cast<off_t>(write_bytes) <= kFileBytes) {
    if (::pwrite(fd, buf.data(), write_bytes, off) != static_cast<ssize_t>(write_bytes)) Die("pwrite");
    if (::fdatasync(fd) != 0) Die("fdatasync");
    off += static_cast<off_t>(write_bytes);
    ++n;
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("%-24s %5zu B writes: %8.0f fdatasync/s (%llu in %.2f s)\n", Name(mode), write_bytes,
              static_cast<double>(n) / secs, static_cast<unsigned long long>(n), secs);
  ::close(fd);
  ::unlink(path.c_str());
}

void ZeroChunkCost(const std::string& dir, off_t chunk) {
  std::string path = dir + "/probe.dat";
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) Die("open");
  if (::fallocate(fd, 0, 0, kFileBytes) != 0) Die("fallocate");
  if (::fsync(fd) != 0) Die("fsync");
  int rounds = 0;
  auto start = Clock::now();
  for (off_t off = 0; off + chunk <= kFileBytes && rounds < 32; off += chunk, ++rounds) {
    ZeroFill(fd, off, chunk);
    if (::fdatasync(fd) != 0) Die("fdatasync");
  }
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count() / rounds;
  std::printf("zero-fill %4lld KiB chunk + fdatasync: %.2f ms each\n",
              static_cast<long long>(chunk >> 10), ms);
  ::close(fd);
  ::unlink(path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : ".";
  double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  for (size_t bytes : {size_t{128}, size_t{4096}}) {
    for (Mode m : {Mode::kGrow, Mode::kFallocate, Mode::kZeroFilled}) RunCase(dir, m, bytes, seconds);
  }
  for (off_t chunk : {off_t{256} << 10, off_t{1} << 20, off_t{4} << 20}) ZeroChunkCost(dir, chunk);
  return 0;
}
