#include "resp/resp_info.h"

#include <strings.h>

#include <chrono>
#include <nlohmann/json.hpp>

namespace kvd::daemon {
namespace {

using nlohmann::json;

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t U(const json& j, const char* a, const char* b = nullptr) {
  const json* v = &j;
  if (!v->is_object() || !v->contains(a)) return 0;
  v = &(*v)[a];
  if (b != nullptr) {
    if (!v->is_object() || !v->contains(b)) return 0;
    v = &(*v)[b];
  }
  return v->is_number() ? v->get<uint64_t>() : 0;
}

// j[key] when it is an object, else an empty object (a const json's
// operator[] must not be given a missing key).
const json& Obj(const json& j, const char* key) {
  static const json kEmpty = json::object();
  if (!j.is_object() || !j.contains(key) || !j[key].is_object()) return kEmpty;
  return j[key];
}

std::string Human(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30)) {
    snprintf(buf, sizeof buf, "%.2fG", static_cast<double>(bytes) / (1ull << 30));
  } else if (bytes >= (1ull << 20)) {
    snprintf(buf, sizeof buf, "%.2fM", static_cast<double>(bytes) / (1ull << 20));
  } else if (bytes >= 1024) {
    snprintf(buf, sizeof buf, "%.2fK", static_cast<double>(bytes) / 1024);
  } else {
    snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(bytes));
  }
  return buf;
}

void Field(std::string* out, std::string_view name, const std::string& value) {
  out->append(name).append(":").append(value).append("\r\n");
}
void Field(std::string* out, std::string_view name, uint64_t value) { Field(out, name, std::to_string(value)); }

int64_t StartTime(const json& j) { return Now() - static_cast<int64_t>(U(j, "uptime_s")); }

int64_t LastSave(const json& j) {
  const json& last = Obj(Obj(j, "snapshot"), "last");
  if (last.empty()) return StartTime(j);
  return Now() - static_cast<int64_t>(U(last, "age_s"));
}

void Server(const json& j, std::string* o) {
  o->append("# Server\r\n");
  Field(o, "redis_version", std::string("7.0.0"));
  Field(o, "kvd_version", j.value("version", std::string()));
  Field(o, "redis_mode", std::string("standalone"));
  Field(o, "process_id", U(j, "pid"));
  Field(o, "uptime_in_seconds", U(j, "uptime_s"));
  Field(o, "uptime_in_days", U(j, "uptime_s") / 86400);
  Field(o, "kvd_role", j.value("role", std::string()));
}

void Clients(const json& j, std::string* o) {
  o->append("# Clients\r\n");
  Field(o, "connected_clients", U(j, "connections", "current"));
  Field(o, "maxclients", U(j, "connections", "max"));
  Field(o, "blocked_clients", uint64_t{0});
  Field(o, "kvd_reply_bytes", U(j, "connections", "reply_bytes"));
}

void Memory(const json& j, std::string* o) {
  o->append("# Memory\r\n");
  const uint64_t used = U(j, "memory", "state_bytes");
  Field(o, "used_memory", used);
  Field(o, "used_memory_human", Human(used));
  Field(o, "used_memory_rss", U(j, "memory", "rss_bytes"));
  Field(o, "used_memory_rss_human", Human(U(j, "memory", "rss_bytes")));
  Field(o, "used_memory_dataset", U(j, "memory", "data_bytes"));
}

void Persistence(const json& j, std::string* o) {
  o->append("# Persistence\r\n");
  const json& snap = Obj(j, "snapshot");
  const uint64_t snap_lsn = U(Obj(snap, "last"), "lsn");
  Field(o, "loading", uint64_t{0});
  Field(o, "rdb_changes_since_last_save", U(j, "last_lsn") - std::min(U(j, "last_lsn"), snap_lsn));
  Field(o, "rdb_bgsave_in_progress", uint64_t{snap.value("in_progress", false) ? 1u : 0u});
  Field(o, "rdb_last_save_time", std::to_string(LastSave(j)));
  Field(o, "rdb_last_bgsave_status", std::string(snap.value("last_error", std::string()).empty() ? "ok" : "err"));
  Field(o, "rdb_saves", U(snap, "succeeded"));
  Field(o, "aof_enabled", uint64_t{1});  // the WAL: every write is logged before it is acknowledged
  Field(o, "kvd_durability_mode", Obj(j, "durability").value("mode", std::string()));
  Field(o, "kvd_last_lsn", U(j, "last_lsn"));
  Field(o, "kvd_durable_lsn", U(j, "durable_lsn"));
  Field(o, "kvd_wal_bytes", U(j, "wal", "bytes"));
  Field(o, "kvd_wal_segments", U(j, "wal", "segments"));
  Field(o, "kvd_write_refusal", j.value("write_refusal", std::string()));
}

void Stats(const json& j, std::string* o) {
  o->append("# Stats\r\n");
  uint64_t ops = 0;
  for (const auto& [name, n] : Obj(j, "ops").items()) ops += n.is_number() ? n.get<uint64_t>() : 0;
  Field(o, "total_connections_received", U(j, "connections", "total"));
  Field(o, "total_commands_processed", ops);
  Field(o, "rejected_connections", U(j, "connections", "refused"));
  Field(o, "total_net_input_bytes", U(j, "bytes_in"));
  Field(o, "total_net_output_bytes", U(j, "bytes_out"));
  Field(o, "total_error_replies", U(j, "errors"));
  Field(o, "kvd_fdatasyncs", U(j, "group_commit", "groups"));
}

void Keyspace(const json& j, std::string* o) {
  o->append("# Keyspace\r\n");
  const uint64_t keys = U(j, "keys");
  if (keys > 0) Field(o, "db0", "keys=" + std::to_string(keys) + ",expires=0,avg_ttl=0");
}

struct Section {
  const char* name;
  void (*write)(const json&, std::string*);
};
constexpr Section kSections[] = {{"server", Server},         {"clients", Clients}, {"memory", Memory},
                                 {"persistence", Persistence}, {"stats", Stats},     {"keyspace", Keyspace}};

bool Is(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string BuildInfo(std::string_view status_json, std::span<const std::string_view> sections) {
  const json j = json::parse(status_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return "# Server\r\nkvd_status_error:unreadable\r\n";
  bool all = sections.empty();
  for (std::string_view s : sections) all = all || Is(s, "default") || Is(s, "all") || Is(s, "everything");
  std::string out;
  for (const Section& s : kSections) {
    bool want = all;
    for (std::string_view name : sections) want = want || Is(name, s.name);
    if (!want) continue;
    if (!out.empty()) out += "\r\n";
    s.write(j, &out);
  }
  return out;
}

int64_t LastSaveTime(std::string_view status_json) {
  const json j = json::parse(status_json, nullptr, false);
  if (j.is_discarded()) return Now();
  return LastSave(j);
}

}  // namespace kvd::daemon
