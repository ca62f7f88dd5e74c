#include "config/config_keys.h"

#include <charconv>
#include <chrono>

#include "config/config_units.h"

namespace kvd::daemon {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr uint64_t kKiB = 1ull << 10;
constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kTiB = 1ull << 40;
constexpr uint64_t kSecond = 1000;
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 60 * kMinute;
constexpr uint64_t kDay = 24 * kHour;
// sun_path is 108 bytes including the terminating NUL.
constexpr uint64_t kMaxSocketPath = 107;
constexpr uint64_t kMaxPath = 4095;

// Accessors for the common field shapes. Captureless lambdas decay to the
// function pointers KeyDef holds.
#define KVD_STRING_FIELD(field)                                          \
  [](const Config& c) { return KeyValue{c.field, 0}; },                  \
      [](Config* c, const KeyValue& v) { c->field = v.text; }
#define KVD_NUMBER_FIELD(field)                                                   \
  [](const Config& c) { return KeyValue{"", static_cast<uint64_t>(c.field)}; }, \
      [](Config* c, const KeyValue& v) { c->field = static_cast<decltype(c->field)>(v.number); }
#define KVD_DURATION_FIELD(field)                                                            \
  [](const Config& c) {                                                                      \
    return KeyValue{"", static_cast<uint64_t>(duration_cast<milliseconds>(c.field).count())}; \
  },                                                                                         \
      [](Config* c, const KeyValue& v) {                                                     \
        c->field = duration_cast<decltype(c->field)>(milliseconds(static_cast<int64_t>(v.number))); \
      }
#define KVD_ENUM_FIELD(field, to_string, parse)                                 \
  [](const Config& c) { return KeyValue{std::string(to_string(c.field)), 0}; }, \
      [](Config* c, const KeyValue& v) { c->field = *parse(v.text); }

std::string_view LogTargetName(LogTarget t) {
  switch (t) {
    case LogTarget::kAuto: return "auto";
    case LogTarget::kStderr: return "stderr";
    case LogTarget::kJournald: return "journald";
  }
  return "auto";
}

std::optional<LogTarget> ParseLogTarget(std::string_view s) {
  if (s == "auto") return LogTarget::kAuto;
  if (s == "stderr") return LogTarget::kStderr;
  if (s == "journald") return LogTarget::kJournald;
  return std::nullopt;
}

std::string_view Identity(const std::string& s) { return s; }
std::optional<std::string> SomeString(std::string_view s) { return std::string(s); }

// The order here is the order of RenderConfig, ListConfigValues and the
// shipped conf/kvd.toml.
const KeyDef kKeys[] = {
    {"server", "socket", KeyKind::kString, 1, kMaxSocketPath, false, "",
     "Unix socket path kvd listens on", KVD_STRING_FIELD(socket)},
    {"server", "socket_mode", KeyKind::kMode, 0, 0777, false, "",
     "permission bits of the socket file", KVD_NUMBER_FIELD(socket_mode)},
    {"server", "max_connections", KeyKind::kInt, 1, 1'000'000, false, "",
     "clients past this get an error frame and are closed", KVD_NUMBER_FIELD(max_connections)},
    {"server", "max_frame_bytes", KeyKind::kSize, 4 * kKiB, kGiB, false, "",
     "largest request frame accepted", KVD_NUMBER_FIELD(max_frame_bytes)},
    {"server", "idle_timeout", KeyKind::kDuration, 0, 30 * kDay, false, "",
     "close clients idle this long (0 = never)", KVD_DURATION_FIELD(idle_timeout)},
    {"server", "max_pending_reply_bytes", KeyKind::kSize, 64 * kKiB, 16 * kGiB, false, "",
     "stop reading from a client whose unsent replies pass this", KVD_NUMBER_FIELD(max_pending_reply_bytes)},

    {"storage", "wal_path", KeyKind::kString, 1, kMaxPath, false, "",
     "directory of the write-ahead log segments", KVD_STRING_FIELD(wal_path)},
    {"storage", "snapshot_path", KeyKind::kString, 1, kMaxPath, false, "",
     "directory of the snapshots", KVD_STRING_FIELD(snapshot_path)},
    {"storage", "segment_size", KeyKind::kSize, 64 * kKiB, 16 * kGiB, false, "",
     "size of one WAL segment file", KVD_NUMBER_FIELD(segment_size)},
    {"storage", "recovery_mode", KeyKind::kEnum, 0, 0, false, "tolerate_tail|absolute|point_in_time",
     "what recovery does with a damaged WAL",
     KVD_ENUM_FIELD(recovery_mode, ToString, ParseRecoveryMode)},
    {"storage", "max_key_bytes", KeyKind::kSize, 1, kMaxKeyBytes, false, "",
     "largest key accepted", KVD_NUMBER_FIELD(max_key_bytes)},
    {"storage", "max_value_bytes", KeyKind::kSize, 1, kMaxValueBytes, false, "",
     "largest value accepted", KVD_NUMBER_FIELD(max_value_bytes)},

    {"snapshot", "interval", KeyKind::kDuration, 0, 30 * kDay, true, "",
     "take a snapshot this often (0 = off)", KVD_DURATION_FIELD(snapshot_interval)},
    {"snapshot", "wal_bytes", KeyKind::kSize, 0, kTiB, true, "",
     "take a snapshot once the WAL grows past this (0 = off)", KVD_NUMBER_FIELD(snapshot_wal_bytes)},
    {"snapshot", "wal_growth_percent", KeyKind::kInt, 0, 1'000'000, true, "",
     "take a snapshot once the WAL grew by this percentage of the data size (0 = off)",
     KVD_NUMBER_FIELD(snapshot_wal_growth_percent)},
    {"snapshot", "wal_min_bytes", KeyKind::kSize, 0, kTiB, true, "",
     "wal_growth_percent waits for at least this much WAL growth",
     KVD_NUMBER_FIELD(snapshot_wal_min_bytes)},

    {"durability", "mode", KeyKind::kEnum, 0, 0, true, "sync|batch|none",
     "when a write is acknowledged", KVD_ENUM_FIELD(durability.mode, ToString, ParseDurabilityMode)},
    {"durability", "batch_size", KeyKind::kInt, 1, 1'000'000, true, "",
     "sync: largest group; batch: most acknowledged writes not yet durable",
     KVD_NUMBER_FIELD(durability.batch_size)},
    {"durability", "flush_interval", KeyKind::kDuration, 1, kMinute, true, "",
     "batch/none: longest time written data waits for its fdatasync/write",
     KVD_DURATION_FIELD(durability.flush_interval)},
    {"durability", "slow_sync_warning", KeyKind::kDuration, 0, kHour, true, "",
     "log a warning for an fdatasync slower than this (0 = off)", KVD_DURATION_FIELD(slow_sync_warning)},

    {"resp", "socket", KeyKind::kString, 0, kMaxSocketPath, false, "",
     "Unix socket for Redis clients (empty = none)", KVD_STRING_FIELD(resp_socket)},
    {"resp", "listen", KeyKind::kString, 0, 300, false, "",
     "HOST:PORT for Redis clients over TCP (empty = none)", KVD_STRING_FIELD(resp_listen)},
    // Shown as "(set)", never as itself (RenderConfig, CONFIG GET, logs).
    {"resp", "password", KeyKind::kString, 0, 512, false, "",
     "clients must AUTH with this password (empty = no AUTH)",
     [](const Config& c) { return KeyValue{c.resp_password.empty() ? "" : "(set)", 0}; },
     [](Config* c, const KeyValue& v) { c->resp_password = v.text; }},
    {"resp", "password_file", KeyKind::kString, 0, kMaxPath, false, "",
     "file holding the AUTH password (read at start-up)", KVD_STRING_FIELD(resp_password_file)},

    {"log", "level", KeyKind::kEnum, 0, 0, true, "trace|debug|info|warn|error|critical|off",
     "least severe level logged", KVD_ENUM_FIELD(log_level, Identity, SomeString)},
    {"log", "target", KeyKind::kEnum, 0, 0, false, "auto|stderr|journald",
     "where logs go (auto: journald under systemd, else stderr)",
     KVD_ENUM_FIELD(log_target, LogTargetName, ParseLogTarget)},

    {"metrics", "listen", KeyKind::kHostPort, 0, 0, false, "",
     "serve Prometheus metrics at http://HOST:PORT/metrics (\"\" = off)", KVD_STRING_FIELD(metrics_listen)},
    {"replication", "name", KeyKind::kString, 0, 255, false, "",
     "this node's name in the replication handshake (\"\" = the host name)", KVD_STRING_FIELD(replication.name)},
    {"replication", "role", KeyKind::kEnum, 0, 0, false, "primary|replica",
     "whether this node accepts writes or follows `primary`", KVD_ENUM_FIELD(replication.role, Identity, SomeString)},
    {"replication", "listen", KeyKind::kString, 0, 255, false, "",
     "HOST:PORT replicas connect to (\"\" = off)", KVD_STRING_FIELD(replication.listen)},
    {"replication", "primary", KeyKind::kString, 0, 255, false, "",
     "HOST:PORT of the primary a replica follows", KVD_STRING_FIELD(replication.primary)},
    {"replication", "sync_replicas", KeyKind::kInt, 0, 16, true, "",
     "replicas that must have a write durable before it is acknowledged (0 = asynchronous)",
     KVD_NUMBER_FIELD(replication.sync_replicas)},
    {"replication", "sync_timeout", KeyKind::kDuration, 1, kHour, true, "",
     "how long a write waits for its synchronous replicas before it fails", KVD_DURATION_FIELD(replication.sync_timeout)},
    {"replication", "max_retained_wal", KeyKind::kSize, 0, 16 * kTiB, false, "",
     "WAL kept beyond snapshots for replicas that are behind", KVD_NUMBER_FIELD(replication.max_retained_wal)},
    {"replication", "tls_cert", KeyKind::kString, 0, kMaxPath, false, "",
     "PEM certificate this node presents on the replication link (\"\" = no TLS)",
     KVD_STRING_FIELD(replication.tls_cert)},
    {"replication", "tls_key", KeyKind::kString, 0, kMaxPath, false, "",
     "PEM private key of tls_cert", KVD_STRING_FIELD(replication.tls_key)},
    {"replication", "tls_ca", KeyKind::kString, 0, kMaxPath, false, "",
     "PEM CA certificate(s) a peer's certificate must be signed by", KVD_STRING_FIELD(replication.tls_ca)},
    {"replication", "insecure", KeyKind::kBool, 0, 1, false, "",
     "allow a listen address outside loopback without TLS", KVD_NUMBER_FIELD(replication.insecure)},
    {"replication", "min_lsn_wait", KeyKind::kDuration, 0, kMinute, false, "",
     "how long a read with a minimum LSN (kvctl get --min-lsn) waits for this node to apply it",
     KVD_DURATION_FIELD(replication.min_lsn_wait)},
    {"replication", "read_barrier", KeyKind::kEnum, 0, 0, false, "auto|on|off",
     "with sync_replicas >= 1, a primary's read waits until its synchronous replicas confirmed what it saw "
     "(auto: with [cluster])",
     KVD_ENUM_FIELD(replication.read_barrier, Identity, SomeString)},
    {"cluster", "etcd_endpoints", KeyKind::kString, 0, 4096, false, "",
     "etcd client URLs, comma-separated (\"\" = off): etcd decides the primary", KVD_STRING_FIELD(cluster.etcd_endpoints)},
    {"cluster", "prefix", KeyKind::kString, 1, 255, false, "",
     "where this cluster's keys live in etcd", KVD_STRING_FIELD(cluster.prefix)},
    {"cluster", "ttl", KeyKind::kDuration, 2000, 60000, false, "",
     "the primary's leader lease in etcd", KVD_DURATION_FIELD(cluster.ttl)},
    {"cluster", "etcd_ca_file", KeyKind::kString, 0, kMaxPath, false, "",
     "PEM CA certificate(s) etcd's certificate must chain to (needed with https:// endpoints)",
     KVD_STRING_FIELD(cluster.etcd_ca_file)},
    {"cluster", "etcd_cert_file", KeyKind::kString, 0, kMaxPath, false, "",
     "PEM client certificate kvd presents to etcd (\"\" = none)", KVD_STRING_FIELD(cluster.etcd_cert_file)},
    {"cluster", "etcd_key_file", KeyKind::kString, 0, kMaxPath, false, "",
     "PEM private key of etcd_cert_file", KVD_STRING_FIELD(cluster.etcd_key_file)},
};

#undef KVD_STRING_FIELD
#undef KVD_NUMBER_FIELD
#undef KVD_DURATION_FIELD
#undef KVD_ENUM_FIELD

bool IsChoice(std::string_view choices, std::string_view text) {
  while (!choices.empty()) {
    const size_t bar = choices.find('|');
    if (choices.substr(0, bar) == text) return true;
    if (bar == std::string_view::npos) break;
    choices.remove_prefix(bar + 1);
  }
  return false;
}

std::string Choices(std::string_view choices) {
  std::string out(choices);
  for (size_t i = 0; (i = out.find('|', i)) != std::string::npos;) out.replace(i, 1, ", ");
  return out;
}

std::string FormatNumber(KeyKind kind, uint64_t n) {
  switch (kind) {
    case KeyKind::kDuration: return FormatDuration(milliseconds(static_cast<int64_t>(n)));
    case KeyKind::kSize: return FormatSize(n);
    case KeyKind::kMode: return FormatMode(static_cast<uint32_t>(n));
    default: return std::to_string(n);
  }
}

}  // namespace

std::span<const KeyDef> ConfigKeys() { return kKeys; }

const KeyDef* FindKey(std::string_view table, std::string_view key) {
  for (const KeyDef& k : kKeys) {
    if (k.table == table && k.key == key) return &k;
  }
  return nullptr;
}

const KeyDef* FindKey(std::string_view dotted_name) {
  const size_t dot = dotted_name.find('.');
  if (dot == std::string_view::npos) return nullptr;
  return FindKey(dotted_name.substr(0, dot), dotted_name.substr(dot + 1));
}

std::string FormatValue(const KeyDef& k, const KeyValue& v) {
  switch (k.kind) {
    case KeyKind::kString:
    case KeyKind::kEnum:
    case KeyKind::kHostPort: return v.text;
    case KeyKind::kBool: return v.number != 0 ? "true" : "false";
    default: return FormatNumber(k.kind, v.number);
  }
}

Status CheckValue(const KeyDef& k, const KeyValue& v) {
  switch (k.kind) {
    case KeyKind::kString:
      if (v.text.find('\0') != std::string::npos) return Status::InvalidArgument("contains a NUL byte");
      if (v.text.size() < k.min || v.text.size() > k.max) {
        return Status::InvalidArgument(v.text.empty() ? std::string("must not be empty")
                                                      : "is " + std::to_string(v.text.size()) +
                                                            " bytes long, the limit is " + std::to_string(k.max));
      }
      return Status::Ok();
    case KeyKind::kEnum:
      if (!IsChoice(k.choices, v.text)) {
        return Status::InvalidArgument("must be one of " + Choices(k.choices) + ", got \"" + v.text + "\"");
      }
      return Status::Ok();
    case KeyKind::kBool: return Status::Ok();
    case KeyKind::kHostPort:
      if (v.text.empty()) return Status::Ok();
      return ParseHostPort(v.text, nullptr, nullptr);
    default:
      if (v.number < k.min || v.number > k.max) {
        return Status::InvalidArgument("must be between " + FormatNumber(k.kind, k.min) + " and " +
                                       FormatNumber(k.kind, k.max) + ", got " + FormatNumber(k.kind, v.number));
      }
      return Status::Ok();
  }
}

Result<KeyValue> ParseValueText(const KeyDef& k, std::string_view text) {
  KeyValue v;
  switch (k.kind) {
    case KeyKind::kString:
    case KeyKind::kEnum:
    case KeyKind::kHostPort: v.text = std::string(text); break;
    case KeyKind::kBool:
      if (text != "true" && text != "false") {
        return Status::InvalidArgument("expected true or false, got \"" + std::string(text) + "\"");
      }
      v.number = text == "true" ? 1 : 0;
      break;
    case KeyKind::kInt: {
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v.number);
      if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
        return Status::InvalidArgument("expected a non-negative integer, got \"" + std::string(text) + "\"");
      }
      break;
    }
    case KeyKind::kDuration: {
      KVD_ASSIGN_OR_RETURN(milliseconds d, ParseDuration(text));
      v.number = static_cast<uint64_t>(d.count());
      break;
    }
    case KeyKind::kSize: {
      KVD_ASSIGN_OR_RETURN(v.number, ParseSize(text));
      break;
    }
    case KeyKind::kMode: {
      KVD_ASSIGN_OR_RETURN(uint32_t mode, ParseMode(text));
      v.number = mode;
      break;
    }
  }
  KVD_RETURN_IF_ERROR(CheckValue(k, v));
  return v;
}

}  // namespace kvd::daemon
