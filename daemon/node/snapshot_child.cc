#include "node/snapshot_child.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "kvd/snapshot.h"
#include "kvd/snapshot_stream.h"

namespace kvd::daemon {
namespace {

void PutU32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
void PutU64(std::byte* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
uint32_t GetU32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
uint64_t GetU64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

void EncodeChildResult(bool ok, Lsn lsn, uint64_t entries, uint64_t bytes, uint64_t duration_us,
                       std::string_view error, std::array<std::byte, kChildResultBytes>* out) {
  std::byte* p = out->data();
  std::memset(p, 0, out->size());
  PutU32(p, kChildResultMagic);
  PutU32(p + 4, ok ? 1 : 0);
  PutU64(p + 8, lsn);
  PutU64(p + 16, entries);
  PutU64(p + 24, bytes);
  PutU64(p + 32, duration_us);
  const size_t n = std::min(error.size(), kChildErrorBytes - 1);
  if (n > 0) std::memcpy(p + 40, error.data(), n);
}

Result<ChildResult> ParseChildResult(std::span<const std::byte> data) {
  if (data.size() != kChildResultBytes) {
    return Status::Corruption("snapshot child result: " + std::to_string(data.size()) +
                              " bytes, expected " + std::to_string(kChildResultBytes));
  }
  const std::byte* p = data.data();
  if (GetU32(p) != kChildResultMagic) return Status::Corruption("snapshot child result: bad magic");
  ChildResult r;
  r.ok = GetU32(p + 4) == 1;
  r.lsn = GetU64(p + 8);
  r.entries = GetU64(p + 16);
  r.bytes = GetU64(p + 24);
  r.duration = std::chrono::microseconds(GetU64(p + 32));
  const char* err = reinterpret_cast<const char*>(p + 40);
  r.error.assign(err, strnlen(err, kChildErrorBytes));
  return r;
}

namespace {

std::array<int, kMaxChildLockFds> g_lock_fds = {-1, -1};

// Closes every descriptor >= 3 but those in keep (no allocation: fork-safe).
void CloseInheritedFds(std::array<int, kMaxChildLockFds + 1> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned next = 3;  // lowest descriptor not yet handled
  bool ok = true;
  for (int k : keep) {
    if (k < static_cast<int>(next)) continue;  // -1, 0..2 or a duplicate
    if (static_cast<unsigned>(k) > next) ok = ok && ::close_range(next, static_cast<unsigned>(k) - 1, 0) == 0;
    next = static_cast<unsigned>(k) + 1;
  }
  if (ok && ::close_range(next, ~0U, 0) == 0) return;
  // close_range unavailable (kernel < 5.9): walk the descriptor table.
  struct rlimit rl;
  const int max_fd = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                         ? static_cast<int>(rl.rlim_cur)
                         : 65536;
  for (int fd = 3; fd < max_fd; ++fd) {
    if (std::find(keep.begin(), keep.end(), fd) == keep.end()) ::close(fd);
  }
}

#ifdef KVD_FAULT_INJECTION
// Test builds: KVD_TEST_SNAPSHOT_CHILD_LINGER_MS=N makes the child outlive a
// SIGKILLed parent by N ms (< 600 s) before it writes (no PDEATHSIG), standing in for a
// rename or fsync the kernel finishes after the parent died
// (tests/integration/test_snapshot_orphan.py). 0 when unset.
unsigned LingerMs() {
  const char* v = std::getenv("KVD_TEST_SNAPSHOT_CHILD_LINGER_MS");
  unsigned ms = 0;
  for (; v != nullptr && *v >= '0' && *v <= '9' && ms < 60000; ++v) ms = ms * 10 + static_cast<unsigned>(*v - '0');
  return ms;
}
#else
constexpr unsigned LingerMs() { return 0; }
#endif

}  // namespace

void SetSnapshotChildLockFds(std::array<int, kMaxChildLockFds> fds) { g_lock_fds = fds; }

void RunSnapshotChild(Env* env, const std::string& dir, const State& state, Lsn lsn, int result_fd) {
  // The parent's libuv signal handlers would forward signals into the
  // parent's loop through an inherited pipe: restore the defaults. Die with
  // the parent: an orphan must not race a restarted kvd in the directory.
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE}) ::signal(sig, SIG_DFL);
  // PDEATHSIG only makes the window short: a syscall in flight (rename, fsync)
  // still completes after the parent died. What makes a late rename harmless
  // is the lock kept below: no new kvd recovers until this process is gone.
  const unsigned linger_ms = LingerMs();
  const pid_t parent = ::getppid();
  if (linger_ms == 0) ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);  // the parent died before prctl took effect
  // Close every inherited descriptor but the result pipe and the
  // data-directory locks: client sockets (a client kvd closed must see EOF
  // now, not when the child exits), the loop's epoll and eventfds. The child
  // opens what it writes itself.
  CloseInheritedFds({result_fd, g_lock_fds[0], g_lock_fds[1]});
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  if (linger_ms > 0) ::usleep(linger_ms * 1000);

  const auto t0 = std::chrono::steady_clock::now();
  Result<SnapshotInfo> info = WriteSnapshot(env, dir, state, lsn);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - t0).count();
  std::array<std::byte, kChildResultBytes> rec;
  if (info.has_value()) {
    EncodeChildResult(true, info->lsn, info->entries, info->bytes, static_cast<uint64_t>(us), {}, &rec);
  } else {
    EncodeChildResult(false, lsn, 0, 0, static_cast<uint64_t>(us), info.error().ToString(), &rec);
  }
  // kChildResultBytes < PIPE_BUF: one write is atomic.
  ssize_t n;
  do {
    n = ::write(result_fd, rec.data(), rec.size());
  } while (n < 0 && errno == EINTR);
  ::_exit(info.has_value() && n == static_cast<ssize_t>(rec.size()) ? 0 : 1);
}

namespace {

#ifdef KVD_FAULT_INJECTION
// Test builds: KVD_TEST_SNAPSHOT_STREAM_KIB_PER_S=N paces a snapshot
// transfer's child to about N KiB/s, so tests can act while a transfer runs
// (tests/integration/test_snapshot_transfer.py). 0 (unset): full speed.
unsigned StreamKibPerSecond() {
  const char* v = std::getenv("KVD_TEST_SNAPSHOT_STREAM_KIB_PER_S");
  unsigned n = 0;
  for (; v != nullptr && *v >= '0' && *v <= '9' && n < 10'000'000; ++v) n = n * 10 + static_cast<unsigned>(*v - '0');
  return n;
}
#else
constexpr unsigned StreamKibPerSecond() { return 0; }
#endif

// Passes writes on in 64 KiB pieces, sleeping between them (the test pace).
class PacedSink final : public WritableFile {
 public:
  PacedSink(WritableFile* out, unsigned kib_per_s) : out_(out), kib_per_s_(kib_per_s) {}
  Status WriteAt(uint64_t offset, std::span<const std::byte> data) override {
    constexpr size_t kPiece = 64 * 1024;
    for (size_t at = 0; at < data.size(); at += kPiece) {
      const size_t n = std::min(kPiece, data.size() - at);
      KVD_RETURN_IF_ERROR(out_->WriteAt(offset + at, data.subspan(at, n)));
      ::usleep(static_cast<useconds_t>(uint64_t{n} * 1'000'000 / (uint64_t{kib_per_s_} * 1024)));
    }
    return Status::Ok();
  }
  Status Sync() override { return out_->Sync(); }
  Status SyncAll() override { return out_->SyncAll(); }
  Status Allocate(uint64_t o, uint64_t l) override { return out_->Allocate(o, l); }
  Status Truncate(uint64_t s) override { return out_->Truncate(s); }
  Result<uint64_t> Size() override { return out_->Size(); }
  Status Close() override { return out_->Close(); }
  const std::string& path() const override { return out_->path(); }

 private:
  WritableFile* out_;
  unsigned kib_per_s_;
};

}  // namespace

void RunSnapshotStreamChild(const State& state, Lsn lsn, int out_fd) {
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE}) ::signal(sig, SIG_DFL);
  const pid_t parent = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);
  CloseInheritedFds({out_fd, -1, -1});
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  std::unique_ptr<WritableFile> pipe = NewFdStreamFile(out_fd, "snapshot transfer pipe");
  const unsigned pace = StreamKibPerSecond();
  PacedSink paced(pipe.get(), pace);
  uint64_t bytes = 0;
  const Status s = WriteSnapshotStream(pace > 0 ? static_cast<WritableFile*>(&paced) : pipe.get(), state, lsn, &bytes);
  ::_exit(s.ok() ? 0 : 1);
}

}  // namespace kvd::daemon
