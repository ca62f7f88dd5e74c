// Replication: the one object the composition root (Server) holds for
// daemon/repl/. It builds what the configured role needs — a ReplPrimary
// (listener + WAL senders) or a WalReceiver — around one WalFeed, which is
// the engine's CommitObserver, and reports both in STATUS.
//
// A replica raises the engine's write fence (kNotPrimary, naming the
// primary) through the NodeController before it serves: clients' writes are
// refused, reads are served.
//
// Off ([replication] not configured): observer() is nullptr, so the engine's
// write path does no extra work, and nothing listens.
//
// Role changes are an API for any coordinator (kvctl's PROMOTE and
// REPLICATE today, the etcd failover loop later; replication_roles.cc):
// BecomePrimary(epoch) and BecomeReplica(primary). A primary that sees a
// newer epoch fences itself (kFenced) until it is made a replica.
//
// Threading: loop thread only (the feed's observer calls excepted).
#pragma once

#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "kvd/engine.h"
#include "node/node_controller.h"
#include "node/replica_acks.h"
#include "repl/repl_primary.h"
#include "repl/wal_feed.h"
#include "repl/wal_receiver.h"

namespace kvd::daemon {

class Replication : public ReplicaAcks {
 public:
  Replication(uv_loop_t* loop, const Config& config);
  ~Replication();
  bool enabled() const { return config_.enabled(); }
  // For EngineOptions.commit_observer (before Engine::Open); nullptr when off.
  CommitObserver* observer() { return enabled() ? &feed_ : nullptr; }
  // After recovery, before serving clients.
  Status Start(Engine* engine, NodeController* node);
  // Shutdown, after the engine closed: closes the listener, links, timers.
  void Stop();
  // The "replication" object of STATUS; empty when off.
  std::string StatusJson() const;
  // The replication metrics (role and epoch are the caller's).
  void FillMetrics(ReplicationMetrics* m) const;
  // The replication port actually bound (listen with port 0, tests).
  uint16_t port() const { return primary_ ? primary_->port() : 0; }
  const std::string& node_name() const { return name_; }
  // SIGHUP / CONFIG SET of replication.sync_replicas or sync_timeout (a
  // primary applies them at once; a replica keeps them for later).
  Status SetSync(uint32_t sync_replicas, std::chrono::milliseconds timeout);

  // The read barrier of synchronous replication (a primary's SyncGate).
  std::optional<std::chrono::milliseconds> SyncReadWait() const {
    return primary_ ? primary_->SyncReadWait() : std::nullopt;
  }
  Status SyncReadFailure() const {
    return primary_ ? primary_->SyncReadFailure() : Status::IOError("not enough synchronous replicas");
  }

  // ReplicaAcks (RESP WAIT)
  uint32_t CountDurable(Lsn lsn) override { return primary_ ? primary_->CountDurable(lsn) : 0; }
  bool IsReplica() const override { return receiver_ != nullptr; }
  void SetOnAcksChanged(std::function<void()> fn) override;
  // The Env a replica writes transferred snapshots through (the engine's).
  void set_env(Env* env) { env_ = env; }

  // ---- role changes (replication_roles.cc; docs/replication.md §7) -------
  // What the server lends for role changes: the sink that gets the
  // completions of writes made durable during a log cut, and whether a
  // snapshot of the state is being written (a cut waits for it).
  struct Hooks {
    CompletionSink* sink = nullptr;
    std::function<bool()> snapshot_running;
  };
  void set_hooks(Hooks hooks) { hooks_ = std::move(hooks); }
  // This replica becomes the primary: its receiver stops, the engine
  // begins `epoch` (0: the highest epoch seen + 1) durably before any write,
  // the replication listener opens, the write fence is lifted. Refused
  // (nothing changed) when this node may lack acknowledged writes
  // (promote_check.h) unless force, when [replication] listen is not
  // configured, or when it is a primary already. Returns the epoch begun.
  Result<Epoch> BecomePrimary(Epoch epoch, bool force);
  // This node follows the primary at `primary`: writes are fenced first
  // (kNotPrimary naming it), a primary's listener and senders stop, and a
  // receiver starts (replacing any previous one). A log that diverged from
  // the new primary's is cut when it says TRUNCATE.
  Status BecomeReplica(const HostPort& primary);
  // The cluster coordinator lost the leader lease (or resigns): writes are
  // fenced with `why` at once, writes the acknowledgement gate holds fail
  // with it, a primary's listener and senders stop, and the node is a
  // replica of nobody until BecomeReplica or BecomePrimary.
  void StepDown(const Status& why);
  // The cluster's published sync set: only these replicas' ACKs count
  // (kept for a primary started later too); nullopt: every replica counts.
  void SetSyncMembers(std::optional<std::vector<std::string>> names);
  // A primary's connected replicas (name, durable LSN); empty otherwise.
  std::vector<repl::SyncGate::Replica> ConnectedReplicas() {
    return primary_ ? primary_->Connected() : std::vector<repl::SyncGate::Replica>{};
  }
  // The cluster's read lease (docs/cluster.md §3.5): the oldest of the
  // newest heartbeat send times (the primary's CLOCK_BOOTTIME, µs) that each of `names`
  // echoed; 0 if one of them has not (or is not connected).
  uint64_t OldestEcho(const std::vector<std::string>& names) {
    uint64_t oldest = UINT64_MAX;
    for (const std::string& n : names) oldest = std::min(oldest, primary_ ? primary_->EchoSentAtUs(n) : 0);
    return names.empty() ? 0 : oldest;
  }
  // A replica: how long since it last heard its primary (nullopt: it has
  // not heard one since it started following it).
  std::optional<std::chrono::milliseconds> PrimarySilence() const {
    if (!receiver_ || !receiver_->heard_primary()) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 receiver_->last_heard());
  }
  // Refuse epoch `e` from now on (frames of it, and of anything older): a
  // cluster member about to take over from a silent primary. Saved like
  // any newer epoch seen (SeeEpoch); refused in memory even if that fails.
  // Provisional until ConfirmEpochFence or LiftEpochFence: meanwhile this
  // node's own frames (HELLO, ACK, a refusal) still carry the epoch seen
  // before, so a primary whose takeover etcd refuses is not fenced by a
  // frame it reads when it wakes.
  void FenceEpoch(Epoch e);
  // The takeover from e went ahead, or its outcome is unknown: the fence
  // stays and this node's frames carry it from now on (a primary reading
  // one fences itself).
  void ConfirmEpochFence(Epoch e);
  // Undoes FenceEpoch(e) once etcd said the takeover did not happen and e's
  // leader key is still there: e is then the newest epoch there is, and a
  // fence kept would refuse a live primary for good (and its HELLO would
  // make that primary fence itself). Only while nothing newer than the
  // fence was seen; saved like SeeEpoch (the file then holds e again).
  // true: lifted. false: nothing to lift (not fenced at e, or a newer epoch
  // was seen since: that fence stays). An error (fence kept, logged) if the
  // file cannot be replaced.
  Result<bool> LiftEpochFence(Epoch e);
  // The highest epoch this node has seen (its own history or any frame,
  // before this start too: the seen_epoch file beside the WAL).
  Epoch highest_epoch_seen() const;
  // The epoch this node's replication frames carry: highest_epoch_seen()
  // without a provisional fence (FenceEpoch).
  Epoch announced_epoch() const;
  // Called (on the loop, possibly from inside a link's callback: defer any
  // role change) when this node fences its writes because a peer showed it
  // a newer epoch. The cluster coordinator resigns a leader key it holds.
  void SetOnFencedByNewerEpoch(std::function<void(Epoch newer)> fn) { on_fenced_by_newer_ = std::move(fn); }
  // This primary was fenced by a newer epoch (above): its writes stay fenced
  // and its acknowledgement gate off until it becomes a replica or steps
  // down (either ends its ReplPrimary, which holds the fence's reason).
  // Whoever lifts a fence of its own (an aborted switchover) checks this
  // first.
  bool fenced_by_newer_epoch() const { return primary_ && primary_->fenced_as_old_primary(); }

 private:
  void FenceForNewerEpoch(Epoch newer, const std::string& why);
  // e, or the newest epoch of this node's own history if that is higher.
  Epoch WithOwnEpochs(Epoch e) const;
  // seen_epoch_, or the one before a provisional fence (FenceEpoch).
  Epoch announced_seen_epoch() const;
  // A frame of epoch e arrived: above the seen epoch, it is saved durably
  // (SaveSeenEpoch, docs/wal_format.md §8.5) before anyone acts on it.
  Status SeeEpoch(Epoch e, const std::string& from);
  void StartReceiver(const HostPort& primary);
  // A primary's listener and senders (TLS, fencing, the sync gate), started.
  Result<std::unique_ptr<repl::ReplPrimary>> StartPrimary();
  // Stops the primary's listener and senders, if any, and drops the
  // engine's acknowledgement gate: every write it holds fails with `why`.
  void LeavePrimaryRole(const Status& why);
  Status RewindLog(Lsn fork, Lsn last);

  uv_loop_t* loop_;
  ReplicationConfig config_;
  std::string wal_dir_;
  std::string name_;
  std::string snapshot_dir_;
  Env* env_ = nullptr;
  Engine* engine_ = nullptr;
  repl::WalFeed feed_;
  std::unique_ptr<repl::ReplPrimary> primary_;
  std::unique_ptr<repl::WalReceiver> receiver_;
  std::function<void()> on_acks_changed_;
  std::function<void(Epoch)> on_fenced_by_newer_;
  std::shared_ptr<TlsContext> tls_;  // nullptr: plain TCP (loopback or insecure)
  NodeController* node_ = nullptr;
  Hooks hooks_;
  bool cluster_ = false;        // [cluster]: roles come from the coordinator
  std::optional<std::vector<std::string>> sync_members_;  // see SetSyncMembers
  Epoch seen_epoch_ = 0;        // from frames, durable in <wal>/seen_epoch; see highest_epoch_seen()
  Epoch provisional_fence_ = 0;  // FenceEpoch(e) not yet confirmed or lifted: e, else 0
  Epoch seen_before_fence_ = 0;  // seen_epoch_ before that fence: what frames carry meanwhile
  std::string primary_addr_;    // the primary a replica follows
  // Replaced receivers, stopped; kept as long as this object because a
  // connect they started may still call them back.
  std::vector<std::unique_ptr<repl::WalReceiver>> retired_;
};

}  // namespace kvd::daemon
