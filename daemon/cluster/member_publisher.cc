#include "cluster/member_publisher.h"

#include <nlohmann/json.hpp>

namespace kvd::daemon {

std::string MemberJson(const MemberFacts& f) {
  const auto now =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  nlohmann::json j;
  j["name"] = f.name;
  j["address"] = f.address;
  j["repl_address"] = f.repl_address;
  j["role"] = f.role;
  j["epoch"] = f.epoch;
  j["durable_lsn"] = f.durable_lsn;
  j["applied_lsn"] = f.applied_lsn;
  j["updated_ms"] = now.count();
  return j.dump();
}

Result<MemberFacts> ParseMemberJson(std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("member key: not a JSON object");
  MemberFacts f;
  auto str = [&](const char* k, std::string* out) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return false;
    *out = it->get<std::string>();
    return true;
  };
  auto num = [&](const char* k, uint64_t* out) {
    auto it = j.find(k);
    if (it != j.end() && it->is_number_unsigned()) *out = it->get<uint64_t>();
  };
  if (!str("name", &f.name) || !str("address", &f.address) || !str("repl_address", &f.repl_address)) {
    return Status::Corruption("member key: name, address or repl_address missing");
  }
  str("role", &f.role);
  num("epoch", &f.epoch);
  num("durable_lsn", &f.durable_lsn);
  num("applied_lsn", &f.applied_lsn);
  return f;
}

MemberPublisher::MemberPublisher(uv_loop_t*, EtcdClient* client, std::string key, std::chrono::milliseconds ttl,
                                 std::chrono::milliseconds interval, std::function<MemberFacts()> facts)
    : client_(client), key_(std::move(key)), ttl_(ttl), interval_(interval), facts_(std::move(facts)) {}

MemberPublisher::~MemberPublisher() = default;

Result<std::unique_ptr<MemberPublisher>> MemberPublisher::Create(uv_loop_t* loop, EtcdClient* client, std::string key,
                                                                 std::chrono::milliseconds ttl,
                                                                 std::chrono::milliseconds interval,
                                                                 std::function<MemberFacts()> facts) {
  std::unique_ptr<MemberPublisher> p(
      new MemberPublisher(loop, client, std::move(key), ttl, interval, std::move(facts)));
  if (!InitTimer(loop, &p->timer_, p.get())) return Status::Internal("member publisher: uv_timer_init failed");
  return p;
}

void MemberPublisher::Start() {
  const auto ms = static_cast<uint64_t>(interval_.count());
  uv_timer_start(
      timer_.get(), [](uv_timer_t* t) { static_cast<MemberPublisher*>(t->data)->Tick(); }, 0, ms);
}

void MemberPublisher::PublishNow() {
  if (!stopped_ && lease_id_ != 0) Put();
}

void MemberPublisher::Tick() {
  if (stopped_ || granting_) return;
  auto alive = std::weak_ptr<int>(life_);
  if (lease_id_ == 0) {
    granting_ = true;
    client_->LeaseGrant(ttl_.count() / 1000, [this, alive](Result<EtcdLease> r) {
      if (alive.expired()) return;
      granting_ = false;
      if (!r || stopped_) {
        if (r && stopped_) client_->LeaseRevoke(r->id, [](Result<int64_t>) {});
        return;  // the next tick tries again
      }
      lease_id_ = r->id;
      Put();
    });
    return;
  }
  const int64_t id = lease_id_;
  client_->LeaseKeepAlive(id, interval_, [this, alive, id](Result<EtcdLease> r) {
    if (alive.expired() || id != lease_id_) return;
    // Gone (expired while etcd was unreachable): a new
    // lease on the next tick.
    if ((r && r->ttl_seconds <= 0) || (!r && r.error().code() == Code::kNotFound)) lease_id_ = 0;
  });
  Put();
}

void MemberPublisher::Put() {
  const int64_t id = lease_id_;
  client_->Put(key_, MemberJson(facts_()), id, [this, alive = std::weak_ptr<int>(life_), id](Result<int64_t> r) {
    if (alive.expired() || r || id != lease_id_) return;
    // etcd refuses a put on a lease it no longer has: take a new one.
    if (r.error().code() == Code::kNotFound || r.error().code() == Code::kInvalidArgument) lease_id_ = 0;
  });
}

void MemberPublisher::Stop() {
  if (stopped_) return;
  stopped_ = true;
  uv_timer_stop(timer_.get());
  if (lease_id_ != 0) client_->LeaseRevoke(std::exchange(lease_id_, 0), [](Result<int64_t>) {});
}

}  // namespace kvd::daemon
