#include "socket_resolve.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

using namespace kvctl;

namespace {

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& text) {
    char tmpl[] = "/tmp/kvctl-resolve-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    ::close(fd);
    path = tmpl;
    std::ofstream(path) << text;
  }
  ~TempFile() { ::unlink(path.c_str()); }
};

std::string Resolve(const SocketSources& s) {
  auto r = ResolveSocket(s);
  REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
  return *r;
}

}  // namespace

TEST_CASE("precedence: --socket, then --config, then KVD_SOCKET, then the system file, then the default") {
  TempFile cfg("[server]\nsocket = \"/tmp/from-config.sock\"\n");
  TempFile system_cfg("[server]\nsocket = '/tmp/from-system.sock'\n[log]\nlevel = \"info\"\n");
  SocketSources s;
  s.default_config = "/nonexistent/kvd.toml";
  CHECK(Resolve(s) == kDefaultSocketPath);
  s.default_config = system_cfg.path;
  CHECK(Resolve(s) == "/tmp/from-system.sock");
  s.env = "/tmp/env.sock";
  CHECK(Resolve(s) == "/tmp/env.sock");  // the environment beats the defaults
  s.config_flag = cfg.path;
  CHECK(Resolve(s) == "/tmp/from-config.sock");  // an explicit flag beats the environment
  s.config_flag.reset();
  s.socket_flag = "/tmp/flag.sock";
  CHECK(Resolve(s) == "/tmp/flag.sock");
}

TEST_CASE("a config without [server] socket means kvd's default") {
  TempFile cfg("[storage]\nwal_path = \"wal\"\n");
  SocketSources s;
  s.config_flag = cfg.path;
  CHECK(Resolve(s) == kDefaultSocketPath);
}

TEST_CASE("relative socket paths are kept as written (relative to the cwd)") {
  TempFile cfg("[server]\nsocket = \"run/kvd.sock\"\n");
  SocketSources s;
  s.config_flag = cfg.path;
  CHECK(Resolve(s) == "run/kvd.sock");
}

TEST_CASE("an explicit --config that is missing or broken is an error") {
  SocketSources s;
  s.config_flag = "/nonexistent/kvd.toml";
  CHECK_FALSE(ResolveSocket(s).has_value());
  TempFile broken("[server\nsocket = ");
  s.config_flag = broken.path;
  auto r = ResolveSocket(s);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == kvd::Code::kInvalidArgument);
  TempFile wrong_type("[server]\nsocket = 5\n");
  s.config_flag = wrong_type.path;
  r = ResolveSocket(s);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message().find("server.socket") != std::string::npos);
}

TEST_CASE("a broken system config falls back to the default socket") {
  TempFile broken("not toml at all [[[");
  SocketSources s;
  s.default_config = broken.path;
  CHECK(Resolve(s) == kDefaultSocketPath);
}
