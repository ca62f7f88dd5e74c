#include "resp/resp_config.h"

#include <fstream>

namespace kvd::daemon {

Status CheckRespConfig(const Config& c) {
  if (!c.resp_password.empty() && !c.resp_password_file.empty()) {
    return Status::InvalidArgument("resp.password and resp.password_file: set one of them, not both");
  }
  if (!c.resp_socket.empty() && c.resp_socket == c.socket) {
    return Status::InvalidArgument("resp.socket and server.socket are both \"" + c.socket +
                                   "\": the Redis protocol needs a socket of its own");
  }
  if (c.resp_listen.empty()) return Status::Ok();
  Result<HostPort> hp = ParseHostPort(c.resp_listen, /*allow_port0=*/true);
  if (!hp.has_value()) return Status::InvalidArgument("resp.listen: " + hp.error().message());
  if (!IsLoopback(*hp) && c.resp_password.empty() && c.resp_password_file.empty()) {
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
