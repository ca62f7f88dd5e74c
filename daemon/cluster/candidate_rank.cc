#include "cluster/candidate_rank.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "cluster/member_publisher.h"

namespace kvd::daemon {
namespace {

constexpr uint64_t kReloadMs = 250;  // a failed read of the keys is retried

}  // namespace

CandidateRank::CandidateRank(uv_loop_t* /*loop*/, EtcdClient* client, std::string prefix,
                             std::chrono::milliseconds ttl, std::function<void()> on_leader_gone)
    : client_(client),
      prefix_(prefix + "/"),
      leader_key_(prefix + "/leader"),
      members_prefix_(prefix + "/members/"),
      ttl_(ttl),
      on_leader_gone_(std::move(on_leader_gone)) {}

CandidateRank::~CandidateRank() = default;

Result<std::unique_ptr<CandidateRank>> CandidateRank::Create(uv_loop_t* loop, EtcdClient* client, std::string prefix,
                                                             std::chrono::milliseconds ttl,
                                                             std::function<void()> on_leader_gone) {
  std::unique_ptr<CandidateRank> c(
      new CandidateRank(loop, client, std::move(prefix), ttl, std::move(on_leader_gone)));
  if (!InitTimer(loop, &c->load_timer_, c.get())) return Status::Internal("candidate rank: uv_timer_init failed");
  return c;
}

void CandidateRank::Start() { Load(); }

void CandidateRank::Load() {
  watch_.reset();
  client_->RangePrefix(prefix_, [this, alive = std::weak_ptr<int>(life_)](Result<EtcdRange> r) {
    if (alive.expired()) return;
    if (!r) {
      uv_timer_start(
          load_timer_.get(), [](uv_timer_t* t) { static_cast<CandidateRank*>(t->data)->Load(); }, kReloadMs, 0);
      return;
    }
    members_.clear();
    bool leader = false;
    for (const EtcdKeyValue& kv : r->kvs) {
      if (kv.key == leader_key_) leader = true;
      Apply(kv, /*deleted=*/false, kv.mod_revision);
    }
    if (!leader && leader_gone_revision_ == 0) {
      // Gone at some revision up to this read: a member key put after it
      // was certainly put after the key went.
      leader_gone_revision_ = r->revision;
      leader_gone_at_ = std::chrono::steady_clock::now();
    }
    loaded_ = true;
    watch_ = client_->Watch(prefix_, EtcdPrefixEnd(prefix_), r->revision + 1, [this](Result<EtcdWatchBatch> b) {
      if (!b) {
        if (b.error().code() == Code::kInvalidArgument) Load();  // compacted: read it all again
        return;
      }
      for (const EtcdWatchEvent& ev : b->events) {
        Apply(ev.kv, ev.type == EtcdWatchEvent::Type::kDelete, ev.kv.mod_revision);
      }
    });
  });
}

void CandidateRank::Apply(const EtcdKeyValue& kv, bool deleted, int64_t revision) {
  if (kv.key == leader_key_) {
    if (!deleted) {
      leader_gone_revision_ = 0;
      return;
    }
    leader_gone_revision_ = revision;
    leader_gone_at_ = std::chrono::steady_clock::now();
    if (on_leader_gone_) on_leader_gone_();
    return;
  }
  if (kv.key.compare(0, members_prefix_.size(), members_prefix_) != 0) return;
  const std::string name = kv.key.substr(members_prefix_.size());
  if (deleted) {
    members_.erase(name);
    return;
  }
  auto m = ParseMemberJson(kv.value);
  if (!m) return;  // a key we cannot read is not a candidate's word
  members_[name] = Member{m->durable_lsn, revision};
}

CandidateRank::Verdict CandidateRank::Decide(const std::vector<std::string>& members, const std::string& self,
                                             uint64_t own_lsn, std::string* why) const {
  bool others = false;
  for (const std::string& m : members) others = others || m != self;
  if (!others) return Verdict::kGo;  // one published member: nobody to compare with
  if (!loaded_ || leader_gone_revision_ == 0) {
    // Our view has not seen the key go yet (the lease's watch may be ahead
    // of ours): hold back until it has.
    if (why != nullptr) *why = "the leader key's deletion is not seen yet";
    return Verdict::kWait;
  }
  const auto now = std::chrono::steady_clock::now();
  const bool waited_out = now >= leader_gone_at_ + ttl_;
  // A better member that has not taken the key within ttl/2 may be unable to
  // (it won and resigned: its engine failed, its listener would not open; a
  // resigned node campaigns again only after ttl): stop yielding to it. Safe
  // either way: every published member has every acknowledged write.
  const bool yielded_out = now >= leader_gone_at_ + ttl_ / 2;
  for (const std::string& m : members) {
    if (m == self) continue;
    auto it = members_.find(m);
    if (it == members_.end()) continue;  // not live: no member key
    const Member& o = it->second;
    if (o.mod_revision <= leader_gone_revision_) {
      if (waited_out) continue;  // it did not publish within ttl: not waited for longer
      if (why != nullptr) *why = fmt::format("{} has not published its durable LSN since the leader key went", m);
      return Verdict::kWait;
    }
    if (o.durable_lsn > own_lsn || (o.durable_lsn == own_lsn && m < self)) {
      if (yielded_out) continue;
      if (why != nullptr) {
        *why = fmt::format("{} has durable LSN {} (this node: {}); it campaigns first", m, o.durable_lsn, own_lsn);
      }
      return Verdict::kYield;
    }
  }
  return Verdict::kGo;
}

}  // namespace kvd::daemon
