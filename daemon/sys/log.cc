// spdlog set-up: one default logger with one sink, either stderr or the
// journal. The journal sink adds KVD_EVENT / KVD_LSN for LogEvent through a
// thread_local set around the spdlog call: sinks run synchronously on the
// logging thread (the logger is not async), so the fields reach the record
// they belong to and no other.
#include "sys/log.h"

#include <sys/stat.h>
#include <sys/uio.h>
// Without this, sd_journal_sendv adds CODE_FILE/LINE of the sink itself,
// which would point every entry at this file.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <string>
#include <vector>

namespace kvd::daemon {
namespace {

std::atomic<bool> g_journal{false};

struct EventFields {
  std::string_view name;
  Lsn lsn = 0;
};
thread_local const EventFields* t_event = nullptr;
thread_local bool t_notice = false;  // set around LogNotice's spdlog call

constexpr int kLogNotice = 5;

// %q in the stderr pattern: the level name, "notice" for LogNotice.
class LevelOrNotice final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const auto name = t_notice ? spdlog::string_view_t("notice") : spdlog::level::to_string_view(msg.level);
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<LevelOrNotice>(); }
};

int SyslogPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical: return 2;  // LOG_CRIT
    case spdlog::level::err: return 3;       // LOG_ERR
    case spdlog::level::warn: return 4;      // LOG_WARNING
    case spdlog::level::info: return 6;      // LOG_INFO
    default: return 7;                       // LOG_DEBUG
  }
}

class JournaldSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::vector<std::string> fields;
    fields.reserve(5);
    fields.push_back("MESSAGE=" + std::string(msg.payload.data(), msg.payload.size()));
    fields.push_back("PRIORITY=" + std::to_string(t_notice ? kLogNotice : SyslogPriority(msg.level)));
    fields.push_back("SYSLOG_IDENTIFIER=kvd");
    if (t_event != nullptr) {
      fields.push_back("KVD_EVENT=" + std::string(t_event->name));
      if (t_event->lsn != 0) fields.push_back("KVD_LSN=" + std::to_string(t_event->lsn));
    }
    std::vector<iovec> iov;
    iov.reserve(fields.size());
    for (std::string& f : fields) iov.push_back({f.data(), f.size()});
    // A failure here has nowhere to be reported; the journal drops it.
    (void)sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
  }
  void flush_() override {}
};

// systemd sets JOURNAL_STREAM=<dev>:<ino> when it connects stderr to the
// journal; a child whose stderr was redirected elsewhere inherits the
// variable, so compare it with what fd 2 really is.
bool StderrIsJournal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

bool WantJournal(LogTarget target) {
  switch (target) {
    case LogTarget::kJournald: return true;
    case LogTarget::kStderr: return false;
    case LogTarget::kAuto: return StderrIsJournal() || std::getenv("INVOCATION_ID") != nullptr;
  }
  return false;
}

std::optional<spdlog::level::level_enum> LevelFromName(std::string_view name) {
  // spdlog::level::from_string maps unknown names to "off": check ourselves.
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},  {"info", spdlog::level::info},
      {"warn", spdlog::level::warn},   {"warning", spdlog::level::warn}, {"error", spdlog::level::err},
      {"err", spdlog::level::err},     {"critical", spdlog::level::critical}, {"off", spdlog::level::off},
  };
  for (const auto& [n, level] : kLevels) {
    if (n == name) return level;
  }
  return std::nullopt;
}

}  // namespace

void InitLogging(const Config& config) {
  const bool journal = WantJournal(config.log_target);
  spdlog::sink_ptr sink;
  if (journal) {
    sink = std::make_shared<JournaldSink>();
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<LevelOrNotice>('q').set_pattern("%Y-%m-%d %H:%M:%S.%e kvd[%P] %q: %v");
    sink->set_formatter(std::move(formatter));
  }
  auto logger = std::make_shared<spdlog::logger>("kvd", std::move(sink));
  logger->set_level(LevelFromName(config.log_level).value_or(spdlog::level::info));
  // Every line reaches stderr / the journal before the next statement: a
  // crash right after a log call must not lose it.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  g_journal.store(journal);
}

bool SetLogLevel(std::string_view level) {
  const auto parsed = LevelFromName(level);
  if (!parsed) return false;
  spdlog::set_level(*parsed);
  return true;
}

bool LoggingToJournal() { return g_journal.load(); }

std::string_view EventName(Event e) {
  switch (e) {
    case Event::kStartup: return "startup";
    case Event::kRecovery: return "recovery";
    case Event::kSnapshot: return "snapshot";
    case Event::kSnapshotFailed: return "snapshot_failed";
    case Event::kFsyncFailure: return "fsync_failure";
    case Event::kNoSpace: return "no_space";
    case Event::kReload: return "reload";
    case Event::kShutdown: return "shutdown";
    case Event::kSlowSync: return "slow_sync";
    case Event::kCorruption: return "corruption";
    case Event::kConfigError: return "config_error";
    case Event::kWriteFence: return "write_fence";
    case Event::kConfigSet: return "config_set";
    case Event::kReplication: return "replication";
  }
  return "unknown";
}

void LogEvent(spdlog::level::level_enum level, Event event, Lsn lsn, std::string_view message) {
  const EventFields fields{EventName(event), lsn};
  t_event = &fields;
  spdlog::log(level, "{}", message);
  t_event = nullptr;
}

void LogNotice(Event event, std::string_view message) {
  t_notice = true;
  LogEvent(spdlog::level::info, event, 0, message);
  t_notice = false;
}

}  // namespace kvd::daemon
