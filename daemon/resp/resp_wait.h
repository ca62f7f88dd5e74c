// RespWaits: Redis's WAIT numreplicas timeout (docs/resp.md). The answer is
// the number of replicas whose durable LSN (reported after their
// fdatasync) covers the connection's last write, given as soon as
// numreplicas of them do, or when the timeout passes with the count then.
// timeout 0 means "no timeout" in Redis; kvd caps every WAIT at kMaxWait.
//
// WAIT is a barrier, so every earlier request of the connection has
// completed when it is evaluated: its last write's LSN is known. A waiting
// WAIT holds a reply slot; it is completed from a replica's ACK
// (ReplicaAcks::SetOnAcksChanged) or from a timer at its deadline. A client
// that left is not found and its waiter is dropped.
//
// Threading: the loop thread only.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "kvd/types.h"
#include "net/uv_handle.h"
#include "node/replica_acks.h"
#include "serve/dispatcher.h"

namespace kvd::daemon {

class RespWaits {
 public:
  static constexpr auto kMaxWait = std::chrono::seconds(60);

  RespWaits(uv_loop_t* loop, DispatchHost* host, ReplicaAcks* acks);
  ~RespWaits();
  RespWaits(const RespWaits&) = delete;
  RespWaits& operator=(const RespWaits&) = delete;

  ReplicaAcks* acks() const { return acks_; }
  // A WAIT whose answer is not there yet: slot `seq` of session `session`
  // (pushed by the caller) is completed with ":N" later. protocol: 2 or 3.
  void Add(uint64_t session, uint64_t seq, Lsn lsn, uint32_t numreplicas, std::chrono::milliseconds timeout,
           int protocol);
  void DropSession(uint64_t session);
  size_t size() const { return waiters_.size(); }

 private:
  struct Waiter {
    uint64_t session;
    uint64_t seq;
    Lsn lsn;
    uint32_t numreplicas;
    std::chrono::steady_clock::time_point deadline;
    int protocol;
  };
  static void OnTimer(uv_timer_t* t);
  // Answers every waiter that has its replicas or whose deadline passed.
  void Check(std::chrono::steady_clock::time_point now);
  void Answer(const Waiter& w, uint32_t count);
  void Rearm();

  DispatchHost* host_;
  ReplicaAcks* acks_;
  UvHandle<uv_timer_t> timer_;
  std::vector<Waiter> waiters_;
};

}  // namespace kvd::daemon
