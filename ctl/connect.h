// Opening a connection with an error message that says what to check.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "kvd/client.h"

namespace kvctl {

inline kvd::Result<std::unique_ptr<kvd::Client>> ConnectTo(const std::string& socket,
                                                           std::chrono::milliseconds timeout = {}) {
  auto client = kvd::Client::Connect(socket, timeout);
  if (!client.has_value()) {
    return kvd::Status(kvd::Code::kIOError,
                       client.error().message() + "; is kvd running there? (--socket, --config or KVD_SOCKET)");
  }
  return client;
}

}  // namespace kvctl
