#include "config/config.h"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

using kvd::Code;
using kvd::daemon::Config;
using kvd::daemon::ConfigDiff;
using kvd::daemon::ParseConfig;
using namespace std::chrono_literals;

namespace {

// The error a config text produces (fails the test if it parses).
std::string ErrorOf(const std::string& text) {
  auto r = ParseConfig(text, "t.toml");
  REQUIRE_MESSAGE(!r.has_value(), "parsed but should not:\n" << text);
  CHECK(r.error().code() == Code::kInvalidArgument);
  return r.error().message();
}

Config Parse(const std::string& text) {
  auto r = ParseConfig(text, "t.toml");
  REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
  return *r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("an empty file gives the defaults") {
  const Config c = Parse("");
  const Config d;
  CHECK(c.socket == d.socket);
  CHECK(c.socket_mode == 0660);
  CHECK(c.durability.mode == kvd::DurabilityMode::kSync);
  CHECK(c.durability.flush_interval == d.durability.flush_interval);
  CHECK(c.source_path == "t.toml");
  CHECK(kvd::daemon::RenderConfig(c).find("[durability]") != std::string::npos);
}

TEST_CASE("every key parses") {
  const Config c = Parse(R"(
[server]
socket = "/tmp/x.sock"
socket_mode = "0600"
max_connections = 7
max_frame_bytes = "1MiB"
idle_timeout = "30s"
max_pending_reply_bytes = 131072
[storage]
wal_path = "w"
snapshot_path = "s"
segment_size = "128KiB"
recovery_mode = "point_in_time"
max_key_bytes = "1KiB"
max_value_bytes = "1MiB"
[snapshot]
interval = "5m"
wal_bytes = "1GiB"
[durability]
mode = "batch"
batch_size = 64
flush_interval = "250ms"
slow_sync_warning = "2s"
[log]
level = "debug"
target = "stderr"
)");
  CHECK(c.socket == "/tmp/x.sock");
  CHECK(c.socket_mode == 0600);
  CHECK(c.max_connections == 7);
  CHECK(c.max_frame_bytes == 1024 * 1024);
  CHECK(c.idle_timeout == 30s);
  CHECK(c.max_pending_reply_bytes == 131072);
  CHECK(c.wal_path == "w");
  CHECK(c.snapshot_path == "s");
  CHECK(c.segment_size == 128 * 1024);
  CHECK(c.recovery_mode == kvd::RecoveryMode::kPointInTime);
  CHECK(c.max_key_bytes == 1024);
  CHECK(c.max_value_bytes == 1024 * 1024);
  CHECK(c.snapshot_interval == 5min);
  CHECK(c.snapshot_wal_bytes == 1ull << 30);
  CHECK(c.durability.mode == kvd::DurabilityMode::kBatch);
  CHECK(c.durability.batch_size == 64);
  CHECK(c.durability.flush_interval == 250ms);
  CHECK(c.slow_sync_warning == 2s);
  CHECK(c.log_level == "debug");
  CHECK(c.log_target == kvd::daemon::LogTarget::kStderr);
}

TEST_CASE("units") {
  using kvd::daemon::ParseDuration;
  using kvd::daemon::ParseSize;
  CHECK(*ParseDuration("0") == 0ms);
  CHECK(*ParseDuration("10ms") == 10ms);
  CHECK(*ParseDuration("5s") == 5s);
  CHECK(*ParseDuration("5m") == 5min);
  CHECK(*ParseDuration("1h") == 1h);
  CHECK(*ParseDuration(" 2 s ") == 2s);
  CHECK(!ParseDuration("10").has_value());  // no unit
  CHECK(!ParseDuration("250us").has_value());
  CHECK(!ParseDuration("1.5s").has_value());
  CHECK(!ParseDuration("-1s").has_value());
  CHECK(!ParseDuration("5x").has_value());
  CHECK(!ParseDuration("").has_value());
  CHECK(!ParseDuration("99999999999999999999h").has_value());
  CHECK(!ParseDuration("9999999999999999h").has_value());  // overflows int64 ms
  CHECK(*ParseSize("4096") == 4096);
  CHECK(*ParseSize("64KiB") == 64 * 1024);
  CHECK(*ParseSize("64MiB") == 64ull << 20);
  CHECK(*ParseSize("1GiB") == 1ull << 30);
  CHECK(*ParseSize("3B") == 3);
  CHECK(!ParseSize("64MB").has_value());
  CHECK(!ParseSize("MiB").has_value());
  CHECK(!ParseSize("20000000TiB").has_value());
  // Integers for sizes; 0 for durations.
  CHECK(Parse("[server]\nmax_frame_bytes = 8192\n").max_frame_bytes == 8192);
  CHECK(Parse("[snapshot]\ninterval = 0\n").snapshot_interval == 0ms);
  CHECK(Parse("[server]\nsocket_mode = 0o640\n").socket_mode == 0640);
}

TEST_CASE("errors name file, line and key") {
  SUBCASE("unknown key, on its own line") {
    const std::string e = ErrorOf("[server]\nsocket = \"a\"\n\nsockett = \"b\"\n");
    CHECK(e == "t.toml:4: server.sockett: unknown key");
  }
  SUBCASE("unknown table") {
    const std::string e = ErrorOf("# x\n\n[serve]\nsocket = \"a\"\n");
    CHECK(e.rfind("t.toml:3: serve: unknown table", 0) == 0);
  }
  SUBCASE("invalid UTF-8 (toml11 would read past its buffer)") {
    CHECK(ErrorOf("# ok\n[log]\nlevel = '\xcf'\n") == "t.toml:3: not valid UTF-8 (TOML files are UTF-8)");
    CHECK(ErrorOf("# \xe2\x82\n") == "t.toml:1: not valid UTF-8 (TOML files are UTF-8)");  // cut short
    CHECK(ErrorOf("# \xc0\xaf overlong\n") == "t.toml:1: not valid UTF-8 (TOML files are UTF-8)");
    CHECK(kvd::daemon::ParseConfig("# caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n", "t.toml").has_value());
  }
  SUBCASE("top-level key") { CHECK(ErrorOf("socket = \"a\"\n").rfind("t.toml:1: socket: unknown table", 0) == 0); }
  SUBCASE("wrong type") {
    const std::string e = ErrorOf("[durability]\nmode = \"sync\"\nbatch_size = \"64\"\n");
    CHECK(e.rfind("t.toml:3: durability.batch_size: expected an integer", 0) == 0);
  }
  SUBCASE("out of range") {
    const std::string e = ErrorOf("[storage]\n\n\n\nsegment_size = \"1KiB\"\n");
    CHECK(e == "t.toml:5: storage.segment_size: must be between 64KiB and 16GiB, got 1KiB");
    CHECK(ErrorOf("[durability]\nbatch_size = 0\n").rfind("t.toml:2: durability.batch_size: must be between 1", 0) ==
          0);
    CHECK(ErrorOf("[durability]\nbatch_size = 1000001\n").rfind("t.toml:2:", 0) == 0);
    CHECK(ErrorOf("[storage]\nmax_value_bytes = \"17MiB\"\n").rfind("t.toml:2: storage.max_value_bytes:", 0) == 0);
    CHECK(ErrorOf("[server]\nmax_connections = -1\n").rfind("t.toml:2: server.max_connections:", 0) == 0);
  }
  SUBCASE("bad enum and units") {
    CHECK(ErrorOf("[durability]\nmode = \"fast\"\n") ==
          "t.toml:2: durability.mode: must be one of sync, batch, none, got \"fast\"");
    CHECK(ErrorOf("[durability]\nflush_interval = 10\n").rfind("t.toml:2: durability.flush_interval: a duration needs a unit",
                                                             0) == 0);
    CHECK(ErrorOf("[durability]\nflush_interval = \"0\"\n").rfind("t.toml:2: durability.flush_interval: must be between 1ms",
                                                                0) == 0);
    CHECK(ErrorOf("[server]\nsocket_mode = 660\n").rfind("t.toml:2: server.socket_mode:", 0) == 0);
    CHECK(ErrorOf("[server]\nsocket_mode = \"0999\"\n").rfind("t.toml:2: server.socket_mode:", 0) == 0);
    CHECK(ErrorOf("[server]\nsocket = \"\"\n") == "t.toml:2: server.socket: must not be empty");
    CHECK(ErrorOf("[server]\nsocket = \"" + std::string(200, 'a') + "\"\n").rfind("t.toml:2: server.socket:", 0) == 0);
  }
  SUBCASE("the first problem in file order is reported") {
    const std::string e = ErrorOf("[log]\nlevel = \"loud\"\n[durability]\nmode = 3\n[server]\nbogus = 1\n");
    CHECK(e.rfind("t.toml:2: log.level:", 0) == 0);
  }
  SUBCASE("syntax errors carry the line") {
    CHECK(ErrorOf("[server]\nsocket = \n").rfind("t.toml:2: syntax error:", 0) == 0);
    CHECK(ErrorOf("[server]\nmax_connections = 1\nmax_connections = 2\n").rfind("t.toml:3: syntax error:", 0) == 0);
  }
  SUBCASE("a table where a value belongs") {
    CHECK(ErrorOf("[server]\nsocket.x = \"a\"\n").rfind("t.toml:2: server.socket: expected a string", 0) == 0);
  }
  SUBCASE("deep nesting is refused before toml11 recurses") {
    CHECK(ErrorOf("x = " + std::string(10000, '[')).find("nested deeper") != std::string::npos);
  }
}

TEST_CASE("LoadConfig names the missing file") {
  auto r = kvd::daemon::LoadConfig("/nonexistent/kvd.toml");
  REQUIRE(!r.has_value());
  CHECK(r.error().message().find("/nonexistent/kvd.toml") != std::string::npos);
}

TEST_CASE("runtime keys: get, set, diff") {
  Config c;
  CHECK(kvd::daemon::IsRuntimeKey("durability.batch_size"));
  CHECK(kvd::daemon::IsRuntimeKey("log.level"));
  CHECK(kvd::daemon::IsRuntimeKey("snapshot.interval"));
  CHECK(!kvd::daemon::IsRuntimeKey("server.socket"));
  CHECK(!kvd::daemon::IsRuntimeKey("log.target"));
  CHECK(!kvd::daemon::IsRuntimeKey("nope"));

  CHECK(*kvd::daemon::GetConfigValue(c, "durability.flush_interval") == "10ms");
  CHECK(*kvd::daemon::GetConfigValue(c, "server.socket_mode") == "0660");
  CHECK(*kvd::daemon::GetConfigValue(c, "server.max_frame_bytes") == "32MiB");
  CHECK(!kvd::daemon::GetConfigValue(c, "server.nope").has_value());

  REQUIRE(kvd::daemon::SetConfigValue(&c, "durability.batch_size", "5").ok());
  CHECK(c.durability.batch_size == 5);
  REQUIRE(kvd::daemon::SetConfigValue(&c, "snapshot.interval", "1h").ok());
  CHECK(c.snapshot_interval == 1h);
  REQUIRE(kvd::daemon::SetConfigValue(&c, "durability.mode", "none").ok());
  CHECK(c.durability.mode == kvd::DurabilityMode::kNone);

  const Config before = c;
  const kvd::Status restart = kvd::daemon::SetConfigValue(&c, "server.socket", "/x");
  CHECK(restart.code() == Code::kInvalidArgument);
  CHECK(restart.message().find("server.socket") != std::string::npos);
  CHECK(!kvd::daemon::SetConfigValue(&c, "durability.batch_size", "0").ok());
  CHECK(!kvd::daemon::SetConfigValue(&c, "durability.batch_size", "x").ok());
  CHECK(!kvd::daemon::SetConfigValue(&c, "durability.nope", "1").ok());
  CHECK(kvd::daemon::RenderConfig(c) == kvd::daemon::RenderConfig(before));  // unchanged by failures

  Config next = c;
  next.durability.batch_size = 64;
  next.socket = "/elsewhere.sock";
  const ConfigDiff d = kvd::daemon::DiffConfig(c, next);
  REQUIRE(d.runtime_changed.size() == 1);
  CHECK(d.runtime_changed[0] == "durability.batch_size: 5 -> 64");
  REQUIRE(d.restart_required.size() == 1);
  CHECK(d.restart_required[0].find("server.socket") == 0);
  CHECK(d.restart_required[0].find("restart") != std::string::npos);
  CHECK(kvd::daemon::DiffConfig(c, c).runtime_changed.empty());

  const auto all = kvd::daemon::ListConfigValues(c);
  CHECK(all.size() == 46);  // 34 + [cluster] 3 + tls 4 + min_lsn_wait + read_barrier + [cluster] etcd tls 3
  CHECK(all.front().first == "server.socket");
}

TEST_CASE("metrics.listen: off by default, HOST:PORT checked with file:line, restart-only") {
  CHECK(Parse("").metrics_listen.empty());
  CHECK(Parse("[metrics]\nlisten = \"127.0.0.1:9380\"\n").metrics_listen == "127.0.0.1:9380");
  CHECK(Parse("[metrics]\nlisten = \"[::1]:0\"\n").metrics_listen == "[::1]:0");
  CHECK(Parse("[metrics]\nlisten = \"\"\n").metrics_listen.empty());
  for (const char* bad : {"localhost", ":9380", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:9x", "::1:9380",
                          "[]:1"}) {
    CAPTURE(bad);
    const std::string e = ErrorOf(std::string("\n[metrics]\nlisten = \"") + bad + "\"\n");
    CHECK(e.find("t.toml:3: metrics.listen: ") == 0);
  }
  CHECK(ErrorOf("[metrics]\nlisten = 9380\n").find("expected a string") != std::string::npos);
  Config c;
  CHECK_FALSE(kvd::daemon::SetConfigValue(&c, "metrics.listen", "127.0.0.1:1").ok());
  CHECK(c.metrics_listen.empty());
}

TEST_CASE("RenderConfig re-parses to the same config") {
  Config c = Parse(R"([server]
socket = "odd \"name\"\\ with\ttab"
idle_timeout = "90s"
[storage]
max_value_bytes = 1000
[snapshot]
wal_bytes = 12345
[durability]
flush_interval = "1500ms"
)");
  const std::string text = kvd::daemon::RenderConfig(c);
  const Config again = Parse(text);
  CHECK(kvd::daemon::RenderConfig(again) == text);
  CHECK(again.socket == c.socket);
  CHECK(again.idle_timeout == 90s);
  CHECK(again.durability.flush_interval == 1500ms);
  CHECK(kvd::daemon::ListConfigValues(again) == kvd::daemon::ListConfigValues(c));
  CHECK(kvd::daemon::ListConfigValues(Parse(kvd::daemon::RenderConfig(Config{}))) ==
        kvd::daemon::ListConfigValues(Config{}));
}

TEST_CASE("the shipped conf/kvd.toml parses and documents every key") {
  const std::string path = std::string(KVD_SOURCE_DIR) + "/conf/kvd.toml";
  auto r = kvd::daemon::LoadConfig(path);
  REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
  CHECK(r->wal_path == "data/wal");
  CHECK(r->snapshot_path == "data/snapshots");
  CHECK(r->socket == "data/kvd.sock");
  CHECK(r->log_target == kvd::daemon::LogTarget::kAuto);
  // Besides the three local paths, the shipped values are the defaults.
  Config expected;
  expected.source_path = path;
  expected.wal_path = r->wal_path;
  expected.snapshot_path = r->snapshot_path;
  expected.socket = r->socket;
  CHECK(kvd::daemon::ListConfigValues(*r) == kvd::daemon::ListConfigValues(expected));
  // The install step rewrites these lines with sed: they must stay literal.
  const std::string text = ReadFile(path);
  for (const char* line : {"\nwal_path = \"data/wal\"\n", "\nsnapshot_path = \"data/snapshots\"\n",
                           "\nsocket = \"data/kvd.sock\"\n"}) {
    CHECK_MESSAGE(text.find(line) != std::string::npos, line);
  }
  // Every key is written out (not just left to its default).
  // [replication] is off by default, so its keys are shown commented out.
  for (const auto& [name, value] : kvd::daemon::ListConfigValues(expected)) {
    const std::string key = name.substr(name.find('.') + 1);
    const std::string prefix = name.starts_with("replication.") ? "\n# " : "\n";
    CHECK_MESSAGE(text.find(prefix + key + " = ") != std::string::npos, name);
  }
  CHECK(text.find("\n#[replication]\n") != std::string::npos);
}

TEST_CASE("[replication]: keys, defaults and the rules between them") {
  const Config d = Parse("");
  CHECK_FALSE(d.replication.enabled());
  CHECK(d.replication.role == "primary");
  CHECK(d.replication.sync_timeout == 5s);

  const Config p = Parse(R"([replication]
name = "a"
listen = "127.0.0.1:7001"
max_retained_wal = "64MiB"
sync_timeout = "2s"
)");
  CHECK(p.replication.enabled());
  CHECK(p.replication.name == "a");
  CHECK(p.replication.listen == "127.0.0.1:7001");
  CHECK(p.replication.max_retained_wal == 64ull << 20);
  CHECK(p.replication.sync_timeout == 2s);

  const Config r = Parse("[replication]\nrole = \"replica\"\nprimary = \"localhost:7001\"\n");
  CHECK(r.replication.enabled());
  CHECK(r.replication.primary == "localhost:7001");
  CHECK(Parse("[replication]\nlisten = \"[::1]:7001\"\n").replication.listen == "[::1]:7001");

  auto refused = [](const std::string& text, const std::string& why) {
    auto c = kvd::daemon::ParseConfig(text, "t.toml");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message().find(why) != std::string::npos, c.error().message());
  };
  refused("[replication]\nlisten = \"10.1.2.3:7001\"\n", "not encrypted: set tls_cert, tls_key and tls_ca");
  refused("[replication]\nlisten = \"0.0.0.0:7001\"\n", "not a loopback address");
  refused("[replication]\nlisten = \"0.0.0.0:7001\"\ninsecure = false\n", "or insecure = true");
  refused("[replication]\nlisten = \"127.0.0.1:7001\"\ntls_cert = \"a.crt\"\ntls_key = \"a.key\"\n",
          "set all three (mutual TLS) or none");
  refused("[replication]\nrole = \"replica\"\nprimary = \"127.0.0.1:7001\"\ntls_ca = \"ca.crt\"\n",
          "set all three");
  refused("[replication]\ninsecure = \"yes\"\n", "true or false");
  refused("[replication]\nlisten = \"127.0.0.1\"\n", "not HOST:PORT");
  refused("[replication]\nlisten = \"db.example:7001\"\n", "not an IP address");
  refused("[replication]\nrole = \"replica\"\n", "must name its primary");
  refused("[replication]\nrole = \"replica\"\nprimary = \"127.0.0.1:0\"\n", "port must be");
  refused("[replication]\nprimary = \"127.0.0.1:7001\"\n", "only with role = \"replica\"");
  refused("[replication]\nrole = \"leader\"\n", "must be one of primary, replica");
  refused("[replication]\nsync_replicas = 1\n", "needs replication.listen");
  refused("[replication]\nlisten = \"127.0.0.1:7001\"\nsync_replicas = 17\n", "between 0 and 16");

  // Synchronous replication: a primary's key, applied at run time (SIGHUP, CONFIG SET).
  const Config s = Parse("[replication]\nlisten = \"127.0.0.1:7001\"\nsync_replicas = 2\nsync_timeout = \"300ms\"\n");
  CHECK(s.replication.sync_replicas == 2);
  CHECK(s.replication.sync_timeout == 300ms);
  CHECK(kvd::daemon::IsRuntimeKey("replication.sync_replicas"));
  CHECK(kvd::daemon::IsRuntimeKey("replication.sync_timeout"));
  CHECK_FALSE(kvd::daemon::IsRuntimeKey("replication.listen"));
}

TEST_CASE("[replication]: outside loopback with TLS, or in clear text only with insecure = true") {
  const Config t = Parse(R"([replication]
listen = "0.0.0.0:7001"
tls_cert = "p.crt"
tls_key = "p.key"
tls_ca = "ca.crt"
)");
  CHECK(t.replication.tls());
  CHECK_FALSE(t.replication.insecure);
  CHECK(t.replication.tls_cert == "p.crt");
  CHECK(t.replication.tls_key == "p.key");
  CHECK(t.replication.tls_ca == "ca.crt");
  const Config i = Parse("[replication]\nlisten = \"10.1.2.3:7001\"\ninsecure = true\n");
  CHECK(i.replication.insecure);
  CHECK_FALSE(i.replication.tls());
  CHECK(kvd::daemon::GetConfigValue(i, "replication.insecure") == "true");
  // Loopback needs neither.
  CHECK_FALSE(Parse("[replication]\nlisten = \"127.0.0.1:7001\"\n").replication.tls());
  // A replica with TLS.
  const Config r = Parse(R"([replication]
role = "replica"
primary = "10.1.2.3:7001"
tls_cert = "r.crt"
tls_key = "r.key"
tls_ca = "ca.crt"
)");
  CHECK(r.replication.tls());
}
