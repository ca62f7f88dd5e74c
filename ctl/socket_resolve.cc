#include "socket_resolve.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <toml.hpp>

namespace kvctl {

SocketSources SocketSourcesFromEnv() {
  SocketSources s;
  if (const char* env = std::getenv("KVD_SOCKET"); env != nullptr && *env != '\0') s.env = env;
  return s;
}

kvd::Result<std::optional<std::string>> ReadSocketFromConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return kvd::Status::InvalidArgument("cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  // toml11 reports errors by exception; they stop here.
  try {
    std::istringstream stream(text.str());
    const toml::value root = toml::parse(stream, path);
    if (!root.is_table() || !root.contains("server")) return std::optional<std::string>();
    const toml::value& server = root.at("server");
    if (!server.is_table() || !server.contains("socket")) return std::optional<std::string>();
    const toml::value& socket = server.at("socket");
    if (!socket.is_string()) {
      return kvd::Status::InvalidArgument(path + ": server.socket must be a string");
    }
    return std::optional<std::string>(socket.as_string().str);
  } catch (const std::exception& e) {
    return kvd::Status::InvalidArgument(std::string(e.what()));
  }
}

kvd::Result<std::string> ResolveSocket(const SocketSources& sources) {
  if (sources.socket_flag) return *sources.socket_flag;
  if (sources.config_flag) {
    KVD_ASSIGN_OR_RETURN(auto socket, ReadSocketFromConfig(*sources.config_flag));
    return socket.value_or(kDefaultSocketPath);
  }
  if (sources.env) return *sources.env;
  if (!sources.default_config.empty() && ::access(sources.default_config.c_str(), R_OK) == 0) {
    auto socket = ReadSocketFromConfig(sources.default_config);
    // A broken system file is the daemon's problem; fall back quietly.
    if (socket.has_value() && socket->has_value()) return **socket;
  }
  return std::string(kDefaultSocketPath);
}

}  // namespace kvctl
