// HOST:PORT as written in kvd.toml ([replication] listen / primary).
//
// HOST is an IPv4 literal, an IPv6 literal in brackets ("[::1]:7001") or
// "localhost" (taken as 127.0.0.1): kvd resolves no names, so a replica set
// never depends on DNS at start-up.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kvd/status.h"

namespace kvd::daemon {

struct HostPort {
  std::string host;  // a literal uv_ip4_addr / uv_ip6_addr accept (no brackets)
  uint16_t port = 0;
  std::string ToString() const;  // "127.0.0.1:7001", "[::1]:7001"
};

// kInvalidArgument saying what is wrong. Port 0 is allowed only if allow_port0.
Result<HostPort> ParseHostPort(std::string_view text, bool allow_port0 = false);
// 127.0.0.0/8 or ::1.
bool IsLoopback(const HostPort& hp);

}  // namespace kvd::daemon
