// FrontEnd: one protocol's serving side — its listeners (a Unix socket,
// optionally TCP), its codec factory (Protocol) and its table of open
// connections. Every connection of a front end decodes with that protocol's
// codec and hands neutral commands to the same handler (the dispatcher).
//
// Connection ids come from a counter shared by all front ends, so the
// dispatcher can find any session by id (FindSession).
//
// Replies are written from the prepare phase (FlushDirty, like Redis's
// beforeSleep): all replies a connection earned during one loop iteration
// leave in one write.
//
// Threading: loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/listener.h"
#include "net/tcp_listener.h"
#include "serve/codec.h"
#include "serve/connection.h"
#include "serve/server_stats.h"

namespace kvd::daemon {

class FrontEnd : public ConnectionHost {
 public:
  struct Options {
    Session::Limits session;
    uint64_t max_connections = 1024;
  };
  FrontEnd(uv_loop_t* loop, std::unique_ptr<Protocol> protocol, RequestHandler* handler, ServerCounters* counters,
           uint64_t* next_conn_id, Options options);
  ~FrontEnd() override { CloseAll(); }
  FrontEnd(const FrontEnd&) = delete;
  FrontEnd& operator=(const FrontEnd&) = delete;

  // Takes the systemd socket or binds path (net/listener.h).
  Status ListenUnix(const std::string& path, uint32_t mode);
  // Listens on TCP too (port 0: ephemeral, see tcp_port()).
  Status ListenTcp(const std::string& host, uint16_t port);
  bool socket_from_systemd() const { return unix_.from_systemd(); }
  uint16_t tcp_port() const { return tcp_.port(); }
  const Protocol& protocol() const { return *protocol_; }

  // Shutdown: close the listeners, refuse what is still pending with
  // kShuttingDown, stop reading (what was read is still answered).
  void BeginDrain();
  void StopListening();
  // Schedule every connection for a flush (after a change they must see).
  void MarkAllDirty();
  void FlushDirty();
  // Every session idle (nothing read left unanswered) / quiescent (all sent).
  bool AllIdle() const;
  bool AllQuiescent() const;
  // Closes connections idle for idle_timeout; returns how many.
  size_t CloseIdle(std::chrono::steady_clock::time_point now, std::chrono::milliseconds idle_timeout);
  void CloseAll();

  Session* FindSession(uint64_t id);
  void SessionReady(Session* s);
  size_t size() const { return conns_.size(); }
  // Reply bytes held for clients: the sum and the largest (for STATUS).
  void ReplyBytes(uint64_t* total, uint64_t* largest) const;

  // ConnectionHost
  void MarkDirty(Connection* c) override;
  void RequestClose(Connection* c) override;

 private:
  void OnAccept(uv_stream_t* server);

  uv_loop_t* loop_;
  std::unique_ptr<Protocol> protocol_;
  RequestHandler* handler_;
  ServerCounters* counters_;
  uint64_t* next_conn_id_;
  Options options_;
  bool draining_ = false;
  Listener unix_;
  TcpListener tcp_;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::vector<uint64_t> dirty_;
};

}  // namespace kvd::daemon
