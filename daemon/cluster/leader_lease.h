// LeaderLease: the campaign for `<prefix>/leader` (docs/cluster.md §3).
//
// Campaign: grant a lease of `ttl`, then one txn: if the leader key does not
// exist (create_revision == 0) put it with our name on that lease, else read
// it. The winner's epoch is the key's create revision: etcd revisions only
// grow, so two leaderships never share an epoch. The winner renews the lease
// every ttl/3; the others watch the key and campaign again when it goes.
//
// Stopping before the lease can expire: a renewal sent at t proves the lease
// lives until at least t + ttl on etcd's side (etcd restarts the TTL when
// it handles the keepalive, which is after t). The leader counts itself
// leader only until valid_until = t_last_ok_send + ttl - stop_margin and
// reports kLost when that passes without a newer renewal, whether or not
// etcd is reachable. IsLeaderNow() reads the clock (CLOCK_BOOTTIME) itself,
// so a loop that was stalled (SIGSTOP, a long callback, a suspend) never
// acts on a stale role before the deadline timer had a chance to fire.
//
// Events: kLeader (epoch), kFollower (leader = the holder's name), kLost
// (was leader, is not any more: deadline passed, the lease or key vanished,
// or Resign). Each is reported once per change, on the loop.
//
// Threading: loop thread only. The client must outlive this object.
#pragma once

#include <time.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/etcd_client.h"
#include "cluster/etcd_watch.h"
#include "net/uv_handle.h"

namespace kvd::daemon {

// CLOCK_BOOTTIME: monotonic like steady_clock (CLOCK_MONOTONIC), but it
// keeps counting while the machine is suspended, as etcd's lease does: a
// primary resumed from a suspend must not think its lease is still young.
struct BootClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<BootClock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    return time_point(duration(static_cast<rep>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec));
  }
};

struct LeaderLeaseOptions {
  std::string prefix;  // the cluster's keys live under it: "<prefix>/leader"
  std::string name;    // this node, stored as the leader key's value
  std::chrono::milliseconds ttl{5000};
  // Zero: derived from ttl (ttl/3, ttl/5, ttl/5, ttl). docs/cluster.md §5.
  std::chrono::milliseconds keepalive_interval{0};
  std::chrono::milliseconds keepalive_timeout{0};
  std::chrono::milliseconds stop_margin{0};
  std::chrono::milliseconds recheck_interval{0};  // a follower re-reads the key this often
  std::chrono::milliseconds retry_interval{250};  // after a failed etcd request
  // Asked before each campaign txn (the strict sync set, docs/cluster.md
  // §3.2): false holds the campaign back (the txn only reads who leads, and
  // is tried again after retry_interval while nobody does); true may add
  // compares to the txn (e.g. the sync key's mod_revision).
  // Empty: always campaign.
  std::function<bool(std::vector<EtcdCompare>* extra)> may_campaign;
};

enum class LeaseRole { kNone, kLeader, kFollower, kLost };
const char* LeaseRoleName(LeaseRole role);

struct LeaseEvent {
  LeaseRole role = LeaseRole::kNone;
  int64_t epoch = 0;   // kLeader: the leader key's create revision
  std::string leader;  // kFollower: the holder's name
  std::string reason;  // kLost: why
};

class LeaderLease {
 public:
  using Clock = BootClock;
  using OnChange = std::function<void(const LeaseEvent&)>;

  struct Stats {
    uint64_t keepalives_ok = 0;
    uint64_t keepalives_failed = 0;
    // Longest time between the sends of two consecutive successful renewals
    // while leader: how close etcd trouble came to the deadline.
    std::chrono::milliseconds max_renewal_gap{0};
  };

  static Result<std::unique_ptr<LeaderLease>> Create(uv_loop_t* loop, EtcdClient* client, LeaderLeaseOptions options,
                                                     OnChange on_change);
  ~LeaderLease();
  LeaderLease(const LeaderLease&) = delete;
  LeaderLease& operator=(const LeaderLease&) = delete;

  // Starts campaigning (again, after Resign).
  void Campaign();
  // Stops campaigning; a leader stops counting itself leader at once
  // (reports kLost "resigned") and revokes its lease, which deletes the key
  // so another node can win without waiting for the TTL. done gets the
  // revoke's outcome (OK at once when there was no lease).
  void Resign(std::function<void(Status)> done);

  // Leader by the clock, not only by the last event: the question to ask
  // before acknowledging anything as primary.
  bool IsLeaderNow() const { return role_ == LeaseRole::kLeader && Clock::now() < valid_until_; }
  LeaseRole role() const { return role_; }
  int64_t epoch() const { return epoch_; }
  const std::string& leader() const { return leader_; }
  Clock::time_point valid_until() const { return valid_until_; }
  const std::string& key() const { return key_; }
  const LeaderLeaseOptions& options() const { return options_; }
  const Stats& stats() const { return stats_; }

 private:
  LeaderLease(uv_loop_t* loop, EtcdClient* client, LeaderLeaseOptions options, OnChange on_change);

  void Step();  // next campaign step: grant a lease, or try the txn with the one held
  void Acquire();
  void OnAcquire(Result<EtcdTxnResult> r);
  void BecomeLeader(int64_t epoch, int64_t revision);
  void BecomeFollower(std::string leader, int64_t revision);
  void Lose(std::string reason);
  void EnsureWatch(int64_t from_revision);
  void OnWatch(Result<EtcdWatchBatch> batch);
  void SendKeepAlive();
  void ArmDeadline();
  void OnDeadline();
  void Recheck();
  void RetryLater(std::chrono::milliseconds delay);
  void RevokeQuietly();
  void Report(LeaseRole role, std::string reason);
  // Wraps a client callback so it is dropped if this object is gone or the
  // campaign moved on (Resign, Lose) since it was issued.
  template <typename T>
  EtcdClient::Callback<T> Guard(std::function<void(Result<T>)> fn);

  uv_loop_t* loop_;
  EtcdClient* client_;
  LeaderLeaseOptions options_;
  OnChange on_change_;
  std::string key_;

  bool active_ = false;
  uint64_t generation_ = 0;
  LeaseRole role_ = LeaseRole::kNone;
  int64_t epoch_ = 0;
  std::string leader_;
  LeaseEvent last_reported_;
  int64_t lease_id_ = 0;
  Clock::time_point lease_sent_{};      // when the grant of lease_id_ was sent
  Clock::time_point valid_until_{};     // leader until then (see the header comment)
  Clock::time_point last_renewal_sent_{};
  bool keepalive_in_flight_ = false;
  bool step_in_flight_ = false;  // a grant or the campaign txn is out
  Stats stats_;

  std::unique_ptr<EtcdWatch> watch_;
  UvHandle<uv_timer_t> keepalive_timer_;
  UvHandle<uv_timer_t> deadline_timer_;
  UvHandle<uv_timer_t> retry_timer_;
  UvHandle<uv_timer_t> recheck_timer_;
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

}  // namespace kvd::daemon
