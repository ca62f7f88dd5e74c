// Snapshot files: round trips, damage detection, listing and pruning, and
// writing from a forked child.
#include "kvd/snapshot.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kvd/crc32c.h"
#include "util/temp_dir.h"

namespace kvd {
namespace {

using namespace std::string_literals;

// A temp dir named kvd-snapshot-test-*.
class TempDir : public test::TempDir {
 public:
  TempDir() : test::TempDir("snapshot-test") {}
};

std::string ReadAll(const std::string& path) {
  auto r = Env::Default()->ReadFileToString(path);
  REQUIRE(r.has_value());
  return *r;
}

void WriteRaw(const std::string& path, std::string_view data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(std::fwrite(data.data(), 1, data.size(), f) == data.size());
  REQUIRE(std::fclose(f) == 0);
}

// Overwrites bytes in place. Tests damage files this way (and shrink them
// with truncate) rather than rewriting them from zero: ext4 flushes a file
// truncated to zero and rewritten on close (auto_da_alloc), which made
// thousands of iterations wait on the disk.
void OverwriteAt(const std::string& path, size_t offset, std::string_view data) {
  FILE* f = std::fopen(path.c_str(), "r+b");
  REQUIRE(f != nullptr);
  REQUIRE(std::fseek(f, static_cast<long>(offset), SEEK_SET) == 0);
  REQUIRE(std::fwrite(data.data(), 1, data.size(), f) == data.size());
  REQUIRE(std::fclose(f) == 0);
}

std::vector<std::pair<std::string, std::string>> Dump(const State& s) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto c = s.Begin(); c.Valid(); c.Next()) out.emplace_back(c.key(), c.value());
  return out;
}

void Fill(State* s, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < n; ++i) {
    std::string k = "key" + std::to_string(rng() % 100000);
    k.push_back(static_cast<char>(rng()));  // binary byte, NUL and 0xFF included
    std::string v(rng() % 64, static_cast<char>(rng()));
    s->Put(k, v);
  }
}

// Loading must either fail with kCorruption and leave the state empty, or
// (never expected for damaged files) produce exactly the original.
void ExpectRejected(Env* env, const std::string& path) {
  State s;
  s.Put("stale", "content");
  auto r = LoadSnapshot(env, path, &s);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == Code::kCorruption);
  CHECK(r.error().message().find(path) != std::string::npos);
  CHECK(r.error().message().find("offset") != std::string::npos);
  CHECK(s.size() == 0);
  CHECK_FALSE(VerifySnapshot(env, path).has_value());
}

TEST_CASE("file names") {
  CHECK(SnapshotFileName(42) == "snap-00000000000000000042.kvs");
  CHECK(SnapshotFileName(UINT64_MAX) == "snap-18446744073709551615.kvs");
  CHECK(ParseSnapshotFileName("snap-00000000000000000042.kvs") == Lsn{42});
  CHECK(ParseSnapshotFileName(SnapshotFileName(UINT64_MAX)) == UINT64_MAX);
  CHECK_FALSE(ParseSnapshotFileName("snap-00000000000000000042.kvs.tmp"));
  CHECK_FALSE(ParseSnapshotFileName("snap-99999999999999999999.kvs"));  // overflows
  CHECK_FALSE(ParseSnapshotFileName("snap-0000000000000000004x.kvs"));
  CHECK_FALSE(ParseSnapshotFileName("snap-42.kvs"));
  CHECK_FALSE(ParseSnapshotFileName("wal-00000000000000000042.log"));
}

TEST_CASE("round trip: empty, binary keys, large values") {
  TempDir dir;
  Env* env = Env::Default();
  SUBCASE("empty") {
    State s;
    auto w = WriteSnapshot(env, dir.path(), s, 0);
    REQUIRE(w.has_value());
    CHECK(w->bytes == 60);
    CHECK(w->entries == 0);
    State t;
    t.Put("junk", "x");
    auto r = LoadSnapshot(env, w->path, &t);
    REQUIRE(r.has_value());
    CHECK(t.size() == 0);
    CHECK(r->lsn == 0);
  }
  SUBCASE("many entries and large values") {
    State s;
    Fill(&s, 30000, 7);
    s.Put(""s, "empty key");
    s.Put("\xff\xff"s, std::string(3 << 20, 'L'));  // larger than the 1 MiB write buffer
    s.Put("mid"s, std::string(kMaxValueBytes, '\0'));
    s.Put("zero-len-value"s, "");
    auto w = WriteSnapshot(env, dir.path(), s, 123456789);
    REQUIRE(w.has_value());
    CHECK(w->path == JoinPath(dir.path(), SnapshotFileName(123456789)));
    CHECK(w->entries == s.size());
    CHECK(w->bytes == *env->FileSize(w->path));
    CHECK_FALSE(env->FileExists(w->path + ".tmp"));
    State t;
    auto r = LoadSnapshot(env, w->path, &t);
    REQUIRE(r.has_value());
    CHECK(r->lsn == 123456789);
    CHECK(r->entries == s.size());
    CHECK(t.Digest() == s.Digest());
    CHECK(Dump(t) == Dump(s));
    auto v = VerifySnapshot(env, w->path);
    REQUIRE(v.has_value());
    CHECK(v->entries == s.size());
  }
}

TEST_CASE("the worked example in docs/snapshot_format.md loads") {
  // 83 bytes copied from the spec.
  const unsigned char bytes[] = {
      0x4b, 0x56, 0x44, 0x53, 0x4e, 0x41, 0x50, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0xc6, 0x68, 0x57, 0x58, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00,
      0x00, 0x00, 0x61, 0x31, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x62, 0x00,
      0x78, 0x79, 0x7a, 0x4b, 0x56, 0x44, 0x53, 0x45, 0x4e, 0x44, 0x00, 0x02, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x7a, 0x33, 0x76, 0x71, 0xc5, 0xb8, 0x68, 0x13};
  TempDir dir;
  std::string path = JoinPath(dir.path(), SnapshotFileName(42));
  WriteRaw(path, {reinterpret_cast<const char*>(bytes), sizeof(bytes)});
  State s;
  auto r = LoadSnapshot(Env::Default(), path, &s);
  REQUIRE(r.has_value());
  CHECK(r->lsn == 42);
  CHECK(s.size() == 2);
  CHECK(*s.Get("a") == "1");
  CHECK(*s.Get("b\0"s) == "xyz");
  // And our writer produces exactly these bytes.
  TempDir dir2;
  auto w = WriteSnapshot(Env::Default(), dir2.path(), s, 42);
  REQUIRE(w.has_value());
  CHECK(ReadAll(w->path) == std::string(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

TEST_CASE("keys out of order are corruption even with valid checksums") {
  // Hand-built file: "b" before "a", every CRC correct.
  auto u32 = [](std::string* s, uint32_t v) {
    for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
  };
  auto u64 = [](std::string* s, uint64_t v) {
    for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
  };
  for (bool duplicate : {false, true}) {
    std::string h("KVDSNAP\0"s);
    u32(&h, 1);
    u32(&h, 0);
    u64(&h, 7);
    u64(&h, 2);
    u32(&h, Crc32c(h.data(), h.size()));
    std::string body;
    for (std::string k : {"b"s, duplicate ? "b"s : "a"s}) {
      u32(&body, 1);
      u32(&body, 1);
      body += k + "v";
    }
    std::string t("KVDSEND\0"s);
    u64(&t, 2);
    u32(&t, Crc32c(body.data(), body.size()));
    u32(&t, Crc32c(t.data(), t.size()));
    TempDir dir;
    std::string path = JoinPath(dir.path(), SnapshotFileName(7));
    WriteRaw(path, h + body + t);
    ExpectRejected(Env::Default(), path);
    State s;
    auto r = LoadSnapshot(Env::Default(), path, &s);
    CHECK(r.error().message().find("out of order") != std::string::npos);
  }
}

TEST_CASE("truncation at every byte is detected") {
  TempDir dir;
  Env* env = Env::Default();
  State s;
  Fill(&s, 40, 3);
  auto w = WriteSnapshot(env, dir.path(), s, 9);
  REQUIRE(w.has_value());
  const std::string full = ReadAll(w->path);
  std::string cut = JoinPath(dir.path(), "cut");
  WriteRaw(cut, full);
  for (size_t len = full.size(); len-- > 0;) {
    CAPTURE(len);
    REQUIRE(::truncate(cut.c_str(), static_cast<off_t>(len)) == 0);
    REQUIRE(*env->FileSize(cut) == len);
    ExpectRejected(env, cut);
  }
  // Extra bytes after a valid file are damage too.
  WriteRaw(cut, full + "x");
  ExpectRejected(env, cut);
}

TEST_CASE("random bit flips are always detected") {
  const uint64_t seed = std::random_device{}();
  INFO("seed = " << seed);
  std::mt19937_64 rng(seed);
  TempDir dir;
  Env* env = Env::Default();
  State s;
  Fill(&s, 300, seed);
  auto w = WriteSnapshot(env, dir.path(), s, 77);
  REQUIRE(w.has_value());
  const std::string full = ReadAll(w->path);
  std::string bad = JoinPath(dir.path(), "bad");
  // Every single bit of header and trailer, then random bits of the body.
  std::vector<size_t> bits;
  for (size_t b = 0; b < 36 * 8; ++b) bits.push_back(b);
  for (size_t b = (full.size() - 24) * 8; b < full.size() * 8; ++b) bits.push_back(b);
  for (int i = 0; i < 1500; ++i) bits.push_back(rng() % (full.size() * 8));
  WriteRaw(bad, full);
  for (size_t bit : bits) {
    CAPTURE(bit);
    const char flipped = static_cast<char>(full[bit / 8] ^ (1 << (bit % 8)));
    OverwriteAt(bad, bit / 8, {&flipped, 1});
    ExpectRejected(env, bad);
    OverwriteAt(bad, bit / 8, {&full[bit / 8], 1});
  }
  // Several flips at once (CRC32C misses these with probability 2^-32).
  for (int i = 0; i < 300; ++i) {
    std::string f = full;
    int flips = 2 + static_cast<int>(rng() % 7);
    for (int j = 0; j < flips; ++j) {
      size_t bit = rng() % (f.size() * 8);
      f[bit / 8] = static_cast<char>(f[bit / 8] ^ (1 << (bit % 8)));
    }
    if (f == full) continue;
    OverwriteAt(bad, 0, f);
    ExpectRejected(env, bad);
  }
}

TEST_CASE("list and prune") {
  TempDir dir;
  Env* env = Env::Default();
  State s;
  s.Put("k", "v");
  for (Lsn lsn : {5, 30, 10, 20}) REQUIRE(WriteSnapshot(env, dir.path(), s, lsn).has_value());
  WriteRaw(JoinPath(dir.path(), SnapshotFileName(40) + ".tmp"), "half-written");
  WriteRaw(JoinPath(dir.path(), "wal-00000000000000000001.log"), "not mine");
  WriteRaw(JoinPath(dir.path(), "CONFIG.tmp"), "not mine either");

  auto list = ListSnapshots(env, dir.path());
  REQUIRE(list.has_value());
  std::vector<Lsn> lsns;
  for (auto& i : *list) lsns.push_back(i.lsn);
  CHECK(lsns == std::vector<Lsn>{30, 20, 10, 5});
  CHECK((*list)[0].entries == 1);
  CHECK((*list)[0].bytes == *env->FileSize((*list)[0].path));

  REQUIRE(PruneSnapshots(env, dir.path(), 30).ok());
  list = ListSnapshots(env, dir.path());
  REQUIRE(list.has_value());
  lsns.clear();
  for (auto& i : *list) lsns.push_back(i.lsn);
  CHECK(lsns == std::vector<Lsn>{30, 20});
  CHECK_FALSE(env->FileExists(JoinPath(dir.path(), SnapshotFileName(40) + ".tmp")));
  CHECK(env->FileExists(JoinPath(dir.path(), "wal-00000000000000000001.log")));
  CHECK(env->FileExists(JoinPath(dir.path(), "CONFIG.tmp")));

  // Pruning again changes nothing; a lone snapshot is kept.
  REQUIRE(PruneSnapshots(env, dir.path(), 30).ok());
  CHECK(ListSnapshots(env, dir.path())->size() == 2);
  REQUIRE(WriteSnapshot(env, dir.path(), s, 50).has_value());
  REQUIRE(PruneSnapshots(env, dir.path(), 50).ok());
  lsns.clear();
  list = ListSnapshots(env, dir.path());
  REQUIRE(list.has_value());
  for (auto& i : *list) lsns.push_back(i.lsn);
  CHECK(lsns == std::vector<Lsn>{50, 30});
}

TEST_CASE("a damaged snapshot is still listed, with zero entries") {
  TempDir dir;
  Env* env = Env::Default();
  WriteRaw(JoinPath(dir.path(), SnapshotFileName(3)), "garbage");
  auto list = ListSnapshots(env, dir.path());
  REQUIRE(list.has_value());
  REQUIRE(list->size() == 1);
  CHECK((*list)[0].entries == 0);
  State st;
  CHECK(LoadSnapshot(env, (*list)[0].path, &st).error().code() == Code::kCorruption);
}

TEST_CASE("written inside a forked child") {
  TempDir dir;
  Env* env = Env::Default();
  State s;
  Fill(&s, 20000, 11);
  const uint64_t digest = s.Digest();
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Child: only the snapshot writer, then _exit (no atexit handlers, no doctest).
    auto w = WriteSnapshot(env, dir.path(), s, 1000);
    ::_exit(w.has_value() && w->entries == s.size() ? 0 : 1);
  }
  // The parent mutates its copy while the child writes the old image.
  s.Put("parent-only", "x");
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  State t;
  auto r = LoadSnapshot(env, JoinPath(dir.path(), SnapshotFileName(1000)), &t);
  REQUIRE(r.has_value());
  CHECK(t.Digest() == digest);
  CHECK_FALSE(t.Get("parent-only").has_value());
}

}  // namespace
}  // namespace kvd
