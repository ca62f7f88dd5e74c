// SyncGate: synchronous replication on the primary (docs/replication.md §6).
//
// The engine's acknowledgement gate holds every write until the local
// fdatasync and an external watermark both cover it. SyncGate supplies that
// watermark: the N-th highest durable LSN among the connected replicas
// (N = sync_replicas), raised as their ACKs arrive, so one ACK releases
// every write it covers (group commit carries over to replication). A
// replica's durable LSN is what it reported after its own fdatasync.
//
// With fewer than N replicas connected the watermark stops. A write that
// has waited sync_timeout since it was written fails with kIOError "not
// enough synchronous replicas (have 0 of 1)" (or, with enough connected but
// too slow, "... did not confirm within ..."). It is never acknowledged as
// asynchronous. Such a write is durable and applied here all the same; only
// its acknowledgement failed (as for any reply lost, a client must read).
//
// Timing: the gate notes (last LSN, time) whenever the WalFeed reports new
// records, coalescing notes less than 1 ms apart (a write may fail up to
// 1 ms early). While notes beyond the watermark exist a 10 ms timer fails
// the writes of every note that is sync_timeout old.
//
// Run-time changes (SIGHUP, CONFIG SET): Configure. Raising N from 0 turns
// the gate on and makes writes already waiting wait for it; lowering N to 0
// turns it off and acknowledges the writes it held (an operator's decision,
// logged).
//
// Threading: loop thread only.
#pragma once

#include <uv.h>

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kvd/engine.h"
#include "net/uv_handle.h"

namespace kvd::daemon::repl {

class SyncGate {
 public:
  struct Replica {
    std::string name;
    Lsn durable_lsn = 0;
  };
  // The N-th highest durable LSN among `replicas`, a name listed twice (a
  // replica that reconnected) counted once with its highest; 0 when n is 0
  // or fewer than n distinct replicas are listed. *counting (if not null)
  // gets the names of the n replicas counted, most advanced first.
  static Lsn Watermark(std::span<const Replica> replicas, uint32_t n, std::vector<std::string>* counting);

  // poll_engine: makes the owner call Engine::Poll soon (the engine reports
  // what the watermark released or the gate failed only there).
  SyncGate(uv_loop_t* loop, std::function<void()> poll_engine);
  ~SyncGate() { Stop(); }
  SyncGate(const SyncGate&) = delete;
  SyncGate& operator=(const SyncGate&) = delete;

  // kUnsupported from an engine that cannot gate (with sync_replicas > 0).
  Status Start(Engine* engine, uint32_t sync_replicas, std::chrono::milliseconds timeout);
  Status Configure(uint32_t sync_replicas, std::chrono::milliseconds timeout);
  // Shutdown, after Engine::Close: stops the timer, never touches the engine.
  void Stop();

  // Records up to `last` were written here: their wait starts now.
  void OnWritten(Lsn last);
  // The connected replicas (past the handshake) and their durable LSNs, after
  // any ACK, connect or disconnect.
  void Update(std::vector<Replica> replicas);

  // The cluster's published sync set (docs/cluster.md §3.2): when set, only
  // replicas named in it count towards the watermark; nullopt: every
  // connected replica counts (no cluster).
  void SetEligible(std::optional<std::vector<std::string>> names);

  uint32_t sync_replicas() const { return n_; }
  // The read barrier (docs/replication.md §6): while sync_replicas >= 1 a
  // read's reply waits until the watermark covers what it saw, at most
  // sync_timeout; nullopt when reads need not wait. ReadFailure: why such a
  // read fails (the writes' error, worded for a read).
  std::optional<std::chrono::milliseconds> ReadWait() const {
    return n_ > 0 ? std::optional<std::chrono::milliseconds>(timeout_) : std::nullopt;
  }
  Status ReadFailure() const { return Why(/*read=*/true); }
  // {sync_replicas, sync_timeout_ms, watermark, connected, counting[], ...}
  nlohmann::json StatusJson() const;

 private:
  struct Mark {
    Lsn lsn;
    std::chrono::steady_clock::time_point at;
  };
  static void OnTimer(uv_timer_t* t);
  void Recompute();
  void Expire(std::chrono::steady_clock::time_point now);
  void ArmTimer();
  Status Why(bool read = false) const;

  uv_loop_t* loop_;
  std::function<void()> poll_engine_;
  Engine* engine_ = nullptr;
  UvHandle<uv_timer_t> timer_;
  bool timer_active_ = false;
  uint32_t n_ = 0;
  std::chrono::milliseconds timeout_{5000};
  std::vector<Replica> replicas_;      // as last Update gave them (eligible ones only)
  std::vector<Replica> all_replicas_;  // as last Update gave them
  std::optional<std::vector<std::string>> eligible_;
  std::vector<std::string> counting_;  // the n replicas the watermark counts
  size_t connected_ = 0;               // distinct names in replicas_
  Lsn watermark_ = 0;                  // the highest given to the engine
  std::deque<Mark> marks_;             // LSN order; those beyond watermark_
  uint64_t timeouts_ = 0;              // notes expired: groups of writes failed by sync_timeout
  std::chrono::steady_clock::time_point last_log_{};
};

}  // namespace kvd::daemon::repl
