// Which Unix socket kvctl talks to.
//
// Order, first match wins (flags, then the environment, then defaults):
//   1. --socket PATH
//   2. --config FILE: its [server] socket (kvd's default when the key is absent);
//      an unreadable or broken FILE is an error
//   3. the KVD_SOCKET environment variable
//   4. /etc/kvd/kvd.toml's [server] socket, if that file is readable
//   5. /run/kvd/kvd.sock
// A relative socket path is used as written, i.e. relative to the current
// directory (not to the config file), as kvd itself does.
#pragma once

#include <optional>
#include <string>

#include "kvd/status.h"

namespace kvctl {

inline constexpr const char* kDefaultConfigPath = "/etc/kvd/kvd.toml";
inline constexpr const char* kDefaultSocketPath = "/run/kvd/kvd.sock";

struct SocketSources {
  std::optional<std::string> env;          // KVD_SOCKET
  std::optional<std::string> socket_flag;  // --socket
  std::optional<std::string> config_flag;  // --config
  std::string default_config = kDefaultConfigPath;
};

// Fills env from the real environment.
SocketSources SocketSourcesFromEnv();

kvd::Result<std::string> ResolveSocket(const SocketSources& sources);

// The [server] socket of a TOML file: nullopt when the key is absent;
// kInvalidArgument when the file cannot be read or parsed, or socket is not
// a string.
kvd::Result<std::optional<std::string>> ReadSocketFromConfig(const std::string& path);

}  // namespace kvctl
