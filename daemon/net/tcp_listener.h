// TcpListener: a listening TCP socket, the second transport beside the Unix
// socket (net/listener.h). Accepted connections are uv_streams like the Unix
// ones (net/stream.h), so the same front end, codec and session serve them.
//
// The front end can listen on TCP (tests do, on loopback); [replication]
// listen and [resp] listen use it, replication with TLS in the link's
// stream filter (net/tls_filter.h).
//
// Threading: loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "kvd/status.h"
#include "net/uv_handle.h"

namespace kvd::daemon {

class TcpListener {
 public:
  // Called for each pending connection; the callee must uv_accept it.
  using AcceptFn = std::function<void(uv_stream_t* server)>;

  TcpListener() = default;
  ~TcpListener() { Close(); }
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  // Binds host (an IPv4 or IPv6 literal) and port (0: an ephemeral port,
  // read back with port()) and listens.
  Status Open(uv_loop_t* loop, const std::string& host, uint16_t port, AcceptFn on_accept);
  void Close() { tcp_.reset(); }

  bool open() const { return static_cast<bool>(tcp_); }
  uint16_t port() const { return port_; }

 private:
  static void OnConnection(uv_stream_t* server, int status);

  AcceptFn on_accept_;
  uint16_t port_ = 0;
  UvHandle<uv_tcp_t> tcp_;
};

}  // namespace kvd::daemon
