// SyncSet: the strict synchronous replica set in etcd (docs/cluster.md §3.2),
// for sync_replicas = N >= 1. Both sides of the rule live here:
//
// - every node keeps `<prefix>/sync` cached (a read, then a watch) and asks
//   MayCampaign before its campaign txn: only a published member may
//   campaign, and its txn also compares mod_revision(sync) with the cached
//   one, so the set cannot change between the check and the win (no sync
//   key yet: anyone may, the txn requiring it to be still absent);
// - the primary keeps the published set at exactly N replicas other than
//   itself. Adding: publish first (a txn guarded by its leader key's create
//   revision and sync's mod_revision), then let the sync gate count the new
//   member's ACKs. Removing: stop counting first, then publish. A new member
//   is published only once its durable LSN reaches the highest LSN this
//   primary may have acknowledged (its last LSN when it was promoted, or
//   its acknowledged LSN since, whichever is higher); meanwhile writes wait
//   in the gate, bounded by sync_timeout.
// - sync_replicas changed at run time (SetTarget, SIGHUP): the gate's N is
//   kept at max(sync_replicas, published members other than this primary),
//   so the published set is never larger than what the gate requires
//   (every acknowledged write is on every published member). Growing: the
//   gate's N rises first, then a larger set is published, then counted.
//   Shrinking: the dropped members stop counting, the smaller set is
//   published, and only after that txn succeeded does the gate's N drop.
//
// Threading: loop thread only.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cluster/etcd_client.h"
#include "cluster/etcd_watch.h"
#include "net/uv_handle.h"
#include "repl/replication.h"

namespace kvd::daemon {

struct SyncValue {
  int64_t epoch = 0;
  std::vector<std::string> members;  // sorted
  uint32_t sync_replicas = 0;
};
std::string SyncJson(const SyncValue& v);
Result<SyncValue> ParseSyncJson(std::string_view json);

class SyncSet {
 public:
  static Result<std::unique_ptr<SyncSet>> Create(uv_loop_t* loop, EtcdClient* client, std::string prefix,
                                                 std::string name, uint32_t sync_replicas,
                                                 std::chrono::milliseconds sync_timeout, Replication* repl,
                                                 std::function<const Engine*()> engine);
  ~SyncSet();
  SyncSet(const SyncSet&) = delete;
  SyncSet& operator=(const SyncSet&) = delete;

  // Reads the key and watches it.
  void Start();
  // LeaderLeaseOptions::may_campaign.
  bool MayCampaign(std::vector<EtcdCompare>* extra) const;
  // This node became primary in `epoch` (just after BecomePrimary): the
  // gate counts the published members other than itself, and the set is
  // kept from now on. EndPrimary: stop (the gate counts nobody).
  void BeginPrimary(int64_t epoch);
  void EndPrimary();
  // A switchover target: made a member (replacing another if the set is
  // full) as soon as its durable LSN qualifies. "" = none.
  void Prefer(std::string name) { preferred_ = std::move(name); }
  // sync_replicas (>= 1) or sync_timeout changed at run time; see above.
  void SetTarget(uint32_t sync_replicas, std::chrono::milliseconds sync_timeout);
  uint32_t target() const { return n_; }
  const SyncValue& published() const { return value_; }
  int64_t epoch() const { return epoch_; }
  bool exists() const { return exists_; }

 private:
  SyncSet(uv_loop_t* loop, EtcdClient* client, std::string prefix, std::string name, uint32_t n,
          std::chrono::milliseconds timeout, Replication* repl, std::function<const Engine*()> engine);
  void Load();
  void Cache(const EtcdKeyValue* kv, int64_t mod_revision);
  void Tick();
  void Publish(std::vector<std::string> desired);
  void Count(std::vector<std::string> names);
  // The primary's gate requires max(n_, published members but us, members
  // but us of a publish in flight) ACKs. False: the gate refused (an engine
  // error); the caller then counts nobody (fail closed).
  bool ApplyGate();
  // ApplyGate, then Count(names), or count nobody if the gate refused.
  void CountUnderGate(std::vector<std::string> names);

  uv_loop_t* loop_;
  EtcdClient* client_;
  std::string key_;
  std::string leader_key_;
  std::string name_;
  uint32_t n_;
  std::chrono::milliseconds timeout_;
  uint32_t gate_n_ = 0;  // what the primary's gate was last told (0: not yet)
  Replication* repl_;
  std::function<const Engine*()> engine_;

  // The cache of <prefix>/sync.
  bool loaded_ = false;
  bool exists_ = false;
  int64_t mod_revision_ = 0;
  SyncValue value_;
  std::unique_ptr<EtcdWatch> watch_;

  // Primary side.
  int64_t epoch_ = 0;  // 0: not primary
  Lsn promoted_at_ = 0;
  bool publishing_ = false;
  uint32_t publishing_others_ = 0;  // members but us of the set being published
  std::vector<std::string> counting_;
  std::string preferred_;
  UvHandle<uv_timer_t> timer_;
  UvHandle<uv_timer_t> load_timer_;
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

}  // namespace kvd::daemon
