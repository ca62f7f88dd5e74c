// The pieces of a snapshot transfer without sockets: the messages, the
// replica's installer (a transfer is installed only when complete, matching
// and verified; anything else leaves no file), and the primary's streamer
// (a forked child's bytes through a pipe on a libuv loop, back-pressure,
// a killed transfer reaped).
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <uv.h>

#include "daemon/repl/snapshot_installer.h"
#include "daemon/repl/snapshot_messages.h"
#include "daemon/repl/snapshot_streamer.h"
#include "kvd/crc32c.h"
#include "kvd/snapshot.h"
#include "util/temp_dir.h"

namespace kvd::daemon::repl {
namespace {

State MakeState(int n) {
  State st;
  for (int i = 0; i < n; ++i) st.Put("key-" + std::to_string(i), std::string(static_cast<size_t>(100 + i % 900), 'v'));
  return st;
}

// The bytes of a snapshot file of st at lsn.
std::string SnapshotBytes(const test::TempDir& dir, const State& st, Lsn lsn) {
  auto info = WriteSnapshotFile(Env::Default(), dir.Sub("reference.kvs"), st, lsn);
  REQUIRE(info.has_value());
  auto bytes = Env::Default()->ReadFileToString(info->path);
  REQUIRE(bytes.has_value());
  return *bytes;
}

uint32_t Crc(std::string_view s) { return Crc32c(s.data(), s.size()); }

TEST_CASE("snapshot messages round-trip and refuse bad sizes") {
  auto b = DecodeSnapshotBegin(EncodeSnapshotBegin({123456789012ULL}));
  REQUIRE(b.has_value());
  CHECK(b->snapshot_lsn == 123456789012ULL);
  auto e = DecodeSnapshotEnd(EncodeSnapshotEnd({5ULL << 33, 0xdeadbeef}));
  REQUIRE(e.has_value());
  CHECK(e->total_bytes == 5ULL << 33);
  CHECK(e->file_crc == 0xdeadbeef);
  CHECK_FALSE(DecodeSnapshotBegin("1234567").has_value());
  CHECK_FALSE(DecodeSnapshotEnd(EncodeSnapshotEnd({1, 2}) + "x").has_value());
  CHECK_FALSE(CheckSnapshotChunk("").ok());
  CHECK(CheckSnapshotChunk(std::string(kSnapshotChunkBytes, 'x')).ok());
  CHECK_FALSE(CheckSnapshotChunk(std::string(kSnapshotChunkBytes + 1, 'x')).ok());
}

TEST_CASE("the installer installs a complete, matching snapshot durably under its final name") {
  test::TempDir dir("snapxfer");
  const std::string snaps = dir.Sub("snapshots");
  const State st = MakeState(3000);
  const std::string bytes = SnapshotBytes(dir, st, 42);
  SnapshotInstaller in(Env::Default(), snaps);
  REQUIRE(in.Begin(42).ok());
  CHECK(Env::Default()->FileExists(in.incoming_path()));
  for (size_t at = 0; at < bytes.size(); at += 100'000) REQUIRE(in.Append(std::string_view(bytes).substr(at, 100'000)).ok());
  CHECK(in.bytes() == bytes.size());
  auto path = in.Finish(bytes.size(), Crc(bytes));
  REQUIRE_MESSAGE(path.has_value(), path.error().ToString());
  CHECK(*path == JoinPath(snaps, SnapshotFileName(42)));
  CHECK_FALSE(Env::Default()->FileExists(in.incoming_path()));
  State loaded;
  auto info = LoadSnapshot(Env::Default(), *path, &loaded);
  REQUIRE(info.has_value());
  CHECK(loaded.Digest() == st.Digest());
}

TEST_CASE("the installer refuses a transfer that does not match, and leaves no file") {
  test::TempDir dir("snapxfer");
  const std::string snaps = dir.Sub("snapshots");
  const State st = MakeState(500);
  const std::string good = SnapshotBytes(dir, st, 9);
  SnapshotInstaller in(Env::Default(), snaps);
  auto no_files = [&] {
    auto names = Env::Default()->ListDir(snaps);
    REQUIRE(names.has_value());
    CHECK(names->empty());
  };

  SUBCASE("a flipped byte: the CRC differs") {
    std::string bad = good;
    bad[bad.size() / 2] ^= 0x01;
    REQUIRE(in.Begin(9).ok());
    REQUIRE(in.Append(bad).ok());
    auto r = in.Finish(good.size(), Crc(good));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().IsCorruption());
  }
  SUBCASE("a short transfer: the size differs") {
    REQUIRE(in.Begin(9).ok());
    REQUIRE(in.Append(std::string_view(good).substr(0, good.size() - 1)).ok());
    CHECK_FALSE(in.Finish(good.size(), Crc(good)).has_value());
  }
  SUBCASE("size and CRC match but the bytes are no snapshot") {
    std::string bad = good;
    bad[50] ^= 0x01;  // inside the body: the snapshot's own body CRC fails
    REQUIRE(in.Begin(9).ok());
    REQUIRE(in.Append(bad).ok());
    auto r = in.Finish(bad.size(), Crc(bad));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().IsCorruption());
  }
  SUBCASE("a snapshot of another LSN than announced") {
    REQUIRE(in.Begin(10).ok());
    REQUIRE(in.Append(good).ok());
    auto r = in.Finish(good.size(), Crc(good));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message().find("announced") != std::string::npos);
  }
  SUBCASE("a transfer cut short (Abort)") {
    REQUIRE(in.Begin(9).ok());
    REQUIRE(in.Append(std::string_view(good).substr(0, 100)).ok());
    in.Abort();
  }
  no_files();
  CHECK_FALSE(in.active());
}

TEST_CASE("a leftover incoming.tmp (a crash mid-transfer) is replaced by the next transfer") {
  test::TempDir dir("snapxfer");
  const std::string snaps = dir.Sub("snapshots");
  REQUIRE(Env::Default()->CreateDirs(snaps).ok());
  {
    auto f = Env::Default()->NewWritableFile(JoinPath(snaps, "incoming.tmp"), OpenMode::kCreateTruncate);
    REQUIRE(f.has_value());
    REQUIRE((*f)->WriteAt(0, std::as_bytes(std::span("stale bytes", 11))).ok());
    REQUIRE((*f)->Close().ok());
  }
  const std::string good = SnapshotBytes(dir, MakeState(10), 3);
  SnapshotInstaller in(Env::Default(), snaps);
  REQUIRE(in.Begin(3).ok());
  REQUIRE(in.Append(good).ok());
  auto path = in.Finish(good.size(), Crc(good));
  REQUIRE_MESSAGE(path.has_value(), path.error().ToString());
  CHECK(VerifySnapshot(Env::Default(), *path).has_value());
}

// Runs the loop until done() or 30 s.
template <typename Done>
void RunUntil(uv_loop_t* loop, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done() && std::chrono::steady_clock::now() < deadline) uv_run(loop, UV_RUN_ONCE);
  REQUIRE(done());
}

TEST_CASE("the streamer hands on a forked child's snapshot in chunks, with its size and CRC") {
  test::TempDir dir("snapxfer");
  const State st = MakeState(8000);
  const std::string want = SnapshotBytes(dir, st, 77);
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    SnapshotStreamer s(&loop);
    std::string got;
    size_t chunks = 0, biggest = 0;
    bool done = false;
    Status status = Status::Internal("not done");
    uint64_t bytes = 0;
    uint32_t crc = 0;
    SnapshotStreamer::Callbacks cb;
    cb.on_chunk = [&](std::string_view c) {
      got.append(c);
      ++chunks;
      biggest = std::max(biggest, c.size());
      // Back-pressure: pause after each chunk, resume a loop turn later.
      s.Pause();
    };
    cb.on_done = [&](const Status& st2, uint64_t b, uint32_t c) {
      status = st2;
      bytes = b;
      crc = c;
      done = true;
    };
    REQUIRE(s.Start(st, 77, cb).ok());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done && std::chrono::steady_clock::now() < deadline) {
      uv_run(&loop, UV_RUN_NOWAIT);
      s.Resume();
      uv_run(&loop, UV_RUN_ONCE);
    }
    REQUIRE(done);
    CHECK_MESSAGE(status.ok(), status.ToString());
    CHECK(got == want);
    CHECK(bytes == want.size());
    CHECK(crc == Crc(want));
    CHECK(chunks >= want.size() / kSnapshotChunkBytes);
    CHECK(biggest <= kSnapshotChunkBytes);
    CHECK_FALSE(s.running());
  }
  uv_run(&loop, UV_RUN_NOWAIT);  // close callbacks
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("an aborted transfer kills and reaps the child") {
  const State st = MakeState(20000);
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    SnapshotStreamer s(&loop);
    bool got_chunk = false, done = false;
    SnapshotStreamer::Callbacks cb;
    cb.on_chunk = [&](std::string_view) {
      got_chunk = true;
      s.Pause();  // the child fills the pipe and blocks
    };
    cb.on_done = [&](const Status&, uint64_t, uint32_t) { done = true; };
    REQUIRE(s.Start(st, 1, cb).ok());
    const pid_t child = s.pid();
    RunUntil(&loop, [&] { return got_chunk; });
    s.Abort();
    CHECK_FALSE(s.running());
    CHECK_FALSE(done);
    // Reaped: no such child any more.
    CHECK(::waitpid(child, nullptr, WNOHANG) == -1);
    CHECK(errno == ECHILD);
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace kvd::daemon::repl
