#include "cluster_status.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "exit_codes.h"
#include "format.h"

namespace kvctl {
namespace {

using json = nlohmann::json;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Left-aligned columns, two spaces apart.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

bool InSync(const ClusterView& v, const std::string& name) {
  return v.sync && std::find(v.sync->members.begin(), v.sync->members.end(), name) != v.sync->members.end();
}

}  // namespace

std::string RenderClusterStatusText(const ClusterStatus& s) {
  const ClusterView& v = s.view;
  std::ostringstream o;
  o << "cluster " << v.prefix << " (etcd revision " << v.revision << ")\n";
  if (v.leader) {
    o << "primary: " << EscapeForLine(*v.leader) << "  epoch " << v.epoch << "\n";
  } else {
    o << "primary: none (no leader key)\n";
  }
  if (v.sync) {
    o << "sync set: [" << EscapeForLine(Joined(v.sync->members)) << "]  sync_replicas " << v.sync->sync_replicas
      << "  epoch " << v.sync->epoch << "\n";
  } else if (!v.sync_error.empty()) {
    o << "sync set: unreadable: " << v.sync_error << "\n";
  } else {
    o << "sync set: not published\n";
  }
  if (v.switchover) {
    o << "switchover requested: " << EscapeForLine(v.switchover->from) << " -> " << EscapeForLine(v.switchover->to)
      << "\n";
  }
  o << "\n";
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "ROLE", "EPOCH", "DURABLE_LSN", "APPLIED_LSN", "LAG", "AGE", "SYNC", "ADDRESS", "REPL_ADDRESS"}};
  for (const ClusterMember& m : v.members) {
    const std::string mark = v.leader && *v.leader == m.name ? "*" : "";
    if (!m.error.empty()) {
      rows.push_back({EscapeForLine(m.name) + mark, "?", "", "", "", "", "", "", "unreadable: " + m.error, ""});
      continue;
    }
    const auto lag = LagOf(v, m);
    rows.push_back({EscapeForLine(m.name) + mark, m.role.empty() ? "-" : EscapeForLine(m.role),
                    std::to_string(m.epoch), std::to_string(m.durable_lsn), std::to_string(m.applied_lsn),
                    lag ? std::to_string(*lag) : "-",
                    m.updated_ms > 0 ? HumanSeconds(static_cast<double>(s.now_ms - m.updated_ms) / 1000.0) : "-",
                    InSync(v, m.name) ? "yes" : "no", EscapeForLine(m.address), EscapeForLine(m.repl_address)});
  }
  if (v.members.empty()) {
    o << "no members (no member key under " << v.prefix << "/members/)\n";
  } else {
    o << Table(rows);
  }
  o << "\n";
  std::vector<std::vector<std::string>> erows = {{"ETCD_ENDPOINT", "HEALTH", "MEMBER_ID", "LEADER_ID", "RAFT_TERM",
                                                  "DB_SIZE", "VERSION"}};
  for (const EtcdEndpointHealth& e : s.etcd) {
    if (!e.reachable) {
      erows.push_back({e.endpoint, "unreachable: " + e.error, "", "", "", "", ""});
      continue;
    }
    erows.push_back({e.endpoint, e.status.leader_id == e.status.member_id ? "ok (leader)" : "ok",
                     e.status.member_id, e.status.leader_id, std::to_string(e.status.raft_term),
                     HumanBytes(static_cast<uint64_t>(e.status.db_size)), e.status.version});
  }
  o << Table(erows);
  return o.str();
}

std::string RenderClusterStatusJson(const ClusterStatus& s) {
  const ClusterView& v = s.view;
  json j;
  j["prefix"] = v.prefix;
  j["revision"] = v.revision;
  j["leader"] = v.leader ? json{{"name", *v.leader}, {"epoch", v.epoch}} : json(nullptr);
  json members = json::array();
  for (const ClusterMember& m : v.members) {
    json e = {{"name", m.name}, {"is_leader", v.leader && *v.leader == m.name}, {"in_sync_set", InSync(v, m.name)}};
    if (!m.error.empty()) {
      e["error"] = m.error;
      members.push_back(std::move(e));
      continue;
    }
    const auto lag = LagOf(v, m);
    e["role"] = m.role;
    e["address"] = m.address;
    e["repl_address"] = m.repl_address;
    e["epoch"] = m.epoch;
    e["durable_lsn"] = m.durable_lsn;
    e["applied_lsn"] = m.applied_lsn;
    e["lag_lsn"] = lag ? json(*lag) : json(nullptr);
    e["updated_ms"] = m.updated_ms;
    e["age_ms"] = m.updated_ms > 0 ? json(s.now_ms - m.updated_ms) : json(nullptr);
    e["error"] = nullptr;
    members.push_back(std::move(e));
  }
  j["members"] = std::move(members);
  if (v.sync) {
    j["sync"] = {{"epoch", v.sync->epoch}, {"members", v.sync->members}, {"sync_replicas", v.sync->sync_replicas}};
  } else {
    j["sync"] = nullptr;
  }
  j["switchover"] = v.switchover ? json{{"from", v.switchover->from}, {"to", v.switchover->to}} : json(nullptr);
  json etcd = json::array();
  for (const EtcdEndpointHealth& e : s.etcd) {
    json h = {{"endpoint", e.endpoint}, {"reachable", e.reachable}};
    if (e.reachable) {
      h["member_id"] = e.status.member_id;
      h["leader_id"] = e.status.leader_id;
      h["is_leader"] = e.status.leader_id == e.status.member_id;
      h["raft_term"] = e.status.raft_term;
      h["db_size"] = e.status.db_size;
      h["version"] = e.status.version;
      h["error"] = nullptr;
    } else {
      h["error"] = e.error;
    }
    etcd.push_back(std::move(h));
  }
  j["etcd"] = std::move(etcd);
  j["now_ms"] = s.now_ms;
  // Names and addresses are arbitrary bytes: never fail on invalid UTF-8.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

kvd::Result<ClusterStatus> ReadClusterStatus(EtcdGateway& gw, const std::string& prefix) {
  ClusterStatus s;
  const std::string base = prefix + "/";
  KVD_ASSIGN_OR_RETURN(etcd::RangeResult range, gw.Range(base, etcd::PrefixEnd(base)));
  s.now_ms = WallMs();
  s.view = BuildClusterView(prefix, range);
  for (const std::string& endpoint : gw.endpoints()) {
    EtcdEndpointHealth h;
    h.endpoint = endpoint;
    auto st = gw.MemberStatusOf(endpoint);
    h.reachable = st.has_value();
    if (st.has_value()) {
      h.status = std::move(*st);
    } else {
      h.error = st.error().message();
      // The endpoint has its own column.
      const std::string named = "etcd " + endpoint + ": ";
      if (h.error.starts_with(named)) h.error.erase(0, named.size());
    }
    s.etcd.push_back(std::move(h));
  }
  return s;
}

int CmdClusterStatus(EtcdGateway& gw, const std::string& prefix, bool as_json, std::ostream& out,
                     std::ostream& err) {
  auto s = ReadClusterStatus(gw, prefix);
  if (!s.has_value()) {
    err << "kvctl cluster status: " << s.error().message() << "\n";
    return kExitServer;
  }
  out << (as_json ? RenderClusterStatusJson(*s) + "\n" : RenderClusterStatusText(*s));
  return kExitOk;
}

}  // namespace kvctl
