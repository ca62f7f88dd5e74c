// Logging: spdlog to stderr, or to journald (priorities mapped,
// SYSLOG_IDENTIFIER=kvd) when started by systemd. Key events also carry
// structured journald fields so `journalctl -u kvd KVD_EVENT=snapshot` works.
// Call only from the loop thread or before it starts (never from a forked
// child: spdlog's locks may be held by another thread at fork time).
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

#include "config/config.h"
#include "kvd/types.h"

namespace kvd::daemon {

// Configures the default spdlog logger. kAuto means journald when stderr is
// connected to the journal ($JOURNAL_STREAM matches) or $INVOCATION_ID is set.
void InitLogging(const Config& config);
// "trace" ... "off"; false if the name is unknown.
bool SetLogLevel(std::string_view level);
bool LoggingToJournal();

enum class Event {
  kStartup, kRecovery, kSnapshot, kSnapshotFailed, kFsyncFailure, kNoSpace,
  kReload, kShutdown, kSlowSync, kCorruption, kConfigError, kWriteFence,
  kConfigSet,
  kReplication,
};
std::string_view EventName(Event e);  // "startup", "recovery", "snapshot", ...

// Logs message at level, and on journald adds KVD_EVENT=<name> and, when
// lsn != 0, KVD_LSN=<lsn>.
void LogEvent(spdlog::level::level_enum level, Event event, Lsn lsn, std::string_view message);
// Syslog's "notice" (normal but significant, e.g. a CONFIG SET), which
// spdlog lacks: filtered as info, PRIORITY=5 on journald, "notice" on stderr.
void LogNotice(Event event, std::string_view message);

}  // namespace kvd::daemon
