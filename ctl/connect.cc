#include "connect.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace kvctl {
namespace {

std::string OwnerName(uid_t uid) {
  const passwd* pw = ::getpwuid(uid);
  return pw != nullptr ? std::string(pw->pw_name) : std::to_string(uid);
}

std::string GroupName(gid_t gid) {
  const group* gr = ::getgrgid(gid);
  return gr != nullptr ? std::string(gr->gr_name) : std::to_string(gid);
}

std::string Describe(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "permission denied on " + path;
  char mode[8];
  std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return "permission denied on " + path + " (owner " + OwnerName(st.st_uid) + ", group " + GroupName(st.st_gid) +
         ", mode " + mode + ")";
}

}  // namespace

std::optional<std::string> DescribePermissionProblem(const std::string& socket) {
  // Connecting needs search permission on every directory and write
  // permission on the socket file: name the first one that is missing.
  for (size_t slash = socket.find('/', 1); slash != std::string::npos; slash = socket.find('/', slash + 1)) {
    const std::string dir = socket.substr(0, slash);
    if (::access(dir.c_str(), X_OK) != 0 && errno == EACCES) return Describe(dir);
  }
  if (::access(socket.c_str(), W_OK) != 0 && errno == EACCES) return Describe(socket);
  return std::nullopt;
}

bool IsTimeout(const kvd::Status& s) {
  return s.code() == kvd::Code::kIOError && s.message().find("timed out after") != std::string::npos;
}

kvd::Status ExplainTimeout(const kvd::Status& s) {
  if (!IsTimeout(s)) return s;
  return kvd::Status(s.code(), s.message() + " (kvd did not answer in time: stopped or overloaded? see --timeout)");
}

kvd::Result<std::unique_ptr<kvd::Client>> ConnectTo(const std::string& socket, std::chrono::milliseconds timeout) {
  auto client = kvd::Client::Connect(socket, timeout);
  if (client.has_value()) return client;
  if (auto denied = DescribePermissionProblem(socket)) {
    return kvd::Status(kvd::Code::kIOError, "kvd socket " + socket + ": " + *denied);
  }
  if (IsTimeout(client.error())) return ExplainTimeout(client.error());
  return kvd::Status(kvd::Code::kIOError,
                     client.error().message() + "; is kvd running there? (--socket, KVD_SOCKET or --config)");
}

}  // namespace kvctl
