// ReplPrimary: the primary's replication room. It listens on
// [replication] listen (TCP through net/, mutual TLS if configured), runs a
// WalSender per connected replica, feeds them from the WalFeed, and holds
// the engine's WAL retention floor at the oldest LSN a known replica still
// needs, also while it is disconnected, until the retained WAL passes
// max_retained_wal (then the most lagging absent replica is dropped, logged).
//
// Threading: loop thread only.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "kvd/engine.h"
#include "metrics/replication_metrics.h"
#include "net/tcp_listener.h"
#include "repl/sync_gate.h"
#include "net/tls_context.h"
#include "repl/repl_counters.h"
#include "repl/wal_feed.h"
#include "repl/wal_sender.h"

namespace kvd::daemon::repl {

class ReplPrimary {
 public:
  // `tls`: every replica's link is mutual TLS with it; nullptr = plain.
  ReplPrimary(uv_loop_t* loop, const ReplicationConfig& config, std::string node_name, std::string wal_dir,
              std::shared_ptr<const TlsContext> tls = nullptr);
  ~ReplPrimary();
  Status Start(Engine* engine, WalFeed* feed);
  void Stop();
  // New records or a new durable LSN in the feed.
  void OnFeedUpdate();
  uint16_t port() const { return listener_.port(); }
  nlohmann::json StatusJson();
  // The primary's part of the replication metrics.
  void FillMetrics(ReplicationMetrics* m);

  // Synchronous replication (sync_gate.h): after Start. poll_engine makes
  // the owner call Engine::Poll soon.
  Status StartSync(std::function<void()> poll_engine);
  Status ConfigureSync(uint32_t sync_replicas, std::chrono::milliseconds timeout);
  // Only these replicas' ACKs count (the cluster's published sync set).
  void SetSyncEligible(std::optional<std::vector<std::string>> names) {
    if (sync_) sync_->SetEligible(std::move(names));
  }
  // The read barrier (SyncGate::ReadWait / ReadFailure).
  std::optional<std::chrono::milliseconds> SyncReadWait() const {
    return sync_ ? sync_->ReadWait() : std::nullopt;
  }
  Status SyncReadFailure() const {
    return sync_ ? sync_->ReadFailure() : Status::IOError("not enough synchronous replicas");
  }
  // The newest heartbeat send time (PrimaryClockUs, µs) that `name` echoed
  // in an ACK on a live link; 0 if none.
  uint64_t EchoSentAtUs(const std::string& name);
  // The replicas past the handshake and their durable LSNs.
  std::vector<SyncGate::Replica> Connected() { return ConnectedReplicas(); }
  // Connected replicas whose durable LSN is >= lsn (RESP WAIT).
  uint32_t CountDurable(Lsn lsn);
  // Runs after any replica's durable LSN may have changed (one listener).
  void set_on_progress(std::function<void()> fn) { on_progress_ = std::move(fn); }
  // Called when a replica shows a newer epoch (the owner fences writes).
  void set_on_newer_epoch(std::function<void(Epoch, const std::string&)> fn) { on_newer_epoch_ = std::move(fn); }
  // A newer epoch fenced this node: every replica's link closes with `why`,
  // and every HELLO from now on is refused with it (an old primary feeds
  // nobody). Not undone: a new role makes a new ReplPrimary.
  void FenceAsOldPrimary(const Status& why) {
    old_primary_ = why;
    for (auto& s : senders_) s->Close(why);
  }
  bool fenced_as_old_primary() const { return !old_primary_.ok(); }

 private:
  static void OnTimer(uv_timer_t* t);
  void OnAccept(uv_stream_t* server);
  void Reap();
  void UpdateRetention();
  void OnSenderProgress();
  std::vector<SyncGate::Replica> ConnectedReplicas();

  uv_loop_t* loop_;
  ReplicationConfig config_;
  std::string node_name_;
  std::string wal_dir_;
  std::shared_ptr<const TlsContext> tls_;
  Engine* engine_ = nullptr;
  WalFeed* feed_ = nullptr;
  TcpListener listener_;
  UvHandle<uv_timer_t> timer_;
  std::vector<std::unique_ptr<WalSender>> senders_;
  // The durable LSN of every replica seen since start, by name: the floor
  // keeps their WAL while they reconnect.
  std::map<std::string, Lsn> known_;
  Lsn floor_ = 0;
  std::unique_ptr<SyncGate> sync_;
  std::function<void()> on_progress_;
  ReplCounters counters_;  // every sender adds to it
  std::function<void(Epoch, const std::string&)> on_newer_epoch_;
  Status old_primary_;  // see FenceAsOldPrimary; OK until then
};

}  // namespace kvd::daemon::repl
