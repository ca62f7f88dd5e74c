// RespService: the optional RESP front end ([resp] in kvd.toml,
// docs/resp.md), as one part the Server composes: a FrontEnd of its own
// (Unix socket and/or TCP listener, RESP codecs, its own connections) whose
// requests go to a RespHandler in front of the shared Dispatcher.
//
// Threading: the loop thread only.
#pragma once

#include <memory>

#include "config/config.h"
#include "resp/resp_handler.h"
#include "serve/front_end.h"

namespace kvd::daemon {

class RespService {
 public:
  // Reads the password (resp.password_file) and turns on the dispatcher's
  // pending-value tracking the conditional writes need.
  static Result<std::unique_ptr<RespService>> Create(uv_loop_t* loop, const Config& config,
                                                      Dispatcher* dispatcher, DispatchHost* host,
                                                      ServerCounters* counters, uint64_t* next_conn_id,
                                                      FrontEnd::Options options);
  // Opens resp.socket and resp.listen.
  Status Listen(const Config& config);

  // RESP WAIT counts replicas through acks (replication, or nothing).
  void EnableWait(uv_loop_t* loop, ReplicaAcks* acks) { handler_.EnableWait(loop, acks); }
  // Shutdown: WAITs still waiting are dropped with their connections.
  void StopWait() { handler_.StopWait(); }

  FrontEnd& front_end() { return *front_end_; }
  uint16_t tcp_port() const { return front_end_->tcp_port(); }

 private:
  RespService(Dispatcher* dispatcher, DispatchHost* host) : handler_(dispatcher, host) {}

  RespHandler handler_;
  std::unique_ptr<FrontEnd> front_end_;
};

}  // namespace kvd::daemon
