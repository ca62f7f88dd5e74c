// CandidateRank: among the published sync members, the one with the highest
// durable LSN campaigns (docs/cluster.md §3.2, "Among candidates").
//
// It caches `<prefix>/members/*` (each node's published durable LSN and the
// etcd revision of that put) and whether `<prefix>/leader` exists (the
// revision at which it went). Decide() answers, for this node:
//
//   kGo    - no other member of the published set, or every other live
//            member has published after the leader key went and none is
//            better (higher durable LSN; ties: the smaller name);
//   kWait  - some live member has not published since the key went (its
//            key existed before); waited for at most ttl after this node
//            saw the key go, then it no longer counts;
//   kYield - a live member that published after the key went is better;
//            for at most ttl/2 after this node saw the key go (a better
//            member that cannot become primary must not stall the failover:
//            it resigns and campaigns again only after ttl).
//
// A member without a member key is not live (dead for a ttl at least, or
// never started) and is not waited for. A yielded-to member that dies
// loses its key after its ttl, and the next one proceeds.
//
// With one published member (sync_replicas = 1) Decide is kGo at once: no
// added latency on the fast-takeover path.
//
// Threading: loop thread only. The client must outlive this object.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster/etcd_client.h"
#include "cluster/etcd_watch.h"
#include "net/uv_handle.h"

namespace kvd::daemon {

class CandidateRank {
 public:
  enum class Verdict { kGo, kWait, kYield };

  // on_leader_gone runs when the watch sees the leader key deleted (the
  // coordinator republishes its member key at once, so the others need
  // not wait for the next periodic put).
  static Result<std::unique_ptr<CandidateRank>> Create(uv_loop_t* loop, EtcdClient* client, std::string prefix,
                                                       std::chrono::milliseconds ttl,
                                                       std::function<void()> on_leader_gone);
  ~CandidateRank();
  CandidateRank(const CandidateRank&) = delete;
  CandidateRank& operator=(const CandidateRank&) = delete;

  // Reads the keys and watches them.
  void Start();
  // members: the published sync set; self: this node, whose durable LSN is
  // own_lsn. why (if not null) says what decided, for the log.
  Verdict Decide(const std::vector<std::string>& members, const std::string& self, uint64_t own_lsn,
                 std::string* why) const;

 private:
  struct Member {
    uint64_t durable_lsn = 0;
    int64_t mod_revision = 0;  // the put that published it
  };
  CandidateRank(uv_loop_t* loop, EtcdClient* client, std::string prefix, std::chrono::milliseconds ttl,
                std::function<void()> on_leader_gone);
  void Load();
  void Apply(const EtcdKeyValue& kv, bool deleted, int64_t revision);

  EtcdClient* client_;
  std::string prefix_;  // "<prefix>/"
  std::string leader_key_;
  std::string members_prefix_;
  std::chrono::milliseconds ttl_;
  std::function<void()> on_leader_gone_;

  bool loaded_ = false;
  std::map<std::string, Member> members_;
  int64_t leader_gone_revision_ = 0;  // 0: the leader key exists (or not read yet)
  std::chrono::steady_clock::time_point leader_gone_at_{};
  std::unique_ptr<EtcdWatch> watch_;
  UvHandle<uv_timer_t> load_timer_;
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

}  // namespace kvd::daemon
