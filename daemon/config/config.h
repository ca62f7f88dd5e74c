// kvd's configuration: the [server] [storage] [snapshot] [durability] [log] [metrics]
// tables of kvd.toml, validated. Every key is documented in conf/kvd.toml.
//
// Keys are described once, in a table in config.cc (name, type, default,
// range, whether SIGHUP / CONFIG SET may change it at run time), like Redis's
// static_configs[]. Errors name the key, the file and the line.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kvd/engine.h"
#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd::daemon {

enum class LogTarget { kAuto, kStderr, kJournald };

// [replication] (docs/replication.md). Off unless `listen` (a primary) or
// `role = "replica"` is set. Cross-key rules: CheckReplicationConfig.
struct ReplicationConfig {
  std::string name;               // this node's name in the handshake; "" = the host name
  std::string role = "primary";   // "primary" | "replica"
  std::string listen;             // HOST:PORT for replicas to connect to; "" = off
  std::string primary;            // HOST:PORT of the primary (role = "replica")
  uint32_t sync_replicas = 0;     // replicas that must have a write durable first; 0 = async
  std::chrono::milliseconds sync_timeout{5000};
  uint64_t max_retained_wal = 1ull << 30;  // WAL kept for replicas that are behind
  // Mutual TLS on the replication link (repl/repl_tls.h): all three or none.
  std::string tls_cert;  // PEM: this node's certificate (chain)
  std::string tls_key;   // PEM: its private key
  std::string tls_ca;    // PEM: the CA that signs every node's certificate
  bool insecure = false;  // allow a non-loopback listen without TLS
  // How long a read with a minimum LSN (read-your-writes) waits for this
  // node to apply it before it fails with kTimedOut; 0 = fail at once.
  std::chrono::milliseconds min_lsn_wait{1000};
  // With sync_replicas >= 1, whether a primary's read waits until the sync
  // replicas confirmed every write it could see (docs/replication.md §6):
  // "auto" = on with [cluster] (linearizable reads), off without it.
  std::string read_barrier = "auto";
  bool enabled() const { return !listen.empty() || role == "replica"; }
  bool tls() const { return !tls_cert.empty() || !tls_key.empty() || !tls_ca.empty(); }
};

// [cluster] (docs/cluster.md): automatic failover with etcd
// (cluster/coordinator.h). Off while etcd_endpoints is empty. Cross-key
// rules: CheckClusterConfig, CheckClusterReplication.
struct ClusterConfig {
  std::string etcd_endpoints;         // "http://IP:PORT,http://IP:PORT"; "" = off
  std::string prefix = "/kvd/default";  // this cluster's keys in etcd
  std::chrono::milliseconds ttl{5000};  // the leader lease
  // TLS to etcd (https:// endpoints): the CA etcd's certificate must chain
  // to (required with https), and an optional client certificate and key
  // (both or neither). Paths to PEM files; checked at start-up by
  // CheckEtcdTlsFiles (cluster/etcd_tls.h).
  std::string etcd_ca_file;
  std::string etcd_cert_file;
  std::string etcd_key_file;
  bool enabled() const { return !etcd_endpoints.empty(); }
};

struct Config {
  std::string source_path;  // the file it was read from

  // [server]
  std::string socket = "/run/kvd/kvd.sock";
  uint32_t socket_mode = 0660;
  uint32_t max_connections = 1024;
  uint32_t max_frame_bytes = 32 * 1024 * 1024;
  std::chrono::milliseconds idle_timeout{0};  // 0 = never
  // Stop reading from a client whose unsent replies exceed this.
  uint64_t max_pending_reply_bytes = 8 * 1024 * 1024;

  // [storage]
  std::string wal_path = "/var/lib/kvd/wal";
  std::string snapshot_path = "/var/lib/kvd/snapshots";
  uint64_t segment_size = 64ull * 1024 * 1024;
  RecoveryMode recovery_mode = RecoveryMode::kTolerateTail;
  uint32_t max_key_bytes = kMaxKeyBytes;
  uint32_t max_value_bytes = kMaxValueBytes;

  // [snapshot] Automatic snapshots are on by default (node/snapshot_policy.h):
  // when the WAL grew by 100% of the data size and by at least 64 MiB, or an
  // hour after the last one if anything was written.
  std::chrono::milliseconds snapshot_interval{std::chrono::hours(1)};  // 0 = off
  uint64_t snapshot_wal_bytes = 0;                                     // 0 = off
  uint32_t snapshot_wal_growth_percent = 100;                          // 0 = off
  uint64_t snapshot_wal_min_bytes = 64ull * 1024 * 1024;

  // [durability]
  DurabilityOptions durability;
  std::chrono::milliseconds slow_sync_warning{100};  // log fdatasyncs slower than this

  // [resp] (docs/resp.md): off while both are empty
  std::string resp_socket;         // Unix socket for Redis clients
  std::string resp_listen;         // "HOST:PORT" for TCP
  std::string resp_password;       // AUTH (requirepass)
  std::string resp_password_file;  // AUTH, read at start-up

  // [log]
  std::string log_level = "info";  // trace debug info warn error critical off
  LogTarget log_target = LogTarget::kAuto;

  // [metrics]
  std::string metrics_listen;  // "HOST:PORT" of the Prometheus endpoint; empty = off
  // [replication]
  ReplicationConfig replication;
  // [cluster]
  ClusterConfig cluster;
};

// Reads and validates a TOML file. Unknown keys, wrong types and
// out-of-range values are kInvalidArgument: "<file>:<line>: <table.key>: why".
Result<Config> LoadConfig(const std::string& path);
// Same, from text (for tests and the fuzzer); `name` stands in for the path.
Result<Config> ParseConfig(const std::string& text, const std::string& name);

// The effective configuration as TOML text (kvd --check-config, start-up log).
std::string RenderConfig(const Config& c);

// One key, by dotted name ("durability.batch_size"): value as text, or
// nullopt if there is no such key.
std::optional<std::string> GetConfigValue(const Config& c, std::string_view name);
// Names and values of every key, in table order.
std::vector<std::pair<std::string, std::string>> ListConfigValues(const Config& c);
// Whether a key may change at run time (SIGHUP, CONFIG SET).
bool IsRuntimeKey(std::string_view name);
// Applies one runtime key from text (CONFIG SET). kInvalidArgument for an
// unknown key, a restart-only key or a bad value; c is unchanged then.
Status SetConfigValue(Config* c, std::string_view name, std::string_view value);

// What changed between two configs, for SIGHUP: the runtime keys to apply
// and the restart-only keys that differ (applied only after a restart).
struct ConfigDiff {
  std::vector<std::string> runtime_changed;   // "durability.batch_size: 64 -> 5"
  std::vector<std::string> restart_required;  // "server.socket: a -> b (needs a restart)"
};
ConfigDiff DiffConfig(const Config& old_config, const Config& new_config);

// The rules between [replication] keys (a replica names its primary, the
// tls_* keys come together, listen only on loopback without TLS unless
// insecure, ...); ParseConfig applies them. The TLS files themselves are
// read by MakeReplicationTls (repl/repl_tls.h).
Status CheckReplicationConfig(const ReplicationConfig& r);

// The rules of [cluster] (endpoints are http://IP:PORT or all https://IP:PORT
// with etcd_ca_file, the prefix is an absolute key path, the ttl whole
// seconds); ParseConfig applies them. The TLS files themselves are read by
// CheckEtcdTlsFiles (cluster/etcd_tls.h).
Status CheckClusterConfig(const ClusterConfig& c);
// With [cluster] on: [replication] name and listen (fixed port) are set,
// role and primary are not (etcd decides roles).
Status CheckClusterReplication(const ClusterConfig& c, const ReplicationConfig& r);
// "http://127.0.0.1:2379, http://127.0.0.1:22379" -> the URLs, checked
// (https:// too, but every URL of the list with the same scheme).
Result<std::vector<std::string>> ParseEtcdEndpoints(std::string_view text);

// Unit parsing, exposed for tests: "10ms" "5m" "1h" "0" / "64MiB" "1GiB" "4096".
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
Result<uint64_t> ParseSize(std::string_view text);

}  // namespace kvd::daemon
