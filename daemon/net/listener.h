// Listener: the Unix-domain listening socket.
//
// Socket activation: when systemd passes a socket (LISTEN_PID/LISTEN_FDS,
// sd_listen_fds) kvd serves it as is and never unlinks it. Otherwise kvd
// binds `path` itself: an existing socket file is probed with connect(2) —
// a live server answering means another kvd serves it (refuse to start);
// ECONNREFUSED means a stale file left by a crash (unlink, then bind). A
// path that exists but is not a socket is never removed. The socket gets
// `mode` (bound under a matching umask, so it is never more open than
// asked), and the file is removed on Close() if it is still ours.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include "kvd/status.h"
#include "net/uv_handle.h"

namespace kvd::daemon {

class Listener {
 public:
  // Called for each pending connection; the callee must uv_accept it.
  using AcceptFn = std::function<void(uv_stream_t* server)>;

  Listener() = default;
  ~Listener() { Close(); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Takes the systemd socket or binds path; then listens.
  Status Open(uv_loop_t* loop, const std::string& path, uint32_t mode, AcceptFn on_accept);
  // Stops accepting and removes the socket file if kvd created it.
  void Close();

  bool from_systemd() const { return from_systemd_; }
  const std::string& path() const { return path_; }

 private:
  static void OnConnection(uv_stream_t* server, int status);

  std::string path_;
  bool from_systemd_ = false;
  bool bound_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  AcceptFn on_accept_;
  UvHandle<uv_pipe_t> pipe_;
};

// Exposed for tests: binds a listening Unix socket at path after the stale
// check described above. Returns the fd.
Result<int> BindUnixSocket(const std::string& path, uint32_t mode);

}  // namespace kvd::daemon
