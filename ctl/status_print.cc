#include "status_print.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "format.h"

namespace kvctl {
namespace {

using Json = nlohmann::ordered_json;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

kvd::Result<Json> ParseObject(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return kvd::Status::InvalidArgument("server sent malformed JSON");
  }
  return j;
}

// Humans read these first, in this order; anything else follows in the
// server's order (kvd may add fields without kvctl changing).
constexpr std::string_view kScalarOrder[] = {"version", "pid", "state", "uptime_s", "keys", "last_lsn",
                                             "durable_lsn", "applied_lsn", "pending_records", "writes_refused",
                                             "write_refusal", "storage_warnings"};
constexpr std::string_view kGroupOrder[] = {"durability", "group_commit", "wal", "snapshot", "recovery",
                                            "memory", "connections", "ops"};

template <size_t N>
size_t Rank(std::string_view key, const std::string_view (&order)[N]) {
  for (size_t i = 0; i < N; ++i) {
    if (order[i] == key) return i;
  }
  return N;
}

// Keys of obj in display order: the known ones first, then the rest as sent.
template <size_t N>
std::vector<std::string> OrderedKeys(const Json& obj, const std::string_view (&order)[N]) {
  std::vector<std::string> keys;
  for (auto it = obj.begin(); it != obj.end(); ++it) keys.push_back(it.key());
  std::stable_sort(keys.begin(), keys.end(),
                   [&](const std::string& a, const std::string& b) { return Rank(a, order) < Rank(b, order); });
  return keys;
}

std::string NumberText(const Json& v) {
  if (!v.is_number_float()) return v.dump();
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3f", v.get<double>());
  std::string out = buf;
  while (out.back() == '0') out.pop_back();
  if (out.back() == '.') out.pop_back();
  return out;
}

std::string ScalarText(const std::string& key, const Json& v) {
  if (v.is_string()) return v.get<std::string>().empty() ? "-" : v.get<std::string>();
  if (v.is_null()) return "-";
  if (v.is_array()) {
    std::string out;
    for (const auto& item : v) {
      if (!out.empty()) out += ", ";
      out += item.is_string() ? item.get<std::string>() : item.dump();
    }
    return out.empty() ? "(none)" : out;
  }
  if (!v.is_number()) return v.dump();
  std::string raw = NumberText(v);
  const double d = v.get<double>();
  if (EndsWith(key, "_bytes") && v.is_number_unsigned() && d >= 1024) {
    return raw + " (" + HumanBytes(v.get<uint64_t>()) + ")";
  }
  if (EndsWith(key, "_seconds") || EndsWith(key, "_s")) return raw + " (" + HumanSeconds(d) + ")";
  if (EndsWith(key, "_ms") && d >= 1000) return raw + " (" + HumanSeconds(d / 1e3) + ")";
  if (EndsWith(key, "_us") && d >= 1000) return raw + " (" + HumanSeconds(d / 1e6) + ")";
  return raw;
}

void Flatten(const std::string& prefix, const Json& obj, std::string* out) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object()) {
      Flatten(key, *it, out);
    } else if (it->is_array() && !it->empty() && it->front().is_object()) {
      // A list of records (STATUS replication.replicas): one block each,
      // named by its "name" field where it has one.
      for (size_t i = 0; i < it->size(); ++i) {
        const Json& item = (*it)[i];
        const auto name = item.find("name");
        const std::string label = name != item.end() && name->is_string() ? name->get<std::string>()
                                                                          : std::to_string(i);
        Flatten(key + "[" + label + "]", item, out);
      }
    } else {
      *out += "  " + key + ": " + ScalarText(it.key(), *it) + "\n";
    }
  }
}

}  // namespace

kvd::Result<std::string> RenderStatusText(std::string_view json_text) {
  KVD_ASSIGN_OR_RETURN(Json root, ParseObject(json_text));
  std::string out;
  std::string general;
  for (const std::string& key : OrderedKeys(root, kScalarOrder)) {
    const Json& v = root[key];
    if (!v.is_object()) general += "  " + key + ": " + ScalarText(key, v) + "\n";
  }
  if (!general.empty()) out += "server\n" + general;
  for (const std::string& key : OrderedKeys(root, kGroupOrder)) {
    const Json& v = root[key];
    if (!v.is_object()) continue;
    if (!out.empty()) out += "\n";
    out += key + "\n";
    std::string body;
    Flatten("", v, &body);
    out += body.empty() ? "  (empty)\n" : body;
  }
  return out;
}

kvd::Result<std::string> CompactJson(std::string_view json_text) {
  KVD_ASSIGN_OR_RETURN(Json root, ParseObject(json_text));
  return root.dump();
}

kvd::Result<std::string> RenderConfigText(std::string_view json_text) {
  KVD_ASSIGN_OR_RETURN(Json root, ParseObject(json_text));
  std::string out;
  for (auto it = root.begin(); it != root.end(); ++it) {
    out += it.key() + " = " + (it->is_string() ? it->get<std::string>() : it->dump()) + "\n";
  }
  return out;
}

kvd::Result<std::string> ConfigValueText(std::string_view json_text, std::string_view name) {
  KVD_ASSIGN_OR_RETURN(Json root, ParseObject(json_text));
  auto it = root.find(std::string(name));
  if (it == root.end()) {
    // A server may answer a single-key GET with a flat object of one entry.
    if (root.size() != 1) return kvd::Status::NotFound("no config key " + std::string(name));
    it = root.begin();
  }
  return it->is_string() ? it->get<std::string>() : it->dump();
}

}  // namespace kvctl
