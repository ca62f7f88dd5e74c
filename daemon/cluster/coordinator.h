// Coordinator: the cluster coordination loop (docs/cluster.md §3, §8).
// etcd decides who is primary; this object turns its decisions into role
// changes of this node, through Replication's API (BecomePrimary,
// BecomeReplica, StepDown). Patroni's ha.py beside dcs/etcd3.py: the etcd
// client and the lease know nothing of kvd's roles.
//
//   LeaderLease kLeader(epoch)    -> BecomePrimary(epoch = the leader key's
//                                    create revision)
//   LeaderLease kFollower(leader) -> read <prefix>/members/<leader>, then
//                                    BecomeReplica(its repl_address); the
//                                    write fence names its client address
//                                    (" primary_address=<socket>")
//   sync_replicas >= 1            -> the strict sync set (sync_set.h): only
//                                    a published member campaigns; the
//                                    primary keeps the set at N members;
//                                    with N >= 2 members the one with the
//                                    highest published durable LSN
//                                    campaigns (candidate_rank.h)
//   LeaderLease kLost(why)        -> StepDown: writes fenced at once, held
//                                    acknowledgements failed, the primary's
//                                    senders stopped; the lease campaigns
//                                    again and the next event decides
//
// Until the first decision the node is a fenced replica of nobody (reads
// served, writes refused "no primary is elected yet").
//
// PrimaryGate() is the seam the serving path asks before acknowledging a
// write or answering a read as the primary: a primary past its lease
// deadline (LeaderLease::IsLeaderNow, read from the clock) answers with
// kFenced naming why, even before its loop ran the deadline timer.
//
// Threading: loop thread only.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <optional>
#include <memory>
#include <string>

#include "cluster/candidate_rank.h"
#include "cluster/etcd_client.h"
#include "cluster/leader_lease.h"
#include "cluster/member_publisher.h"
#include "cluster/sync_set.h"
#include "config/config.h"
#include "net/uv_handle.h"
#include "node/node_controller.h"
#include "repl/replication.h"

namespace kvd::daemon {

class Coordinator {
 public:
  // nullptr (no error) when [cluster] is off.
  static Result<std::unique_ptr<Coordinator>> Create(uv_loop_t* loop, const Config& config, Replication* repl,
                                                     NodeController* node);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Publishes the member key and campaigns.
  void Start();
  // OK, or why this node must not answer as the primary now. write: a
  // write's acknowledgement, refused whenever the lease is not held now
  // (also after a step-down: a write appended while leader whose fdatasync
  // ends later is not acknowledged). A read: refused only while the node
  // is still in the primary role without the lease (a replica's reads are
  // a replica's).
  Status PrimaryGate(bool write) const;
  // Clean shutdown: fence, revoke the leader lease (another node takes over
  // without waiting for the TTL) and the member lease; done runs once the
  // revoke was answered or failed (bounded by the request timeout).
  void Resign(std::function<void()> done);
  // SIGHUP / CONFIG SET of replication.sync_replicas or sync_timeout. true:
  // handled here (the published sync set follows, sync_set.h); false: the
  // caller applies it to Replication as without [cluster].
  bool ApplySync(uint32_t sync_replicas, std::chrono::milliseconds sync_timeout);

 private:
  Coordinator(uv_loop_t* loop, const Config& config, Replication* repl, NodeController* node);
  void OnLease(const LeaseEvent& ev);
  void Lead(int64_t epoch);
  // Reads the leader's member key and follows it; retried while it is missing.
  void Follow();
  MemberFacts Facts() const;
  // Fast takeover (docs/cluster.md §3.5): a sync member whose primary has
  // been silent for kTakeoverSilence fences its epoch and deletes its key.
  void CheckTakeover();
  // Whether this node has been awake and following the current leader for
  // kTakeoverSilence, so that a silence it measures is the primary's.
  bool HeardLongEnough() const;
  // The takeover's delete was refused by its compare: lifts this node's
  // fence if the old primary still holds its leader key.
  void OnTakeoverRefused(int64_t epoch, const EtcdTxnResult& t);
  // Gives the leader key back and campaigns again one ttl later.
  void ResignAndCampaignLater();
  // Replication fenced this node's writes for a newer epoch.
  void OnFencedByNewerEpoch(Epoch newer);
  void ResignIfKeyStillOurs();
  // A replica may take part in a takeover only read_lease after it last
  // heard its primary (the promise its ACKs carry).
  bool PromiseKept() const;
  // LeaderLeaseOptions::may_campaign: the switchover hold-back, the promise,
  // the sync set.
  bool MayCampaign(std::vector<EtcdCompare>* extra) const;

  // Switchover (coordinator_switchover.cc; docs/cluster.md §3.6).
  void LoadSwitchover();
  void OnSwitchover(const EtcdKeyValue* kv);
  void StartSwitchover(const std::string& to);
  void SwitchoverStep();
  void AbortSwitchover(const std::string& why);
  void DeleteSwitchoverKey();

  uv_loop_t* loop_;
  ClusterConfig cluster_;
  std::string name_;
  std::string client_address_;
  std::string repl_address_;
  Replication* repl_;
  NodeController* node_;
  std::unique_ptr<EtcdClient> client_;
  std::unique_ptr<LeaderLease> lease_;
  std::unique_ptr<MemberPublisher> publisher_;
  std::unique_ptr<SyncSet> sync_;  // sync_replicas >= 1 only
  std::unique_ptr<CandidateRank> rank_;  // with sync_
  mutable std::string rank_why_;         // the last hold-back reason logged
  std::string leader_;     // the leader we follow (kFollower), "" otherwise
  std::chrono::steady_clock::time_point leader_since_{};  // when leader_ last changed
  // CheckTakeover's last run, and the end of this process's last stall.
  std::chrono::steady_clock::time_point last_takeover_check_{}, awake_since_{};
  std::string following_;  // the repl address BecomeReplica was given
  bool resigning_ = false;
  bool taking_over_ = false;   // the leader key read of a takeover is out
  int64_t fenced_epoch_ = 0;   // the last epoch this node fenced to take over
  std::chrono::steady_clock::time_point takeover_retry_after_{};  // after a refused takeover
  UvHandle<uv_timer_t> takeover_timer_;
  struct Switchover {
    std::string from, to;
  };
  std::optional<Switchover> switchover_;  // <prefix>/switchover as last seen
  bool switching_ = false;                // this primary is handing over
  std::chrono::steady_clock::time_point switch_deadline_{};
  std::unique_ptr<EtcdWatch> switch_watch_;
  // Each its own handle: uv_timer_start on a shared one would replace a
  // running step by a pending reload (and a stop would cancel either).
  UvHandle<uv_timer_t> switch_step_timer_;    // SwitchoverStep while switching_
  UvHandle<uv_timer_t> switch_reload_timer_;  // retries LoadSwitchover
  UvHandle<uv_timer_t> follow_timer_;  // retries Follow
  UvHandle<uv_timer_t> fenced_timer_;  // OnFencedByNewerEpoch's resignation, on the next loop turn
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

}  // namespace kvd::daemon
