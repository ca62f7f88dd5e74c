#include "cluster_view.h"

#include <nlohmann/json.hpp>

namespace kvctl {
namespace {

using json = nlohmann::json;
using kvd::Result;
using kvd::Status;

Result<json> ParseObject(std::string_view text, std::string_view what) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption(std::string(what) + " is not a JSON object");
  return j;
}

// An unsigned field: a JSON number, or a decimal string (as etcd writes int64s).
Result<uint64_t> U64(const json& j, const char* name, std::string_view what) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return uint64_t{0};
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer() && it->get<int64_t>() >= 0) return static_cast<uint64_t>(it->get<int64_t>());
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() <= 19) return std::stoull(s);
  }
  return Status::Corruption(std::string(what) + ": " + name + " is not an unsigned integer");
}

Result<std::string> Str(const json& j, const char* name, std::string_view what) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Status::Corruption(std::string(what) + ": " + name + " is not a string");
  return it->get<std::string>();
}

}  // namespace

const ClusterMember* ClusterView::Member(std::string_view name) const {
  for (const ClusterMember& m : members) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

const ClusterMember* ClusterView::Primary() const { return leader ? Member(*leader) : nullptr; }

Result<std::string> NormalizePrefix(std::string_view prefix) {
  std::string p(prefix);
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (p.empty()) return Status::InvalidArgument("the cluster prefix must not be empty (e.g. /kvd/main)");
  return p;
}

Result<ClusterMember> ParseMember(std::string_view name, std::string_view text) {
  const std::string what = "members/" + std::string(name);
  KVD_ASSIGN_OR_RETURN(json j, ParseObject(text, what));
  ClusterMember m;
  m.name = std::string(name);
  KVD_ASSIGN_OR_RETURN(m.address, Str(j, "address", what));
  KVD_ASSIGN_OR_RETURN(m.repl_address, Str(j, "repl_address", what));
  KVD_ASSIGN_OR_RETURN(m.role, Str(j, "role", what));
  KVD_ASSIGN_OR_RETURN(m.epoch, U64(j, "epoch", what));
  KVD_ASSIGN_OR_RETURN(m.durable_lsn, U64(j, "durable_lsn", what));
  KVD_ASSIGN_OR_RETURN(m.applied_lsn, U64(j, "applied_lsn", what));
  KVD_ASSIGN_OR_RETURN(uint64_t updated, U64(j, "updated_ms", what));
  m.updated_ms = static_cast<int64_t>(updated);
  return m;
}

Result<ClusterSync> ParseSync(std::string_view text) {
  KVD_ASSIGN_OR_RETURN(json j, ParseObject(text, "sync"));
  ClusterSync s;
  KVD_ASSIGN_OR_RETURN(s.epoch, U64(j, "epoch", "sync"));
  KVD_ASSIGN_OR_RETURN(s.sync_replicas, U64(j, "sync_replicas", "sync"));
  if (auto it = j.find("members"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return Status::Corruption("sync: members is not an array");
    for (const json& e : *it) {
      if (!e.is_string()) return Status::Corruption("sync: a member is not a string");
      s.members.push_back(e.get<std::string>());
    }
  }
  return s;
}

Result<ClusterSwitchover> ParseSwitchover(std::string_view text) {
  KVD_ASSIGN_OR_RETURN(json j, ParseObject(text, "switchover"));
  ClusterSwitchover s;
  KVD_ASSIGN_OR_RETURN(s.from, Str(j, "from", "switchover"));
  KVD_ASSIGN_OR_RETURN(s.to, Str(j, "to", "switchover"));
  return s;
}

std::string SwitchoverJson(const ClusterSwitchover& s) { return json{{"from", s.from}, {"to", s.to}}.dump(); }

ClusterView BuildClusterView(std::string_view prefix, const etcd::RangeResult& range) {
  ClusterView v;
  v.prefix = std::string(prefix);
  v.revision = range.revision;
  const std::string base = v.prefix + "/";
  const std::string members = base + "members/";
  for (const etcd::KeyValue& kv : range.kvs) {
    if (!kv.key.starts_with(base)) continue;
    if (kv.key == base + "leader") {
      v.leader = kv.value;
      v.epoch = kv.create_revision;
    } else if (kv.key.starts_with(members) && kv.key.size() > members.size()) {
      const std::string name = kv.key.substr(members.size());
      auto m = ParseMember(name, kv.value);
      if (m.has_value()) {
        v.members.push_back(std::move(*m));
      } else {
        ClusterMember bad;
        bad.name = name;
        bad.error = m.error().message();
        v.members.push_back(std::move(bad));
      }
    } else if (kv.key == base + "sync") {
      auto s = ParseSync(kv.value);
      if (s.has_value()) {
        v.sync = std::move(*s);
      } else {
        v.sync_error = s.error().message();
      }
    } else if (kv.key == base + "switchover") {
      auto s = ParseSwitchover(kv.value);
      if (s.has_value()) v.switchover = std::move(*s);
    }
  }
  return v;
}

std::optional<uint64_t> LagOf(const ClusterView& view, const ClusterMember& m) {
  const ClusterMember* p = view.Primary();
  if (p == nullptr || !m.error.empty() || !p->error.empty()) return std::nullopt;
  return p->durable_lsn > m.durable_lsn ? p->durable_lsn - m.durable_lsn : 0;
}

}  // namespace kvctl
