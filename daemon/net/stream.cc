#include "net/stream.h"

namespace kvd::daemon {

int StreamSocket::Accept(uv_loop_t* loop, uv_stream_t* server) {
  int r = server->type == UV_TCP ? uv_tcp_init(loop, &u_.tcp) : uv_pipe_init(loop, &u_.pipe, 0);
  if (r != 0) return r;
  initialised_ = true;
  r = uv_accept(server, stream());
  if (r != 0) return r;
  if (server->type == UV_TCP) (void)uv_tcp_nodelay(&u_.tcp, 1);
  return 0;
}

}  // namespace kvd::daemon
