// State: the ordered map, its cursor, prefix counts and digest.
#include "kvd/state.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace kvd {
namespace {

using namespace std::string_literals;

std::vector<std::pair<std::string, std::string>> Dump(const State& s) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto c = s.Begin(); c.Valid(); c.Next()) out.emplace_back(c.key(), c.value());
  return out;
}

std::vector<std::pair<std::string, std::string>> Dump(const std::map<std::string, std::string>& m) {
  return {m.begin(), m.end()};
}

TEST_CASE("put, get, overwrite, delete") {
  State s;
  CHECK(s.size() == 0);
  CHECK_FALSE(s.Get("a").has_value());
  CHECK_FALSE(s.Put("a", "1"));
  CHECK(s.Put("a", "22"));  // existed
  REQUIRE(s.Get("a").has_value());
  CHECK(*s.Get("a") == "22");
  CHECK(s.size() == 1);
  CHECK(s.DataBytes() == 3);
  CHECK(s.Del("a"));
  CHECK_FALSE(s.Del("a"));
  CHECK_FALSE(s.Get("a").has_value());
  CHECK(s.size() == 0);
  CHECK(s.DataBytes() == 0);
  CHECK(s.Digest() == State().Digest());
}

TEST_CASE("overwrite with values of every size keeps the value exact") {
  State s;
  for (size_t len : {0, 1, 100, 127, 128, 129, 16383, 16384, 5, 200000, 3}) {
    std::string v(len, static_cast<char>('a' + len % 26));
    s.Put("k", v);
    REQUIRE(s.Get("k").has_value());
    CHECK(*s.Get("k") == v);
    CHECK(s.DataBytes() == 1 + len);
  }
}

TEST_CASE("a value aliasing the stored value can be put back") {
  State s;
  s.Put("k", "hello world");
  std::string_view v = *s.Get("k");
  s.Put("k", v.substr(6));  // shorter, same block: must memmove, not read freed memory
  CHECK(*s.Get("k") == "world");
}

TEST_CASE("binary keys: NUL and 0xFF bytes, empty key") {
  State s;
  std::vector<std::string> keys = {""s,     "\0"s,       "\0\0"s, "a\0b"s, "a"s,
                                   "\xff"s, "\xff\xff"s, "\x7f"s, "\x80"s};
  for (size_t i = 0; i < keys.size(); ++i) s.Put(keys[i], "v" + std::to_string(i));
  CHECK(s.size() == keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    REQUIRE(s.Get(keys[i]).has_value());
    CHECK(*s.Get(keys[i]) == "v" + std::to_string(i));
  }
  // Unsigned bytewise order: "" < "\0" < "\0\0" < "a" < "a\0b" < "\x7f" < "\x80" < "\xff" <
  // "\xff\xff"
  std::vector<std::string> expect = {""s,     "\0"s,   "\0\0"s, "a"s,       "a\0b"s,
                                     "\x7f"s, "\x80"s, "\xff"s, "\xff\xff"s};
  std::vector<std::string> got;
  for (auto c = s.Begin(); c.Valid(); c.Next()) got.emplace_back(c.key());
  CHECK(got == expect);
  CHECK(s.CountPrefix("\0"s) == 2);
  CHECK(s.CountPrefix("\xff"s) == 2);
  CHECK(s.CountPrefix("a"s) == 2);
}

TEST_CASE("cursor: begin, lower and upper bound") {
  State s;
  for (int i = 0; i < 2000; i += 2) {
    char k[8];
    std::snprintf(k, sizeof(k), "k%05d", i);
    s.Put(k, std::to_string(i));
  }
  CHECK(s.Begin().key() == "k00000");
  CHECK(s.LowerBound("k00000").key() == "k00000");
  CHECK(s.UpperBound("k00000").key() == "k00002");
  CHECK(s.LowerBound("k00001").key() == "k00002");
  CHECK(s.UpperBound("k00001").key() == "k00002");
  CHECK(s.LowerBound("").key() == "k00000");
  CHECK(s.LowerBound("k01998").value() == "1998");
  CHECK_FALSE(s.UpperBound("k01998").Valid());
  CHECK_FALSE(s.LowerBound("z").Valid());
  size_t n = 0;
  std::string prev;
  for (auto c = s.LowerBound("k00500"); c.Valid(); c.Next(), ++n) {
    CHECK(std::string(c.key()) > prev);
    prev = c.key();
  }
  CHECK(n == 750);
  State empty;
  CHECK_FALSE(empty.Begin().Valid());
  CHECK_FALSE(empty.LowerBound("a").Valid());
  CHECK_FALSE(empty.UpperBound("a").Valid());
}

TEST_CASE("prefix count across many leaves") {
  State s;
  std::map<std::string, int> counts;
  for (int i = 0; i < 5000; ++i) {
    std::string k = "p" + std::to_string(i % 7) + "/" + std::to_string(i);
    s.Put(k, "x");
  }
  for (int p = 0; p < 7; ++p) {
    size_t expect = 0;
    for (int i = p; i < 5000; i += 7) ++expect;
    CHECK(s.CountPrefix("p" + std::to_string(p)) == expect);
    CHECK(s.CountPrefix("p" + std::to_string(p) + "/") == expect);
  }
  CHECK(s.CountPrefix("p") == 5000);
  CHECK(s.CountPrefix("") == 5000);
  CHECK(s.CountPrefix("q") == 0);
  size_t p11 = 0;
  for (int i = 1; i < 5000; i += 7) p11 += std::to_string(i).starts_with("1");
  CHECK(s.CountPrefix("p1/1") == p11);
}

TEST_CASE("digest depends on the set, not the history") {
  State a, b;
  a.Put("x", "1");
  a.Put("y", "2");
  a.Put("z", "3");
  b.Put("z", "0");
  b.Put("q", "9");
  b.Put("y", "2");
  b.Put("x", "1");
  b.Del("q");
  b.Put("z", "3");
  CHECK(a.Digest() == b.Digest());
  CHECK(Dump(a) == Dump(b));
  b.Put("z", "4");
  CHECK(a.Digest() != b.Digest());
  b.Put("z", "3");
  CHECK(a.Digest() == b.Digest());
  // Moving a byte between key and value changes the digest.
  State c, d;
  c.Put("ab", "c");
  d.Put("a", "bc");
  CHECK(c.Digest() != d.Digest());
  c.Clear();
  CHECK(c.Digest() == State().Digest());
  CHECK(c.size() == 0);
}

TEST_CASE("randomized model check against std::map") {
  const uint64_t seed = std::random_device{}();
  INFO("seed = " << seed);
  std::mt19937_64 rng(seed);
  State s;
  std::map<std::string, std::string> m;
  auto rand_key = [&] {
    // Small alphabet with NUL/0xFF so prefixes, neighbours and deletes collide.
    static const char kAlpha[] = {'\0', 'a', 'b', '\xff'};
    std::string k(1 + rng() % 6, 'a');
    for (char& ch : k) ch = kAlpha[rng() % 4];
    return k;
  };
  for (int step = 0; step < 60000; ++step) {
    std::string k = rand_key();
    switch (rng() % 10) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4: {
        std::string v(rng() % 150, static_cast<char>(rng()));
        bool existed = m.count(k) > 0;
        CHECK(s.Put(k, v) == existed);
        m[k] = v;
        break;
      }
      case 5:
      case 6:
      case 7:
        CHECK(s.Del(k) == (m.erase(k) > 0));
        break;
      case 8: {
        auto g = s.Get(k);
        auto it = m.find(k);
        REQUIRE(g.has_value() == (it != m.end()));
        if (g) CHECK(*g == it->second);
        auto lb = s.LowerBound(k);
        auto mlb = m.lower_bound(k);
        REQUIRE(lb.Valid() == (mlb != m.end()));
        if (lb.Valid()) CHECK(lb.key() == mlb->first);
        auto ub = s.UpperBound(k);
        auto mub = m.upper_bound(k);
        REQUIRE(ub.Valid() == (mub != m.end()));
        if (ub.Valid()) CHECK(ub.key() == mub->first);
        break;
      }
      case 9: {
        std::string p = k.substr(0, 1 + rng() % 2);
        size_t expect = 0;
        for (auto it = m.lower_bound(p); it != m.end() && it->first.starts_with(p); ++it) ++expect;
        CHECK(s.CountPrefix(p) == expect);
        break;
      }
    }
    REQUIRE(s.size() == m.size());
    if (step % 5000 == 0) REQUIRE(Dump(s) == Dump(m));
  }
  REQUIRE(Dump(s) == Dump(m));
  // The same set rebuilt in another order has the same digest.
  State t;
  for (auto it = m.rbegin(); it != m.rend(); ++it) t.Put(it->first, it->second);
  CHECK(t.Digest() == s.Digest());
  size_t data = 0;
  for (auto& [k, v] : m) data += k.size() + v.size();
  CHECK(s.DataBytes() == data);
}

TEST_CASE("bulk insert in order, then delete most: structure stays consistent") {
  State s;
  std::map<std::string, std::string> m;
  for (int i = 0; i < 20000; ++i) {
    char k[16];
    std::snprintf(k, sizeof(k), "%08d", i);
    s.Put(k, k);
    m[k] = k;
  }
  REQUIRE(Dump(s) == Dump(m));
  for (int i = 0; i < 20000; ++i) {
    if (i % 97 == 0) continue;
    char k[16];
    std::snprintf(k, sizeof(k), "%08d", i);
    CHECK(s.Del(k));
    m.erase(k);
  }
  REQUIRE(Dump(s) == Dump(m));
  size_t expect = 0;
  for (auto& kv : m) expect += kv.first.starts_with("0001");
  CHECK(s.CountPrefix("0001") == expect);
}

TEST_CASE("move leaves a usable empty state") {
  State a;
  a.Put("k", "v");
  uint64_t d = a.Digest();
  State b(std::move(a));
  CHECK(b.Digest() == d);
  CHECK(*b.Get("k") == "v");
  CHECK(a.size() == 0);  // NOLINT(bugprone-use-after-move): documented as empty
  a.Put("x", "y");
  CHECK(a.size() == 1);
  b = std::move(a);
  CHECK(b.size() == 1);
  CHECK(*b.Get("x") == "y");
}

TEST_CASE("MemoryBytes is sane") {
  State s;
  const size_t empty = s.MemoryBytes();
  for (int i = 0; i < 10000; ++i) {
    char k[17];
    std::snprintf(k, sizeof(k), "key%013d", i);
    s.Put(k, std::string(100, 'v'));
  }
  CHECK(s.DataBytes() == 10000 * 116);
  size_t mem = s.MemoryBytes();
  CHECK(mem >= s.DataBytes());
  INFO("bytes/key = " << mem / 10000.0);
  CHECK(mem < 10000 * 200);  // compact layout: well under a std::map of strings
  s.Clear();
  CHECK(s.MemoryBytes() == empty);
}

// The index compares integer slices of keys taken after a prefix each leaf
// (and the top level) shares, and reads key blocks only on slice ties. These
// tests drive the cases where that can go wrong: keys shorter than the
// prefix or than a slice, prefixes longer than the stored maximum, 0x00 and
// 0xFF bytes next to zero padding, the empty key, prefixes shrinking when an
// outlier arrives at either end, and leaves splitting, spilling and merging.

// Every key of m is found with its value; keys around each (one byte more or
// less) give the same bounds as the model.
void CheckModel(const State& s, const std::map<std::string, std::string>& m) {
  REQUIRE(s.size() == m.size());
  REQUIRE(Dump(s) == Dump(m));
  for (auto& [k, v] : m) {
    auto g = s.Get(k);
    REQUIRE(g.has_value());
    CHECK(*g == v);
    for (const std::string& probe : {k + '\0', k + '\xff', k.substr(0, k.size() / 2)}) {
      auto lb = s.LowerBound(probe);
      auto mlb = m.lower_bound(probe);
      REQUIRE(lb.Valid() == (mlb != m.end()));
      if (lb.Valid()) CHECK(lb.key() == mlb->first);
      CHECK(s.Get(probe).has_value() == (m.count(probe) > 0));
    }
  }
}

std::string SliceHostileKey(std::mt19937_64& rng) {
  static const std::string kPrefixes[] = {
      "", "k0000000", "key:0000", std::string(8, '\0'), std::string(8, '\xff'),
      std::string(70, 'p'),  // longer than any stored prefix
      std::string(70, 'p') + std::string(3, '\0')};
  static const char kAlpha[] = {'\0', '\x01', '0', '9', 'a', '\xfe', '\xff'};
  std::string k = kPrefixes[rng() % std::size(kPrefixes)];
  size_t extra = rng() % 12;  // 0..11: shorter and longer than a 4/8-byte slice
  for (size_t i = 0; i < extra; ++i) k += kAlpha[rng() % std::size(kAlpha)];
  return k;
}

TEST_CASE("slice edge cases: shared and long prefixes, short keys, NUL/0xFF, many leaves") {
  const uint64_t seed = std::random_device{}();
  INFO("seed = " << seed);
  std::mt19937_64 rng(seed);
  State s;
  std::map<std::string, std::string> m;
  for (int step = 0; step < 40000; ++step) {
    std::string k = SliceHostileKey(rng);
    if (rng() % 4 != 0) {
      std::string v = std::to_string(step);
      CHECK(s.Put(k, v) == (m.count(k) > 0));
      m[k] = v;
    } else {
      CHECK(s.Del(k) == (m.erase(k) > 0));
    }
    if (step % 10000 == 9999) CheckModel(s, m);
  }
  CheckModel(s, m);
  for (const std::string& p : {"k0000000"s, std::string(8, '\0'), std::string(71, 'p'), ""s}) {
    size_t expect = 0;
    for (auto it = m.lower_bound(p); it != m.end() && it->first.starts_with(p); ++it) ++expect;
    CHECK(s.CountPrefix(p) == expect);
  }
}

TEST_CASE("outliers at both ends shrink prefixes; emptying and refilling regrows them") {
  State s;
  std::map<std::string, std::string> m;
  auto put = [&](const std::string& k) {
    s.Put(k, k);
    m[k] = k;
  };
  // Sorted load (the snapshot fast path): full leaves, long shared prefixes.
  for (int i = 0; i < 3000; ++i) {
    char k[32];
    std::snprintf(k, sizeof(k), "k%015d", i * 3);
    put(k);
  }
  CheckModel(s, m);
  put("");          // smallest possible key, into leaf 0
  put("\xff");      // past the end: shrinks the last leaf's and the top prefix to 0
  put("k0");        // shorter than the shared prefix, sorts inside the range
  put("k000000000000001\0");
  CheckModel(s, m);
  // Random inserts between existing keys split and spill leaves whose
  // prefixes were shrunk.
  std::mt19937_64 rng(1);
  for (int i = 0; i < 3000; ++i) {
    char k[32];
    std::snprintf(k, sizeof(k), "k%015d", static_cast<int>(rng() % 9000));
    put(k);
  }
  CheckModel(s, m);
  // Reverse-order inserts: every one lands at the front of leaf 0.
  for (int i = 2000; i > 0; --i) put(std::string(1, '\0') + std::to_string(i));
  CheckModel(s, m);
  // Delete everything but a few, in random order: merges, borrows, leaves
  // and heads erased; then refill with another shape of key.
  std::vector<std::string> keys;
  for (auto& kv : m) keys.push_back(kv.first);
  std::shuffle(keys.begin(), keys.end(), rng);
  for (size_t i = 0; i + 5 < keys.size(); ++i) {
    CHECK(s.Del(keys[i]));
    m.erase(keys[i]);
    if (i % 1000 == 0) CheckModel(s, m);
  }
  CheckModel(s, m);
  for (int i = 0; i < 5000; ++i) put("user:" + std::to_string(rng() % 100000) + ":profile");
  CheckModel(s, m);
  while (!m.empty()) {
    CHECK(s.Del(m.begin()->first));
    m.erase(m.begin());
  }
  CHECK(s.size() == 0);
  CHECK(s.Digest() == State().Digest());
  CHECK_FALSE(s.Begin().Valid());
}

}  // namespace
}  // namespace kvd
