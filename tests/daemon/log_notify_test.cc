// Logging set-up (target detection, levels), sd_notify messages over a real
// datagram socket, and the file-system check.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "config/config.h"
#include "sys/fs_check.h"
#include "kvd/fd.h"
#include "sys/log.h"
#include "sys/notify.h"

using kvd::daemon::Config;
using kvd::daemon::LogTarget;

namespace {

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_.empty()) {
      ::unsetenv(name_);
    } else {
      ::setenv(name_, old_.c_str(), 1);
    }
  }

 private:
  const char* name_;
  std::string old_;
};

}  // namespace

TEST_CASE("log target: stderr, journald, and auto detection") {
  ::unsetenv("INVOCATION_ID");
  ::unsetenv("JOURNAL_STREAM");
  Config c;
  c.log_target = LogTarget::kStderr;
  kvd::daemon::InitLogging(c);
  CHECK(!kvd::daemon::LoggingToJournal());

  c.log_target = LogTarget::kAuto;
  kvd::daemon::InitLogging(c);
  CHECK(!kvd::daemon::LoggingToJournal());
  {
    // JOURNAL_STREAM naming some other file (inherited after a redirect) is ignored.
    ScopedEnv js("JOURNAL_STREAM", "1:1");
    kvd::daemon::InitLogging(c);
    CHECK(!kvd::daemon::LoggingToJournal());
  }
  {
    struct stat st {};
    REQUIRE(::fstat(STDERR_FILENO, &st) == 0);
    ScopedEnv js("JOURNAL_STREAM", std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino));
    kvd::daemon::InitLogging(c);
    CHECK(kvd::daemon::LoggingToJournal());
  }
  {
    ScopedEnv id("INVOCATION_ID", "0123456789abcdef");
    kvd::daemon::InitLogging(c);
    CHECK(kvd::daemon::LoggingToJournal());
    // Without a journal to talk to this must still be harmless.
    kvd::daemon::LogEvent(spdlog::level::info, kvd::daemon::Event::kSnapshot, 42, "snapshot test line");
  }
  c.log_target = LogTarget::kStderr;
  kvd::daemon::InitLogging(c);
  CHECK(!kvd::daemon::LoggingToJournal());
}

TEST_CASE("log levels and event names") {
  Config c;
  c.log_target = LogTarget::kStderr;
  c.log_level = "warn";
  kvd::daemon::InitLogging(c);
  CHECK(spdlog::default_logger()->level() == spdlog::level::warn);
  CHECK(kvd::daemon::SetLogLevel("debug"));
  CHECK(spdlog::default_logger()->level() == spdlog::level::debug);
  CHECK(!kvd::daemon::SetLogLevel("loud"));
  CHECK(spdlog::default_logger()->level() == spdlog::level::debug);
  CHECK(kvd::daemon::SetLogLevel("off"));
  CHECK(spdlog::default_logger()->level() == spdlog::level::off);
  // Every level the config accepts is one SetLogLevel knows.
  for (const char* l : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    CHECK_MESSAGE(kvd::daemon::SetLogLevel(l), l);
    Config t;
    CHECK(kvd::daemon::SetConfigValue(&t, "log.level", l).ok());
  }

  using kvd::daemon::Event;
  std::set<std::string_view> names;
  for (Event e : {Event::kStartup, Event::kRecovery, Event::kSnapshot, Event::kSnapshotFailed, Event::kFsyncFailure,
                  Event::kNoSpace, Event::kReload, Event::kShutdown, Event::kSlowSync, Event::kCorruption,
                  Event::kConfigError}) {
    names.insert(kvd::daemon::EventName(e));
  }
  CHECK(names.size() == 11);  // distinct
  CHECK(kvd::daemon::EventName(Event::kSnapshot) == "snapshot");
  CHECK(kvd::daemon::EventName(Event::kFsyncFailure) == "fsync_failure");
  CHECK(kvd::daemon::EventName(Event::kRecovery) == "recovery");
}

TEST_CASE("sd_notify messages reach $NOTIFY_SOCKET") {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("kvd-notify-" + std::to_string(::getpid()) + ".sock"))
                               .string();
  ::unlink(path.c_str());
  kvd::Fd sock(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  REQUIRE(sock.get() >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof(addr.sun_path));
  std::copy(path.begin(), path.end(), addr.sun_path);
  REQUIRE(::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);

  auto receive = [&]() {
    char buf[512];
    const ssize_t n = ::recv(sock.get(), buf, sizeof buf, 0);  // blocks until sd_notify sent it
    REQUIRE(n > 0);
    return std::string(buf, static_cast<size_t>(n));
  };
  {
    ScopedEnv ns("NOTIFY_SOCKET", path);
    ScopedEnv wd("WATCHDOG_USEC", "3000000");
    ScopedEnv wp("WATCHDOG_PID", std::to_string(::getpid()));
    kvd::daemon::Notifier n;
    CHECK(n.watchdog_interval() == std::chrono::microseconds(1'500'000));
    n.Ready();
    CHECK(receive() == "READY=1");
    n.Status("recovering\nsegment 3");
    CHECK(receive() == "STATUS=recovering segment 3");
    n.ExtendTimeout(std::chrono::seconds(30));
    CHECK(receive() == "EXTEND_TIMEOUT_USEC=30000000");
    n.Reloading();
    CHECK(receive().rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
    n.Watchdog();
    CHECK(receive() == "WATCHDOG=1");
    n.Stopping();
    CHECK(receive() == "STOPPING=1");
  }
  ::unlink(path.c_str());
  {
    // Not under systemd: no watchdog, and every call is a harmless no-op.
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    kvd::daemon::Notifier n;
    CHECK(n.watchdog_interval().count() == 0);
    n.Ready();
    n.Status("x");
  }
}

TEST_CASE("file system names and warnings") {
  const std::string here = std::filesystem::current_path().string();
  CHECK(!kvd::daemon::FileSystemName(here).empty());
  // A directory that does not exist yet is judged by where it will be created.
  CHECK(kvd::daemon::FileSystemName(here + "/not/yet/there") == kvd::daemon::FileSystemName(here));
  if (std::filesystem::is_directory("/dev/shm") && kvd::daemon::FileSystemName("/dev/shm") == "tmpfs") {
    auto w = kvd::daemon::FileSystemWarning("/dev/shm/kvd-data");
    REQUIRE(w.has_value());
    CHECK(w->find("tmpfs") != std::string::npos);
    CHECK(w->find("reboot") != std::string::npos);
  }
  if (kvd::daemon::FileSystemName(here) == "ext4") CHECK(!kvd::daemon::FileSystemWarning(here).has_value());
  CHECK(kvd::daemon::FileSystemName("/proc").rfind("unknown (0x", 0) == 0);
}
