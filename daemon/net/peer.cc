#include "net/peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace kvd::daemon {

std::string Peer::Describe() const {
  if (has_credentials) return "pid " + std::to_string(pid) + " uid " + std::to_string(uid);
  if (!address.empty()) return "tcp " + address;
  return "unknown peer";
}

Peer PeerOf(uv_stream_t* stream) {
  Peer p;
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(stream), &fd) != 0 || fd < 0) return p;
  if (stream->type == UV_NAMED_PIPE) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred)) {
      p.has_credentials = true;
      p.pid = cred.pid;
      p.uid = cred.uid;
      p.gid = cred.gid;
    }
    return p;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return p;
  char host[INET6_ADDRSTRLEN] = {};
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
    p.address = std::string(host) + ":" + std::to_string(port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    port = ntohs(in6->sin6_port);
    p.address = "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return p;
}

}  // namespace kvd::daemon
