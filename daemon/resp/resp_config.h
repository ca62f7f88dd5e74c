// The [resp] table's rules beyond single keys (docs/resp.md §1): `listen` is
// HOST:PORT, and a TCP listener outside loopback needs a password (AUTH), so
// that turning RESP on never exposes the data to the network by accident.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "kvd/status.h"

namespace kvd::daemon {

struct HostPort {
  std::string host;  // an IPv4 or IPv6 literal, without brackets
  uint16_t port = 0;
};
// "127.0.0.1:6380", "[::1]:6380", "localhost:6380" (localhost means 127.0.0.1).
Result<HostPort> ParseHostPort(std::string_view text);
// 127.0.0.0/8 and ::1.
bool IsLoopbackHost(std::string_view host);
inline bool RespEnabled(const Config& c) { return !c.resp_socket.empty() || !c.resp_listen.empty(); }
// kInvalidArgument naming the keys when [resp] is inconsistent.
Status CheckRespConfig(const Config& c);
// The AUTH password: resp.password, or the first line of resp.password_file.
Result<std::string> LoadRespPassword(const Config& c);

}  // namespace kvd::daemon
