// The load generator and `kvctl bench` against the fake kvd.
#include <doctest/doctest.h>

#include <time.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "bench.h"
#include "ctl/fake_kvd.h"
#include "exit_codes.h"
#include "keyspace.h"
#include "load_driver.h"
#include "request_template.h"

using namespace kvctl;
using kvctl::testing::FakeKvd;
using kvctl::testing::TempSocketPath;

const BenchKeys kKeys;  // the default prefix, as LoadSpec uses

TEST_CASE("bench keys carry the prefix and are ordered like their numbers") {
  CHECK(kKeys.Key(0) == "bench:000000000000");
  CHECK(kKeys.Key(123456789012) == "bench:123456789012");
  CHECK(kKeys.Key(42).size() == kKeys.size());
  const BenchKeys mine("load/");
  CHECK(mine.Key(7) == "load/000000000007");
  CHECK(mine.size() == 17);
  CHECK(BenchValue(100).size() == 100);
  CHECK(BenchValue(7) == BenchValue(7));
}

TEST_CASE("option parsing") {
  CHECK(*ParseBenchDuration("10s") == std::chrono::seconds(10));
  CHECK(*ParseBenchDuration("10") == std::chrono::seconds(10));
  CHECK(*ParseBenchDuration("1.5s") == std::chrono::milliseconds(1500));
  CHECK(*ParseBenchDuration("250ms") == std::chrono::milliseconds(250));
  CHECK(*ParseBenchDuration("2m") == std::chrono::minutes(2));
  for (const char* bad : {"", "s", "-1s", "0", "10x", "1..2s"}) {
    CAPTURE(bad);
    CHECK_FALSE(ParseBenchDuration(bad).has_value());
  }
  CHECK(*ParseRatio("1:0") == std::make_pair(1u, 0u));
  CHECK(*ParseRatio("10:90") == std::make_pair(10u, 90u));
  for (const char* bad : {"", "1", "0:0", "a:b", "1:-1", "1:2:3", ":1"}) {
    CAPTURE(bad);
    CHECK_FALSE(ParseRatio(bad).has_value());
  }
}

TEST_CASE("a counted run: every request answered, latencies recorded, work split over threads") {
  FakeKvd kvd(TempSocketPath("bench"));
  LoadSpec spec;
  spec.clients = 5;
  spec.threads = 2;
  spec.pipeline = 8;
  spec.requests = 2003;  // not a multiple of the clients
  spec.key_space = 100000;
  spec.value_size = 32;
  auto r = RunLoad(kvd.path(), spec, nullptr, {});
  REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
  CHECK(r->requests == 2003);
  CHECK(r->puts == 2003);
  CHECK(r->errors == 0);
  CHECK(r->latency_us.count() == 2003);
  CHECK(r->seconds > 0);
  CHECK(r->max_ack_lag == 0);  // the fake is in sync mode: every reply durable
  CHECK(kvd.Size() > 1900);  // a few keys repeat by chance
  CHECK(kvd.Value(kKeys.Key(0)).value_or(BenchValue(32)).size() == 32);
}

TEST_CASE("the largest lsn - durable_lsn of an acknowledged PUT is reported (batch mode's loss window)") {
  FakeKvd kvd(TempSocketPath("bench"));
  kvd.set_durable_lag(3);
  LoadSpec spec;
  spec.requests = 50;
  auto r = RunLoad(kvd.path(), spec, nullptr, {});
  REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
  CHECK(r->max_ack_lag == 3);
  BenchReport report;
  report.load = *r;
  CHECK(nlohmann::json::parse(FormatBenchJson(report))["max_ack_lag"] == 3);
}

TEST_CASE("prefill writes every key exactly once; the mix then reads them") {
  FakeKvd kvd(TempSocketPath("bench"));
  LoadSpec spec;
  spec.clients = 3;
  spec.pipeline = 16;
  spec.key_space = 1000;
  spec.prefill = true;
  auto pre = RunLoad(kvd.path(), spec, nullptr, {});
  REQUIRE(pre.has_value());
  CHECK(pre->requests == 1000);
  CHECK(kvd.Size() == 1000);
  CHECK(kvd.Value(kKeys.Key(999)).has_value());

  spec.prefill = false;
  spec.requests = 3000;
  spec.put_weight = 1;
  spec.get_weight = 3;
  auto mix = RunLoad(kvd.path(), spec, nullptr, {});
  REQUIRE(mix.has_value());
  CHECK(mix->requests == 3000);
  CHECK(mix->errors == 0);
  CHECK(mix->get_misses == 0);  // every key exists
  CHECK(mix->gets > 1800);      // ~2250 expected
  CHECK(mix->gets < 2700);
  CHECK(mix->gets + mix->puts == 3000);
}

TEST_CASE("a timed run stops, and a stop request ends it early") {
  FakeKvd kvd(TempSocketPath("bench"));
  LoadSpec spec;
  spec.clients = 2;
  spec.duration = std::chrono::milliseconds(200);
  auto r = RunLoad(kvd.path(), spec, nullptr, {});
  REQUIRE(r.has_value());
  CHECK(r->requests > 0);
  CHECK(r->seconds >= 0.15);
  CHECK(r->seconds < 5.0);

  std::atomic<bool> stop{true};
  spec.duration = std::chrono::hours(1);
  auto stopped = RunLoad(kvd.path(), spec, &stop, {});
  REQUIRE(stopped.has_value());
  CHECK(stopped->errors == 0);
}

TEST_CASE("error replies are counted, not fatal") {
  FakeKvd kvd(TempSocketPath("bench"));
  kvd.FailPuts(kvd::Code::kWritesRefused);
  LoadSpec spec;
  spec.clients = 2;
  spec.pipeline = 4;
  spec.requests = 100;
  auto r = RunLoad(kvd.path(), spec, nullptr, {});
  REQUIRE(r.has_value());
  CHECK(r->requests == 100);
  CHECK(r->errors == 100);
  CHECK(r->first_error == "WritesRefused: injected failure");
}

TEST_CASE("connect failure is an error") {
  LoadSpec spec;
  spec.requests = 1;
  CHECK_FALSE(RunLoad(TempSocketPath("none"), spec, nullptr, {}).has_value());
}

TEST_CASE("kvctl bench --json: one object; sync asked per request, the server's configuration untouched") {
  FakeKvd kvd(TempSocketPath("bench"));
  kvd.Put("user:1", "not a bench key");
  kvd.Put("bench:x", "outside the key space");
  BenchOptions o;
  o.clients = 4;
  o.pipeline = 2;
  o.requests = 500;
  o.key_space = 200;
  o.ratio = "1:1";
  o.durability = "sync";
  o.prefill = true;
  o.json = true;
  o.progress = false;
  std::ostringstream out;
  std::ostringstream err;
  CHECK(RunBench(kvd.path(), o, out, err) == kExitOk);
  CHECK(kvd.config_sets() == 0);       // never a CONFIG SET
  CHECK(kvd.durable_puts() >= 250);    // the measured PUTs (about half of 500) carried the durable flag
  CHECK(kvd.Size() == 2);              // the bench keys were deleted afterwards, nothing else
  CHECK(kvd.Value("user:1").has_value());
  CHECK(kvd.Value("bench:x").has_value());
  const std::string text = out.str();
  CHECK(text.find('\n') == text.size() - 1);
  auto j = nlohmann::json::parse(text);
  for (const char* key : {"ops_per_sec", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "errors", "requests",
                          "clients", "pipeline", "value_size", "key_space", "ratio", "durability", "duration_s",
                          "cpu_user_s", "cpu_sys_s"}) {
    CAPTURE(key);
    CHECK(j.contains(key));
  }
  CHECK(j["requests"] == 500);
  CHECK(j["errors"] == 0);
  CHECK(j["clients"] == 4);
  CHECK(j["durability"] == "sync");
  CHECK(j["ratio"] == "1:1");
  CHECK(j["p50_us"].get<uint64_t>() <= j["p99_us"].get<uint64_t>());
  CHECK(j["p99_us"].get<uint64_t>() <= j["max_us"].get<uint64_t>());
  CHECK(j["ops_per_sec"].get<double>() > 0);
}

TEST_CASE("kvctl bench never switches the server's mode; --keep and --prefix") {
  FakeKvd kvd(TempSocketPath("bench"));
  BenchOptions o;
  o.clients = 2;
  o.requests = 100;
  o.key_space = 50;
  o.progress = false;
  o.durability = "none";  // the fake runs in sync: bench would have to change it
  std::ostringstream out;
  std::ostringstream err;
  CHECK(RunBench(kvd.path(), o, out, err) == kExitUsage);
  CHECK(err.str().find("never changes") != std::string::npos);
  CHECK(kvd.config_sets() == 0);
  CHECK(kvd.Size() == 0);

  o.durability = "";
  o.prefix = "load/";
  o.keep = true;
  o.prefill = true;
  CHECK(RunBench(kvd.path(), o, out, err) == kExitOk);
  CHECK(kvd.Size() == 50);  // kept, every one under the prefix
  CHECK(kvd.Value("load/000000000049").has_value());
  CHECK(kvd.durable_puts() == 0);  // the server's own mode, no flag
  CHECK(kvd.config_sets() == 0);

  o.keep = false;
  o.prefill = false;
  CHECK(RunBench(kvd.path(), o, out, err) == kExitOk);
  CHECK(kvd.Size() == 0);  // this run's keys and the kept ones of the same key space

  o.prefix = "";
  CHECK(RunBench(kvd.path(), o, out, err) == kExitUsage);  // keys must carry a prefix
}

TEST_CASE("kvctl bench text report and usage errors") {
  FakeKvd kvd(TempSocketPath("bench"));
  BenchOptions o;
  o.clients = 2;
  o.requests = 50;
  o.progress = false;
  std::ostringstream out;
  std::ostringstream err;
  CHECK(RunBench(kvd.path(), o, out, err) == kExitOk);
  CHECK(out.str().find("throughput") != std::string::npos);
  CHECK(out.str().find("durability sync") != std::string::npos);
  CHECK(out.str().find("p99.9") != std::string::npos);

  o.ratio = "x";
  CHECK(RunBench(kvd.path(), o, out, err) == kExitUsage);
  o.ratio = "1:0";
  o.duration = "5s";  // with --requests
  CHECK(RunBench(kvd.path(), o, out, err) == kExitUsage);
  o.duration.clear();
  o.durability = "fast";
  CHECK(RunBench(kvd.path(), o, out, err) == kExitUsage);
  o.durability.clear();
  kvd.FailPuts(kvd::Code::kNoSpace);
  std::ostringstream err2;
  CHECK(RunBench(kvd.path(), o, out, err2) == kExitServer);
  CHECK(err2.str().find("requests failed") != std::string::npos);
}

TEST_CASE("request templates produce exactly the codec's frames") {
  const std::string value = BenchValue(37);
  const auto put = RequestTemplate::Put(kKeys.Key(0), value, kvd::proto::kFlagDurable);
  const auto get = RequestTemplate::Get(kKeys.Key(0));
  std::string out;
  std::string want;
  for (uint64_t id : {1ull, 255ull, 0x0102030405060708ull, ~0ull}) {
    const std::string key = kKeys.Key(id % kMaxKeySpace);
    out.clear();
    want.clear();
    put.AppendTo(&out, id, key.data());
    kvd::proto::EncodeRequest(&want, {kvd::proto::Opcode::kPut, kvd::proto::kFlagDurable, id},
                              {kvd::proto::EncodePutPayload(key, value)});
    CHECK(out == want);
    out.clear();
    want.clear();
    get.AppendTo(&out, id, key.data());
    kvd::proto::EncodeRequest(&want, {kvd::proto::Opcode::kGet, 0, id}, {key});
    CHECK(out == want);
  }
}

TEST_CASE("ack samples: the LSN and reply time of every OK PUT, bounded, none for GETs") {
  FakeKvd kvd(TempSocketPath("bench"));
  LoadSpec spec;
  spec.clients = 3;
  spec.threads = 2;
  spec.pipeline = 4;
  spec.requests = 400;
  spec.put_weight = 1;
  spec.get_weight = 1;
  spec.max_ack_samples = 1000;
  timespec before{};
  ::clock_gettime(CLOCK_MONOTONIC, &before);
  auto r = RunLoad(kvd.path(), spec, nullptr, {});
  timespec after{};
  ::clock_gettime(CLOCK_MONOTONIC, &after);
  REQUIRE(r.has_value());
  REQUIRE(r->puts > 0);
  CHECK(r->acks.size() == r->puts);
  CHECK(r->acks_dropped == 0);
  const auto ns = [](const timespec& t) { return uint64_t(t.tv_sec) * 1'000'000'000ull + uint64_t(t.tv_nsec); };
  std::set<uint64_t> lsns;
  for (const AckSample& a : r->acks) {
    CHECK(a.ack_ns >= ns(before));
    CHECK(a.ack_ns <= ns(after));
    lsns.insert(a.lsn);
  }
  CHECK(lsns.size() == r->puts);  // each PUT its own LSN: the fake's LSNs 1..puts
  CHECK(*lsns.begin() == 1);
  CHECK(*lsns.rbegin() == r->puts);

  spec.max_ack_samples = 7;  // the bound holds, the rest is counted
  auto bounded = RunLoad(kvd.path(), spec, nullptr, {});
  REQUIRE(bounded.has_value());
  CHECK(bounded->acks.size() == 7);
  CHECK(bounded->acks_dropped == bounded->puts - 7);

  spec.max_ack_samples = 0;  // off by default
  auto off = RunLoad(kvd.path(), spec, nullptr, {});
  REQUIRE(off.has_value());
  CHECK(off->acks.empty());
  CHECK(off->acks_dropped == 0);
}

TEST_CASE("kvctl bench --ack-log writes one '<lsn> <ack_ns>' line per acknowledged PUT, sorted by LSN") {
  FakeKvd kvd(TempSocketPath("bench"));
  const std::string log = TempSocketPath("acklog");
  BenchOptions o;
  o.clients = 4;
  o.requests = 300;
  o.key_space = 100;
  o.progress = false;
  o.keep = true;
  o.ack_log = log;
  std::ostringstream out;
  std::ostringstream err;
  REQUIRE(RunBench(kvd.path(), o, out, err) == kExitOk);
  std::ifstream in(log);
  std::string header;
  std::getline(in, header);
  CHECK(header == "# lsn ack_ns (CLOCK_MONOTONIC); samples 300; dropped 0");
  uint64_t lsn = 0;
  uint64_t ack_ns = 0;
  uint64_t prev = 0;
  size_t lines = 0;
  while (in >> lsn >> ack_ns) {
    CHECK(lsn == prev + 1);
    CHECK(ack_ns > 0);
    prev = lsn;
    ++lines;
  }
  CHECK(lines == 300);
  std::remove(log.c_str());

  o.ack_log = "/nonexistent-dir/ack.log";  // an unwritable file is reported, not ignored
  std::ostringstream err2;
  CHECK(RunBench(kvd.path(), o, out, err2) == kExitUsage);
  CHECK(err2.str().find("/nonexistent-dir/ack.log") != std::string::npos);
}
