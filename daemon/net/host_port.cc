#include "net/host_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>

namespace kvd::daemon {

// Strings are built with append, not "literal" + std::string: g++ 12 at -O3
// reports a false -Wrestrict for the latter (GCC bug 105329).
std::string HostPort::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string out;
  if (v6) out.push_back('[');
  out.append(host);
  if (v6) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(port));
  return out;
}

Result<HostPort> ParseHostPort(std::string_view text, bool allow_port0) {
  std::string quoted(1, '"');
  quoted.append(text);
  quoted.push_back('"');
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return Status::InvalidArgument(quoted + " is not HOST:PORT");
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  HostPort hp;
  hp.host = host == "localhost" ? "127.0.0.1" : std::string(host);
  in6_addr a6{};
  in_addr a4{};
  if (::inet_pton(AF_INET, hp.host.c_str(), &a4) != 1 && ::inet_pton(AF_INET6, hp.host.c_str(), &a6) != 1) {
    return Status::InvalidArgument(quoted + ": \"" + std::string(host) +
                                   "\" is not an IP address (write an IPv4 address, [IPv6] or localhost)");
  }
  uint32_t port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535 ||
      (port == 0 && !allow_port0)) {
    return Status::InvalidArgument(quoted + ": the port must be a number from 1 to 65535");
  }
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

bool IsLoopback(const HostPort& hp) {
  in_addr a4{};
  if (::inet_pton(AF_INET, hp.host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  return ::inet_pton(AF_INET6, hp.host.c_str(), &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

}  // namespace kvd::daemon
