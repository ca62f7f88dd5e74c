#include "cluster/leader_lease.h"

#include <algorithm>
#include <utility>

namespace kvd::daemon {

using std::chrono::milliseconds;

const char* LeaseRoleName(LeaseRole role) {
  switch (role) {
    case LeaseRole::kNone: return "none";
    case LeaseRole::kLeader: return "leader";
    case LeaseRole::kFollower: return "follower";
    case LeaseRole::kLost: return "lost";
  }
  return "?";
}

namespace {

uint64_t Ms(milliseconds d) { return static_cast<uint64_t>(std::max<int64_t>(d.count(), 1)); }

}  // namespace

LeaderLease::LeaderLease(uv_loop_t* loop, EtcdClient* client, LeaderLeaseOptions options, OnChange on_change)
    : loop_(loop), client_(client), options_(std::move(options)), on_change_(std::move(on_change)) {
  const milliseconds ttl = options_.ttl;
  if (options_.keepalive_interval.count() <= 0) options_.keepalive_interval = ttl / 3;
  if (options_.keepalive_timeout.count() <= 0) options_.keepalive_timeout = ttl / 5;
  if (options_.stop_margin.count() <= 0) options_.stop_margin = ttl / 5;
  if (options_.recheck_interval.count() <= 0) options_.recheck_interval = ttl;
  key_ = options_.prefix + "/leader";
}

Result<std::unique_ptr<LeaderLease>> LeaderLease::Create(uv_loop_t* loop, EtcdClient* client,
                                                         LeaderLeaseOptions options, OnChange on_change) {
  if (options.name.empty()) return Status::InvalidArgument("leader lease: empty node name");
  if (options.ttl < std::chrono::seconds(2) || options.ttl.count() % 1000 != 0) {
    // etcd counts lease TTLs in whole seconds and raises anything shorter
    // than its minimum (1.5 x election timeout) anyway.
    return Status::InvalidArgument("leader lease: ttl must be a whole number of seconds >= 2");
  }
  std::unique_ptr<LeaderLease> l(new LeaderLease(loop, client, std::move(options), std::move(on_change)));
  if (l->options_.stop_margin + l->options_.keepalive_interval >= l->options_.ttl) {
    return Status::InvalidArgument("leader lease: keepalive_interval + stop_margin must stay under ttl");
  }
  bool ok = InitTimer(loop, &l->keepalive_timer_, l.get()) && InitTimer(loop, &l->deadline_timer_, l.get()) &&
            InitTimer(loop, &l->retry_timer_, l.get()) && InitTimer(loop, &l->recheck_timer_, l.get());
  if (!ok) return Status::Internal("leader lease: uv_timer_init failed");
  return l;
}

LeaderLease::~LeaderLease() = default;

template <typename T>
EtcdClient::Callback<T> LeaderLease::Guard(std::function<void(Result<T>)> fn) {
  return [alive = std::weak_ptr<int>(life_), gen = generation_, this, fn = std::move(fn)](Result<T> r) {
    if (alive.expired() || gen != generation_ || !active_) return;
    fn(std::move(r));
  };
}

void LeaderLease::Campaign() {
  if (active_) return;
  active_ = true;
  generation_++;
  step_in_flight_ = false;
  Step();
}

void LeaderLease::Step() {
  // One campaign step at a time: the watch, the recheck and the retry timer
  // may all ask for one, and two grants in flight would leave the winning
  // txn's lease unrenewed.
  if (!active_ || step_in_flight_) return;
  // A lease too old to become leader with is not worth a txn: take a new one.
  if (lease_id_ != 0 && Clock::now() + options_.keepalive_interval >= lease_sent_ + options_.ttl - options_.stop_margin) {
    RevokeQuietly();
  }
  if (lease_id_ != 0) {
    Acquire();
    return;
  }
  const auto sent = Clock::now();
  const int64_t ttl_s = options_.ttl.count() / 1000;
  step_in_flight_ = true;
  client_->LeaseGrant(ttl_s, Guard<EtcdLease>([this, sent](Result<EtcdLease> r) {
    step_in_flight_ = false;
    if (!r) {
      RetryLater(options_.retry_interval);
      return;
    }
    lease_id_ = r->id;
    lease_sent_ = sent;
    Acquire();
  }));
}

void LeaderLease::Acquire() {
  EtcdTxnRequest txn;
  txn.compare.push_back({key_, EtcdCompare::Target::kCreate, EtcdCompare::Op::kEqual, 0, {}});
  if (options_.may_campaign && !options_.may_campaign(&txn.compare)) {
    // Held back: the txn cannot succeed (no key has a negative create
    // revision) but its failure branch still says who leads, if anyone.
    txn.compare.push_back({key_, EtcdCompare::Target::kCreate, EtcdCompare::Op::kLess, 0, {}});
  }
  txn.success.push_back(EtcdOp::Put(key_, options_.name, lease_id_));
  txn.failure.push_back(EtcdOp::Get(key_));
  step_in_flight_ = true;
  client_->Txn(std::move(txn), Guard<EtcdTxnResult>([this](Result<EtcdTxnResult> r) {
    step_in_flight_ = false;
    OnAcquire(std::move(r));
  }));
}

void LeaderLease::OnAcquire(Result<EtcdTxnResult> r) {
  if (!r) {
    // Possibly applied (a timeout): the retry's failure branch tells, since
    // a key on our own lease is ours.
    RetryLater(options_.retry_interval);
    return;
  }
  if (r->succeeded) {
    BecomeLeader(r->revision, r->revision);
    return;
  }
  if (r->ranges.empty() || r->ranges[0].kvs.empty()) {
    // The key went between the compare and the read (try again now), or an
    // extra compare failed (may_campaign: let its cache catch up first).
    if (options_.may_campaign) {
      RetryLater(options_.retry_interval);
    } else {
      Step();
    }
    return;
  }
  const EtcdKeyValue& kv = r->ranges[0].kvs[0];
  if (kv.lease == lease_id_) {
    BecomeLeader(kv.create_revision, r->revision);
    return;
  }
  RevokeQuietly();  // a follower holds no lease: the next campaign takes a fresh one
  BecomeFollower(kv.value, r->revision);
}

void LeaderLease::BecomeLeader(int64_t epoch, int64_t revision) {
  epoch_ = epoch;
  leader_ = options_.name;
  valid_until_ = lease_sent_ + options_.ttl - options_.stop_margin;
  last_renewal_sent_ = lease_sent_;
  uv_timer_stop(recheck_timer_.get());
  EnsureWatch(revision + 1);
  uv_timer_start(keepalive_timer_.get(), [](uv_timer_t* t) { static_cast<LeaderLease*>(t->data)->SendKeepAlive(); },
                 Ms(options_.keepalive_interval), Ms(options_.keepalive_interval));
  ArmDeadline();
  Report(LeaseRole::kLeader, {});
}

void LeaderLease::BecomeFollower(std::string leader, int64_t revision) {
  leader_ = std::move(leader);
  epoch_ = 0;
  EnsureWatch(revision + 1);
  uv_timer_start(recheck_timer_.get(), [](uv_timer_t* t) { static_cast<LeaderLease*>(t->data)->Recheck(); },
                 Ms(options_.recheck_interval), 0);
  Report(LeaseRole::kFollower, {});
}

void LeaderLease::Lose(std::string reason) {
  uv_timer_stop(keepalive_timer_.get());
  uv_timer_stop(deadline_timer_.get());
  generation_++;  // late keepalive answers of the lost term are ignored
  keepalive_in_flight_ = false;
  step_in_flight_ = false;
  valid_until_ = Clock::time_point{};
  epoch_ = 0;
  leader_.clear();
  watch_.reset();
  RevokeQuietly();  // if etcd is reachable after all, let another node win at once
  Report(LeaseRole::kLost, std::move(reason));
  RetryLater(options_.retry_interval);
}

void LeaderLease::EnsureWatch(int64_t from_revision) {
  if (watch_) return;
  watch_ = client_->Watch(key_, {}, from_revision,
                          [this](Result<EtcdWatchBatch> b) { OnWatch(std::move(b)); });
}

void LeaderLease::OnWatch(Result<EtcdWatchBatch> batch) {
  if (!active_) return;
  if (!batch) {
    // The watch reconnects by itself; after a compaction the events are
    // gone, so read the key instead.
    if (batch.error().code() == Code::kInvalidArgument && role_ == LeaseRole::kFollower) Recheck();
    return;
  }
  for (const EtcdWatchEvent& ev : batch->events) {
    const bool deleted = ev.type == EtcdWatchEvent::Type::kDelete;
    if (role_ == LeaseRole::kLeader) {
      if (ev.kv.mod_revision <= epoch_) continue;  // history from before this term
      if (deleted || ev.kv.create_revision != epoch_) {
        Lose(deleted ? "the leader key was deleted" : "the leader key was replaced");
        return;
      }
    } else if (role_ == LeaseRole::kFollower) {
      // Our own campaign's put, seen before the txn's reply: that reply reports it.
      if (!deleted && lease_id_ != 0 && ev.kv.lease == lease_id_) continue;
      if (deleted) {
        uv_timer_stop(recheck_timer_.get());
        Step();
        return;
      }
      if (ev.kv.value != leader_) {
        leader_ = ev.kv.value;
        Report(LeaseRole::kFollower, {});
      }
    }
  }
}

void LeaderLease::SendKeepAlive() {
  if (keepalive_in_flight_ || role_ != LeaseRole::kLeader) return;
  keepalive_in_flight_ = true;
  const auto sent = Clock::now();
  client_->LeaseKeepAlive(lease_id_, options_.keepalive_timeout,
                          Guard<EtcdLease>([this, sent](Result<EtcdLease> r) {
                            keepalive_in_flight_ = false;
                            if (!r) {
                              stats_.keepalives_failed++;
                              // Try again soon (on the next endpoint); the deadline decides.
                              uv_timer_start(retry_timer_.get(), [](uv_timer_t* t) {
                                static_cast<LeaderLease*>(t->data)->SendKeepAlive();
                              }, Ms(options_.retry_interval), 0);
                              return;
                            }
                            if (r->ttl_seconds <= 0) {
                              Lose("the lease expired in etcd");
                              return;
                            }
                            stats_.keepalives_ok++;
                            stats_.max_renewal_gap = std::max(
                                stats_.max_renewal_gap,
                                std::chrono::duration_cast<milliseconds>(sent - last_renewal_sent_));
                            last_renewal_sent_ = sent;
                            const auto granted = std::min<milliseconds>(std::chrono::seconds(r->ttl_seconds), options_.ttl);
                            valid_until_ = std::max(valid_until_, sent + granted - options_.stop_margin);
                            ArmDeadline();
                          }));
}

void LeaderLease::ArmDeadline() {
  const auto left = std::chrono::duration_cast<milliseconds>(valid_until_ - Clock::now());
  uv_timer_start(deadline_timer_.get(), [](uv_timer_t* t) { static_cast<LeaderLease*>(t->data)->OnDeadline(); },
                 left.count() > 0 ? static_cast<uint64_t>(left.count()) : 0, 0);
}

void LeaderLease::OnDeadline() {
  if (role_ != LeaseRole::kLeader) return;
  if (Clock::now() < valid_until_) {
    ArmDeadline();  // libuv timers may fire a little early (millisecond rounding)
    return;
  }
  Lose("no lease renewal answered within ttl - stop_margin (" +
       std::to_string((options_.ttl - options_.stop_margin).count()) + " ms)");
}

void LeaderLease::Recheck() {
  if (role_ != LeaseRole::kFollower) return;
  client_->Range(key_, {}, Guard<EtcdRange>([this](Result<EtcdRange> r) {
    if (role_ != LeaseRole::kFollower) return;
    if (r && r->kvs.empty()) {
      Step();
      return;
    }
    if (r && r->kvs[0].value != leader_) {
      leader_ = r->kvs[0].value;
      Report(LeaseRole::kFollower, {});
    }
    uv_timer_start(recheck_timer_.get(), [](uv_timer_t* t) { static_cast<LeaderLease*>(t->data)->Recheck(); },
                   Ms(options_.recheck_interval), 0);
  }));
}

void LeaderLease::RetryLater(milliseconds delay) {
  uv_timer_start(retry_timer_.get(), [](uv_timer_t* t) { static_cast<LeaderLease*>(t->data)->Step(); }, Ms(delay),
                 0);
}

void LeaderLease::RevokeQuietly() {
  if (lease_id_ == 0) return;
  client_->LeaseRevoke(std::exchange(lease_id_, 0), [](Result<int64_t>) {});
}

void LeaderLease::Resign(std::function<void(Status)> done) {
  const bool was_leader = role_ == LeaseRole::kLeader;
  active_ = false;
  generation_++;
  for (auto* t : {&keepalive_timer_, &deadline_timer_, &retry_timer_, &recheck_timer_}) uv_timer_stop(t->get());
  keepalive_in_flight_ = false;
  step_in_flight_ = false;
  valid_until_ = Clock::time_point{};
  watch_.reset();
  const int64_t id = std::exchange(lease_id_, 0);
  epoch_ = 0;
  leader_.clear();
  if (was_leader) Report(LeaseRole::kLost, "resigned");
  if (id == 0) {
    done(Status::Ok());
    return;
  }
  client_->LeaseRevoke(id, [alive = std::weak_ptr<int>(life_), done = std::move(done)](Result<int64_t> r) {
    if (alive.expired()) return;
    done(r.error());
  });
}

void LeaderLease::Report(LeaseRole role, std::string reason) {
  role_ = role;
  LeaseEvent ev{role, role == LeaseRole::kLeader ? epoch_ : 0, role == LeaseRole::kFollower ? leader_ : std::string(),
                std::move(reason)};
  if (ev.role == last_reported_.role && ev.epoch == last_reported_.epoch && ev.leader == last_reported_.leader) return;
  last_reported_ = ev;
  on_change_(ev);
}

}  // namespace kvd::daemon
