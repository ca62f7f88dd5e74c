#include "resp/resp_config.h"

#include <arpa/inet.h>

#include <charconv>
#include <fstream>

namespace kvd::daemon {

Result<HostPort> ParseHostPort(std::string_view text) {
  HostPort hp;
  std::string_view host, port;
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::InvalidArgument("expected [IPV6]:PORT, got \"" + std::string(text) + "\"");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return Status::InvalidArgument("expected HOST:PORT, got \"" + std::string(text) + "\"");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  hp.host = host == "localhost" ? "127.0.0.1" : std::string(host);
  unsigned char buf[16];
  if (inet_pton(AF_INET, hp.host.c_str(), buf) != 1 && inet_pton(AF_INET6, hp.host.c_str(), buf) != 1) {
    return Status::InvalidArgument("\"" + std::string(host) + "\" is not an IP address");
  }
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), hp.port);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size()) {
    return Status::InvalidArgument("\"" + std::string(port) + "\" is not a port (0 .. 65535)");
  }
  return hp;
}

bool IsLoopbackHost(std::string_view host) {
  std::string h(host);
  unsigned char v4[4];
  if (inet_pton(AF_INET, h.c_str(), v4) == 1) return v4[0] == 127;
  unsigned char v6[16];
  if (inet_pton(AF_INET6, h.c_str(), v6) != 1) return false;
  for (int i = 0; i < 15; ++i) {
    if (v6[i] != 0) return false;
  }
  return v6[15] == 1;
}

Status CheckRespConfig(const Config& c) {
  if (!c.resp_password.empty() && !c.resp_password_file.empty()) {
    return Status::InvalidArgument("resp.password and resp.password_file: set one of them, not both");
  }
  if (!c.resp_socket.empty() && c.resp_socket == c.socket) {
    return Status::InvalidArgument("resp.socket and server.socket are both \"" + c.socket +
                                   "\": the Redis protocol needs a socket of its own");
  }
  if (c.resp_listen.empty()) return Status::Ok();
  Result<HostPort> hp = ParseHostPort(c.resp_listen);
  if (!hp.has_value()) return Status::InvalidArgument("resp.listen: " + hp.error().message());
  if (!IsLoopbackHost(hp->host) && c.resp_password.empty() && c.resp_password_file.empty()) {
    return Status::InvalidArgument("resp.listen = \"" + c.resp_listen +
                                   "\" is reachable from other machines: set resp.password or "
                                   "resp.password_file (clients then AUTH), or listen on 127.0.0.1");
  }
  return Status::Ok();
}

Result<std::string> LoadRespPassword(const Config& c) {
  if (c.resp_password_file.empty()) return c.resp_password;
  std::ifstream in(c.resp_password_file);
  if (!in) return Status::InvalidArgument("resp.password_file: cannot read " + c.resp_password_file);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  if (line.empty()) return Status::InvalidArgument("resp.password_file: " + c.resp_password_file + " is empty");
  return line;
}

}  // namespace kvd::daemon
