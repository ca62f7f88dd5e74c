// Who is on the other end of an accepted socket, for logs: the process
// credentials of a Unix-socket client (SO_PEERCRED, as the kernel recorded
// them at connect time: the client cannot forge them) or a TCP client's
// address.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

namespace kvd::daemon {

struct Peer {
  bool has_credentials = false;  // Unix socket: pid/uid/gid are valid
  int64_t pid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string address;  // TCP: "127.0.0.1:40312"; empty for Unix sockets
  // "pid 1234 uid 1000", "tcp 127.0.0.1:40312", or "unknown peer".
  std::string Describe() const;
};

// Reads the peer of an accepted stream (a pipe or a TCP handle).
Peer PeerOf(uv_stream_t* stream);

}  // namespace kvd::daemon
