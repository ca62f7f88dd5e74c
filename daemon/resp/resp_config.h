// The [resp] table's rules beyond single keys (docs/resp.md §1): `listen` is
// HOST:PORT, and a TCP listener outside loopback needs a password (AUTH), so
// that turning RESP on never exposes the data to the network by accident.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "kvd/status.h"
#include "net/host_port.h"

namespace kvd::daemon {

inline bool RespEnabled(const Config& c) { return !c.resp_socket.empty() || !c.resp_listen.empty(); }
// kInvalidArgument naming the keys when [resp] is inconsistent.
Status CheckRespConfig(const Config& c);
// The AUTH password: resp.password, or the first line of resp.password_file.
Result<std::string> LoadRespPassword(const Config& c);

}  // namespace kvd::daemon
