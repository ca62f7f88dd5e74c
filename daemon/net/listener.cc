#include "net/listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kvd/fd.h"

namespace kvd::daemon {
namespace {

constexpr int kBacklog = 1024;

Result<sockaddr_un> MakeAddr(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("server.socket: path must be 1.." +
                                   std::to_string(sizeof(addr.sun_path) - 1) + " bytes: " + path);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// Deals with whatever is at path before binding.
Status ClearStalePath(const std::string& path, const sockaddr_un& addr) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno(errno, "stat " + path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Status::Busy(path + " exists and is not a socket; refusing to replace it");
  }
  Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return Status::FromErrno(errno, "socket");
  int r;
  do {
    r = ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (r != 0 && errno == EINTR);
  if (r == 0 || errno == EAGAIN) {
    // EAGAIN: a live listener with a full backlog is still a live listener.
    return Status::Busy("another kvd is serving " + path);
  }
  if (errno != ECONNREFUSED) return Status::FromErrno(errno, "probing existing socket " + path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(errno, "removing stale socket " + path);
  }
  return Status::Ok();
}

}  // namespace

Result<int> BindUnixSocket(const std::string& path, uint32_t mode) {
  KVD_ASSIGN_OR_RETURN(sockaddr_un addr, MakeAddr(path));
  KVD_RETURN_IF_ERROR(ClearStalePath(path, addr));
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Status::FromErrno(errno, "socket");
  // The umask is process-wide, but at this point no other thread creates
  // files (the committer is idle before the first write).
  const mode_t old_mask = ::umask(static_cast<mode_t>(~mode & 0777));
  const int r = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  ::umask(old_mask);
  if (r != 0) {
    if (bind_errno == EADDRINUSE) return Status::Busy("another kvd is serving " + path);
    return Status::FromErrno(bind_errno, "bind " + path);
  }
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
    Status st = Status::FromErrno(errno, "chmod " + path);
    ::unlink(path.c_str());
    return st;
  }
  if (::listen(fd.get(), kBacklog) != 0) {
    Status st = Status::FromErrno(errno, "listen " + path);
    ::unlink(path.c_str());
    return st;
  }
  return fd.release();
}

Status Listener::Open(uv_loop_t* loop, const std::string& path, uint32_t mode, AcceptFn on_accept) {
  on_accept_ = std::move(on_accept);
  path_ = path;
  int fd = -1;
  const int n = sd_listen_fds(1);  // 1: unset LISTEN_* so children do not inherit them
  if (n > 1) return Status::InvalidArgument("systemd passed " + std::to_string(n) + " sockets; kvd takes one");
  if (n == 1) {
    fd = SD_LISTEN_FDS_START;
    if (sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) <= 0) {
      return Status::InvalidArgument("the socket passed by systemd is not a listening Unix stream socket");
    }
    from_systemd_ = true;
  } else {
    KVD_ASSIGN_OR_RETURN(fd, BindUnixSocket(path, mode));
    bound_ = true;
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      dev_ = st.st_dev;
      ino_ = st.st_ino;
    }
  }
  if (!InitPipe(loop, &pipe_, this)) {
    ::close(fd);
    return Status::Internal("uv_pipe_init failed");
  }
  int r = uv_pipe_open(pipe_.get(), fd);
  if (r != 0) {
    ::close(fd);
    return Status::IOError(std::string("uv_pipe_open: ") + uv_strerror(r));
  }
  r = uv_listen(reinterpret_cast<uv_stream_t*>(pipe_.get()), kBacklog, &Listener::OnConnection);
  if (r != 0) return Status::IOError(std::string("uv_listen: ") + uv_strerror(r));
  return Status::Ok();
}

void Listener::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<Listener*>(server->data);
  if (status < 0) return;  // EMFILE and friends: libuv retries on the next readiness
  self->on_accept_(server);
}

void Listener::Close() {
  pipe_.reset();  // closes the fd
  if (bound_) {
    bound_ = false;
    // Only remove the file if it is still the socket we bound (a successor
    // may have replaced it after we stopped answering).
    struct stat st;
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
      ::unlink(path_.c_str());
    }
  }
}

}  // namespace kvd::daemon
