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
// Threading: loop thread only (the feed's observer calls excepted).
#pragma once

#include <memory>
#include <string>

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

  // ReplicaAcks (RESP WAIT)
  uint32_t CountDurable(Lsn lsn) override { return primary_ ? primary_->CountDurable(lsn) : 0; }
  bool IsReplica() const override { return receiver_ != nullptr; }
  void SetOnAcksChanged(std::function<void()> fn) override;
  // The Env a replica writes transferred snapshots through (the engine's).
  void set_env(Env* env) { env_ = env; }

 private:
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
};

}  // namespace kvd::daemon
