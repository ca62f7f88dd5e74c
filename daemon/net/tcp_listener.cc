#include "net/tcp_listener.h"

#include <netinet/in.h>

namespace kvd::daemon {
namespace {

constexpr int kBacklog = 1024;

Status UvError(const std::string& what, int r) { return Status::IOError(what + ": " + uv_strerror(r)); }

}  // namespace

Status TcpListener::Open(uv_loop_t* loop, const std::string& host, uint16_t port, AcceptFn on_accept) {
  on_accept_ = std::move(on_accept);
  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return Status::InvalidArgument("not an IPv4 or IPv6 address: " + host);
  }
  if (!InitTcp(loop, &tcp_, this)) return Status::Internal("uv_tcp_init failed");
  int r = uv_tcp_bind(tcp_.get(), reinterpret_cast<const sockaddr*>(&addr), 0);
  if (r != 0) {
    Close();
    return UvError("bind " + host + ":" + std::to_string(port), r);
  }
  r = uv_listen(reinterpret_cast<uv_stream_t*>(tcp_.get()), kBacklog, &TcpListener::OnConnection);
  if (r != 0) {
    Close();
    return UvError("listen " + host + ":" + std::to_string(port), r);
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  r = uv_tcp_getsockname(tcp_.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  if (r != 0) {
    Close();
    return UvError("getsockname", r);
  }
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return Status::Ok();
}

void TcpListener::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<TcpListener*>(server->data);
  if (status < 0) return;  // EMFILE and friends: libuv retries on the next readiness
  self->on_accept_(server);
}

}  // namespace kvd::daemon
