// Opening a connection with an error message that says what to check.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "kvd/client.h"

namespace kvctl {

// Connects; timeout (0 = none) bounds the connect and every later call on
// the client. Errors are kIOError with one line: a refused or missing socket
// says how kvctl found it, a permission problem names the owner, group and
// mode of the socket (or of the directory that blocks it), a timeout names
// --timeout.
kvd::Result<std::unique_ptr<kvd::Client>> ConnectTo(const std::string& socket, std::chrono::milliseconds timeout);

// When this process may not connect to socket because of file permissions:
// "permission denied on PATH (owner O, group G, mode 0NNN)" for the socket
// itself or the first directory on the way that cannot be searched.
std::optional<std::string> DescribePermissionProblem(const std::string& socket);

// True for the client's "timed out after N ms" errors (lib/proto/client.cc).
bool IsTimeout(const kvd::Status& s);

// s with a hint added when it is a timeout: kvd did not answer within --timeout.
kvd::Status ExplainTimeout(const kvd::Status& s);

}  // namespace kvctl
