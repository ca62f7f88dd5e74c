// The transport seam: one accepted client socket, Unix-domain or TCP, seen
// by the connection as a uv_stream_t. Whatever listener accepted it, the
// connection reads, writes and closes it the same way.
//
// Lifetime: the handle lives inside its owner (the connection) and may only
// be freed in its close callback (uv_close), like every libuv handle.
#pragma once

#include <uv.h>

namespace kvd::daemon {

class StreamSocket {
 public:
  // Initialises the handle as the kind of stream `server` listens for and
  // accepts the pending connection into it. TCP sockets get TCP_NODELAY
  // (replies are whole and small: never wait for Nagle). Returns a libuv
  // error (< 0) on failure; initialised() tells whether uv_close is needed.
  int Accept(uv_loop_t* loop, uv_stream_t* server);
  bool initialised() const { return initialised_; }

  uv_stream_t* stream() { return &u_.stream; }
  uv_handle_t* handle() { return &u_.handle; }

 private:
  union Handle {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_pipe_t pipe;
    uv_tcp_t tcp;
  };
  Handle u_{};
  bool initialised_ = false;
};

}  // namespace kvd::daemon
