#include "cluster/sync_set.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

namespace kvd::daemon {
namespace {

constexpr uint64_t kTickMs = 100;      // the primary re-checks its set this often
constexpr uint64_t kReloadMs = 250;    // a failed read of the key is retried

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

std::string SyncJson(const SyncValue& v) {
  nlohmann::json j;
  j["epoch"] = v.epoch;
  j["members"] = v.members;
  j["sync_replicas"] = v.sync_replicas;
  return j.dump();
}

Result<SyncValue> ParseSyncJson(std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("sync key: not a JSON object");
  SyncValue v;
  auto m = j.find("members");
  if (m == j.end() || !m->is_array()) return Status::Corruption("sync key: no members array");
  for (const auto& x : *m) {
    if (!x.is_string()) return Status::Corruption("sync key: a member is not a string");
    v.members.push_back(x.get<std::string>());
  }
  std::sort(v.members.begin(), v.members.end());
  if (auto e = j.find("epoch"); e != j.end() && e->is_number_integer()) v.epoch = e->get<int64_t>();
  if (auto n = j.find("sync_replicas"); n != j.end() && n->is_number_unsigned()) {
    v.sync_replicas = n->get<uint32_t>();
  }
  return v;
}

SyncSet::SyncSet(uv_loop_t* loop, EtcdClient* client, std::string prefix, std::string name, uint32_t n,
                 std::chrono::milliseconds timeout, Replication* repl, std::function<const Engine*()> engine)
    : loop_(loop),
      client_(client),
      key_(prefix + "/sync"),
      leader_key_(prefix + "/leader"),
      name_(std::move(name)),
      n_(n),
      timeout_(timeout),
      repl_(repl),
      engine_(std::move(engine)) {}

SyncSet::~SyncSet() = default;

Result<std::unique_ptr<SyncSet>> SyncSet::Create(uv_loop_t* loop, EtcdClient* client, std::string prefix,
                                                 std::string name, uint32_t sync_replicas,
                                                 std::chrono::milliseconds sync_timeout, Replication* repl,
                                                 std::function<const Engine*()> engine) {
  std::unique_ptr<SyncSet> s(new SyncSet(loop, client, std::move(prefix), std::move(name), sync_replicas,
                                         sync_timeout, repl, std::move(engine)));
  if (!InitTimer(loop, &s->timer_, s.get()) || !InitTimer(loop, &s->load_timer_, s.get())) {
    return Status::Internal("sync set: uv_timer_init failed");
  }
  return s;
}

void SyncSet::Start() {
  repl_->SetSyncMembers(std::vector<std::string>{});  // nothing counts before it is published
  Load();
}

void SyncSet::Load() {
  client_->Range(key_, {}, [this, alive = std::weak_ptr<int>(life_)](Result<EtcdRange> r) {
    if (alive.expired()) return;
    if (!r) {
      uv_timer_start(load_timer_.get(), [](uv_timer_t* t) { static_cast<SyncSet*>(t->data)->Load(); }, kReloadMs, 0);
      return;
    }
    Cache(r->kvs.empty() ? nullptr : &r->kvs[0], r->kvs.empty() ? 0 : r->kvs[0].mod_revision);
    loaded_ = true;
    if (!watch_) {
      watch_ = client_->Watch(key_, {}, r->revision + 1, [this](Result<EtcdWatchBatch> b) {
        if (!b) {
          if (b.error().code() == Code::kInvalidArgument) Load();  // compacted: read it again
          return;
        }
        for (const EtcdWatchEvent& ev : b->events) {
          Cache(ev.type == EtcdWatchEvent::Type::kDelete ? nullptr : &ev.kv, ev.kv.mod_revision);
        }
      });
    }
  });
}

void SyncSet::Cache(const EtcdKeyValue* kv, int64_t mod_revision) {
  if (kv == nullptr) {
    exists_ = false;
    mod_revision_ = 0;
    value_ = {};
    return;
  }
  if (mod_revision < mod_revision_) return;  // older than what a txn of ours already told
  auto v = ParseSyncJson(kv->value);
  if (!v) {
    spdlog::error("cluster: {}: {}", key_, v.error().message());
    return;
  }
  exists_ = true;
  mod_revision_ = mod_revision;
  value_ = std::move(v).value();
}

bool SyncSet::MayCampaign(std::vector<EtcdCompare>* extra) const {
  if (!loaded_) return false;
  if (exists_ && !Contains(value_.members, name_)) return false;
  // Exists and names us, or does not exist yet (the first primary): either
  // way it must be unchanged when the txn runs.
  if (extra != nullptr) extra->push_back({key_, EtcdCompare::Target::kMod, EtcdCompare::Op::kEqual, mod_revision_, {}});
  return true;
}

void SyncSet::Count(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  if (names == counting_) return;
  counting_ = names;
  repl_->SetSyncMembers(std::move(names));
}

void SyncSet::CountUnderGate(std::vector<std::string> names) {
  Count(ApplyGate() ? std::move(names) : std::vector<std::string>{});
}

bool SyncSet::ApplyGate() {
  if (epoch_ == 0) return true;
  uint32_t others = 0;
  for (const std::string& m : value_.members) others += m != name_ ? 1 : 0;
  // A larger set being published may be in etcd already (its reply not
  // here yet): every member of it may be promoted, so it is required whole.
  if (publishing_) others = std::max(others, publishing_others_);
  const uint32_t n = std::max(n_, others);
  if (n == gate_n_) return true;
  if (Status st = repl_->SetSync(n, timeout_); !st.ok()) {
    spdlog::error("cluster: sync set: the gate refused sync_replicas {}: {}", n, st.ToString());
    return false;
  }
  if (n != n_) {
    spdlog::warn("cluster: sync set: the gate requires {} ACKs (published members) until a set of {} is published",
                 n, n_);
  }
  gate_n_ = n;
  return true;
}

void SyncSet::SetTarget(uint32_t sync_replicas, std::chrono::milliseconds sync_timeout) {
  const bool timeout_changed = sync_timeout != timeout_;
  if (sync_replicas != n_) {
    spdlog::warn("cluster: sync set: sync_replicas {} -> {}{}", n_, sync_replicas,
                 epoch_ != 0 ? " (the published set follows)" : "");
  }
  n_ = sync_replicas;
  timeout_ = sync_timeout;
  if (epoch_ == 0) {
    // Not primary: only the configuration (used when this node is promoted).
    if (Status st = repl_->SetSync(n_, timeout_); !st.ok()) spdlog::error("cluster: sync set: {}", st.ToString());
    return;
  }
  // Growing takes effect at the gate now; shrinking once the smaller set
  // is published (Tick, then Publish's success).
  if (timeout_changed) gate_n_ = 0;  // re-apply with the new timeout
  if (!ApplyGate()) Count({});
}

void SyncSet::BeginPrimary(int64_t epoch) {
  epoch_ = epoch;
  const Engine* e = engine_();
  promoted_at_ = e != nullptr ? e->last_lsn() : 0;
  counting_.clear();
  std::vector<std::string> kept;
  if (exists_) {
    for (const std::string& m : value_.members) {
      if (m != name_) kept.push_back(m);
    }
  }
  // The gate started with Replication's last value (BecomePrimary), which
  // a previous term may have raised: set it again. A published set larger
  // than n_ (sync_replicas lowered since) is required whole until shrunk.
  gate_n_ = 0;
  // Published already (the campaign compared the key's revision): count at
  // once, unless the gate could not be set (then nobody, until a tick can).
  CountUnderGate(kept);
  uv_timer_start(timer_.get(), [](uv_timer_t* t) { static_cast<SyncSet*>(t->data)->Tick(); }, 0, kTickMs);
}

void SyncSet::EndPrimary() {
  epoch_ = 0;
  gate_n_ = 0;
  uv_timer_stop(timer_.get());
  Count({});
}

void SyncSet::Tick() {
  if (epoch_ == 0 || publishing_ || !loaded_) return;
  std::map<std::string, Lsn> connected;
  for (const auto& r : repl_->ConnectedReplicas()) connected[r.name] = std::max(connected[r.name], r.durable_lsn);
  const Engine* e = engine_();
  const Lsn threshold = std::max(promoted_at_, e != nullptr ? e->ack_lsn() : 0);
  std::vector<std::string> desired;
  for (const std::string& m : value_.members) {
    if (m != name_ && connected.count(m) != 0) desired.push_back(m);
  }
  if (desired.size() > n_) {
    // sync_replicas was lowered: keep the most advanced members.
    std::sort(desired.begin(), desired.end(), [&connected](const std::string& a, const std::string& b) {
      return connected[a] != connected[b] ? connected[a] > connected[b] : a < b;
    });
    desired.resize(n_);
  }
  // Fill up with the most advanced replicas that have every write this
  // primary may have acknowledged.
  std::vector<std::pair<Lsn, std::string>> candidates;
  for (const auto& [name, durable] : connected) {
    if (name != name_ && !Contains(desired, name) && durable >= threshold) candidates.push_back({durable, name});
  }
  std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  if (!preferred_.empty() && !Contains(desired, preferred_) && connected.count(preferred_) != 0 &&
      connected[preferred_] >= threshold) {
    desired.insert(desired.begin(), preferred_);
    if (desired.size() > n_) desired.resize(n_);
  }
  for (const auto& c : candidates) {
    if (desired.size() >= n_) break;
    if (!Contains(desired, c.second)) desired.push_back(c.second);
  }
  std::sort(desired.begin(), desired.end());
  std::vector<std::string> published_others;
  for (const std::string& m : value_.members) {
    if (m != name_) published_others.push_back(m);
  }
  const bool fresh = exists_ && value_.epoch == epoch_ && value_.sync_replicas == n_;
  if (desired.size() < n_) {
    // Cannot make a full set now: keep the published one (strict: nobody
    // outside it may be promoted); count only its connected members.
    std::vector<std::string> live;
    for (const std::string& m : published_others) {
      if (connected.count(m) != 0) live.push_back(m);
    }
    CountUnderGate(live);
    return;
  }
  if (fresh && desired == published_others) {
    // Also where a publish's reply was lost but the watch brought its value:
    // the gate's N follows the published set here too.
    CountUnderGate(desired);
    return;
  }
  // Removing: stop counting first; adding: only after the txn.
  std::vector<std::string> still;
  for (const std::string& m : counting_) {
    if (Contains(desired, m)) still.push_back(m);
  }
  Count(still);
  Publish(std::move(desired));
}

void SyncSet::Publish(std::vector<std::string> desired) {
  SyncValue v{epoch_, desired, n_};
  EtcdTxnRequest txn;
  txn.compare.push_back({leader_key_, EtcdCompare::Target::kCreate, EtcdCompare::Op::kEqual, epoch_, {}});
  txn.compare.push_back({key_, EtcdCompare::Target::kMod, EtcdCompare::Op::kEqual, mod_revision_, {}});
  txn.success.push_back(EtcdOp::Put(key_, SyncJson(v)));
  txn.failure.push_back(EtcdOp::Get(key_));
  publishing_ = true;
  publishing_others_ = 0;
  for (const std::string& m : desired) publishing_others_ += m != name_ ? 1 : 0;
  const int64_t epoch = epoch_;
  client_->Txn(std::move(txn), [this, alive = std::weak_ptr<int>(life_), epoch, v](Result<EtcdTxnResult> r) {
    if (alive.expired()) return;
    publishing_ = false;
    if (!r) return;  // outcome unknown: the watch tells; the next tick decides again
    if (!r->succeeded) {
      if (!r->ranges.empty()) {
        const auto& kvs = r->ranges[0].kvs;
        Cache(kvs.empty() ? nullptr : &kvs[0], kvs.empty() ? 0 : kvs[0].mod_revision);
      }
      return;
    }
    EtcdKeyValue kv;
    kv.value = SyncJson(v);
    Cache(&kv, r->revision);
    if (epoch != epoch_) return;
    spdlog::warn("cluster: sync set published for epoch {}: [{}] (sync_replicas {})", epoch,
                 fmt::join(v.members, ", "), v.sync_replicas);
    // A smaller set: the gate's N may drop now (counting stopped for the
    // removed members before the txn).
    CountUnderGate(v.members);
  });
}

}  // namespace kvd::daemon
