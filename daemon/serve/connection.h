// Connection: the libuv side of one client — its stream (a Unix or TCP
// socket, net/stream.h), reads through the stream filter into the Session's
// input buffer, one uv_write at a time of everything queued.
//
// Lifetime: owned by the Server's table while open. Closing removes it from
// the table (so engine completions for it are dropped: they look sessions up
// by id) and hands ownership to the handle; the object is deleted in the
// uv_close callback, which libuv runs after any in-flight write callback
// (UV_ECANCELED), so the uv_write_t and its buffer outlive the write.
//
// Threading: loop thread only.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>

#include "net/stream.h"
#include "net/stream_filter.h"
#include "serve/codec.h"
#include "serve/server_stats.h"
#include "serve/session.h"

namespace kvd::daemon {

class Connection;

class ConnectionHost {
 public:
  virtual ~ConnectionHost() = default;
  // Schedule Flush() for this connection before the loop next sleeps.
  virtual void MarkDirty(Connection* c) = 0;
  // Remove from the table and close (the host calls StartClose()).
  virtual void RequestClose(Connection* c) = 0;
};

class Connection {
 public:
  // filter: nullptr for the shared pass-through filter.
  Connection(uint64_t id, RequestHandler* handler, Session::Limits limits, std::unique_ptr<Codec> codec,
             ConnectionHost* host, ServerCounters* counters, StreamFilter* filter = nullptr);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Initialises the stream on loop and accepts from server (Unix or TCP,
  // whatever server listens on); false on failure
  // (then the object may be deleted directly: call StartClose anyway).
  bool Accept(uv_loop_t* loop, uv_stream_t* server);
  // Processes queued requests, sends queued replies, adjusts reading, and
  // asks the host to close when finished. Called from the prepare phase.
  void Flush();
  // Stop taking new requests (shutdown); what was read is still answered.
  void StopReading();
  // Begins uv_close; `delete this` happens in the close callback. The caller
  // must have released ownership.
  void StartClose();

  uint64_t id() const { return session_.id(); }
  Session& session() { return session_; }
  const Session& session() const { return session_; }
  std::chrono::steady_clock::time_point last_activity() const { return last_activity_; }
  bool dirty = false;  // queued in the host's dirty list

 private:
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void OnWrite(uv_write_t* req, int status);
  void UpdateReading();
  uv_stream_t* stream() { return socket_.stream(); }

  Session session_;
  ConnectionHost* host_;
  ServerCounters* counters_;
  StreamFilter* filter_;
  StreamSocket socket_;
  uv_write_t write_req_{};
  std::span<char> read_space_;  // the input buffer's space offered to the last read
  bool reading_ = false;
  bool peer_eof_ = false;     // the client shut down its sending side
  bool stop_reading_ = false; // shutdown: no new requests
  bool failed_ = false;       // socket error: close without sending more
  std::chrono::steady_clock::time_point last_activity_;
};

// Sends one error reply (protocol's refusal) on a just-accepted socket and
// closes it (over max_connections, or shutting down). Never blocks: a new
// socket's buffer has room for one small reply.
void RefuseConnection(uv_loop_t* loop, uv_stream_t* server, const Protocol& protocol, Code code,
                      std::string_view message);

}  // namespace kvd::daemon
