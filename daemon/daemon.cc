// RunDaemon: lock -> check file systems -> recover -> listen -> READY=1 ->
// serve -> drain -> exit. The serving itself lives in Server.
#include "daemon.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include <spdlog/fmt/fmt.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "node/snapshot_child.h"
#include "cluster/etcd_tls.h"
#include "repl/repl_tls.h"
#include "sys/fs_check.h"
#include "kvd/engine.h"
#include "sys/log.h"
#include "sys/notify.h"
#include "server.h"

namespace kvd::daemon {
namespace {

constexpr int kStartupFailed = 1;
// How long a starting kvd waits for a held directory lock. The snapshot child
// of a kvd that was just killed keeps the lock until it is gone (PDEATHSIG
// kills it, but only once its syscall in flight, a rename or fsync, returned):
// it must finish before anyone recovers. Another live kvd never lets go.
constexpr auto kLockWait = std::chrono::seconds(5);
constexpr auto kLockRetry = std::chrono::milliseconds(20);

std::string RealPath(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) != nullptr ? std::string(buf) : p;
}

Result<std::unique_ptr<FileLock>> LockDir(Env* env, const std::string& dir, const char* what) {
  const std::string path = JoinPath(dir, "LOCK");
  auto lock = env->LockFile(path);
  const auto deadline = std::chrono::steady_clock::now() + kLockWait;
  bool logged = false;
  while (!lock.has_value() && lock.error().code() == Code::kBusy && std::chrono::steady_clock::now() < deadline) {
    if (!logged) {
      spdlog::warn("the {} directory {} is locked ({} is held): waiting up to {}s for its holder to exit (the "
                   "snapshot child of a kvd that just died finishes first; another running kvd never lets go)",
                   what, dir, path, std::chrono::duration_cast<std::chrono::seconds>(kLockWait).count());
      logged = true;
    }
    std::this_thread::sleep_for(kLockRetry);
    lock = env->LockFile(path);
  }
  if (logged && lock.has_value()) spdlog::info("the {} directory lock {} is free now", what, path);
  if (!lock.has_value()) {
    if (lock.error().code() == Code::kBusy) {
      return Status::Busy(fmt::format("the {} directory {} is in use by another kvd (lock {} is held)", what, dir,
                                      path));
    }
    return lock.error().Annotate(fmt::format("locking the {} directory", what));
  }
  return std::move(lock).value();
}

// Logs the file system; a warning is also kept for STATUS (storage_warnings).
void LogFileSystem(const std::string& dir, const char* what, std::vector<std::string>* warnings) {
  const std::string fs = FileSystemName(dir);
  if (auto warning = FileSystemWarning(dir)) {
    std::string line = fmt::format("{} directory {} is on {}: {}", what, dir, fs, *warning);
    spdlog::warn("{}", line);
    warnings->push_back(std::move(line));
  } else {
    spdlog::info("{} directory {} is on {}", what, dir, fs);
  }
}

void LogRecovery(const RecoveryReport& r, const Status& st) {
  std::string msg = st.ok() ? "recovered: " : "recovery failed: ";
  if (r.snapshot_path.empty()) {
    msg += "no snapshot";
  } else {
    msg += fmt::format("snapshot {} (LSN {}, {} keys)", r.snapshot_path, r.snapshot_lsn, r.snapshot_entries);
  }
  msg += fmt::format("; WAL: {} segment(s), {} records ({} bytes) replayed; last LSN {}; {} keys; {:.1f} ms",
                     r.wal.segments.size(), r.wal.records_replayed, r.wal.bytes_replayed, r.last_lsn, r.keys,
                     static_cast<double>(r.duration.count()) / 1000.0);
  if (r.wal.truncated) {
    msg += fmt::format("; torn tail cut in {} at offset {} ({} bytes dropped{})", r.wal.truncated_segment,
                       r.wal.truncated_offset, r.wal.dropped_bytes,
                       r.wal.broken_file.empty() ? "" : ", kept in " + r.wal.broken_file);
  }
  for (const auto& s : r.wal.set_aside) msg += "; set aside " + s;
  for (const auto& f : r.snapshot_failures) msg += "; rejected snapshot: " + f;
  if (!st.ok()) msg += "; " + st.ToString();
  const bool bad = !st.ok();
  const bool odd = r.wal.truncated || r.wal.data_lost() || !r.snapshot_failures.empty();
  LogEvent(bad ? spdlog::level::critical : (odd ? spdlog::level::warn : spdlog::level::info),
           bad && st.IsCorruption() ? Event::kCorruption : Event::kRecovery, r.last_lsn, msg);
}

std::string ConfigSummary(const Config& c) {
  std::string s;
  for (const auto& [k, v] : ListConfigValues(c)) {
    if (!s.empty()) s += ", ";
    s += k + "=" + v;
  }
  return s;
}

// Runs the loop until every handle is closed; a last resort closes stragglers.
void DrainLoop(uv_loop_t* loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  uv_walk(loop, [](uv_handle_t* h, void*) {
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  }, nullptr);
  uv_run(loop, UV_RUN_DEFAULT);
}

int Serve(const Config& config, Env* env, uv_loop_t* loop, Notifier* notifier,
          std::vector<std::string> storage_warnings) {
  // The server first: the engine's committer notifies through its uv_async.
  Server server(loop, config, env, notifier);
  server.set_storage_warnings(std::move(storage_warnings));

  EngineOptions eo;
  eo.env = env;
  eo.wal_dir = config.wal_path;
  eo.snapshot_dir = config.snapshot_path;
  eo.segment_size = config.segment_size;
  eo.recovery_mode = config.recovery_mode;
  eo.durability = config.durability;
  eo.max_key_bytes = config.max_key_bytes;
  eo.max_value_bytes = config.max_value_bytes;
  eo.notify = server.EngineNotify();
  eo.commit_observer = server.EngineObserver();
  eo.recovery_progress = [notifier](const SegmentReport& seg) {
    notifier->Status(fmt::format("recovering: {} ({} records, up to LSN {})", seg.path, seg.good_records,
                                 seg.last_good_lsn));
    notifier->ExtendTimeout(std::chrono::seconds(30));
    spdlog::debug("recovery: {}: {} records, {} bytes, damage {}", seg.path, seg.good_records, seg.good_bytes,
                  ToString(seg.damage));
  };
  eo.on_warning = [](std::string_view w) { spdlog::warn("{}", w); };

  notifier->Status("recovering");
  RecoveryReport report;
  auto engine = Engine::Open(std::move(eo), &report);
  LogRecovery(report, engine.has_value() ? Status::Ok() : engine.error());
  if (!engine.has_value()) return kStartupFailed;
  Engine* e = engine->get();
  const uint64_t keys = e->state().size();
  const Lsn durable = e->durable_lsn();

  Status st = server.Start(std::move(engine).value(), std::move(report));
  if (!st.ok()) {
    spdlog::critical("cannot serve on {}: {}", config.socket, st.message());
    return kStartupFailed;
  }
  LogEvent(spdlog::level::info, Event::kStartup, durable,
           fmt::format("serving on {} ({}, pid {}): {} keys, durable LSN {}", config.socket,
                       server.socket_from_systemd() ? "socket passed by systemd" : "socket bound by kvd", ::getpid(),
                       keys, durable));
  notifier->Status(fmt::format("serving: {} keys, durable LSN {}", keys, durable));
  notifier->Ready();
  uv_run(loop, UV_RUN_DEFAULT);
  return server.exit_code();
}

}  // namespace

int RunDaemon(const Config& config, Env* env) {
  if (env == nullptr) env = Env::Default();
  LogEvent(spdlog::level::info, Event::kStartup, 0,
           fmt::format("kvd {} starting (pid {}), config {}: {}", KVD_VERSION, ::getpid(), config.source_path,
                       ConfigSummary(config)));
  Notifier notifier;
  // The TLS files, before anything slow (recovery): a wrong one fails now.
  if (auto tls = MakeReplicationTls(config.replication); !tls) {
    spdlog::critical("{}", tls.error().message());
    return kStartupFailed;
  }
  if (Status st = CheckEtcdTlsFiles(config.cluster); !st.ok()) {
    spdlog::critical("{}", st.message());
    return kStartupFailed;
  }
  for (const std::string* dir : {&config.wal_path, &config.snapshot_path}) {
    Status st = env->CreateDirs(*dir);
    if (!st.ok()) {
      spdlog::critical("cannot create {}: {}", *dir, st.ToString());
      return kStartupFailed;
    }
  }
  auto wal_lock = LockDir(env, config.wal_path, "WAL");
  if (!wal_lock.has_value()) {
    spdlog::critical("{}", wal_lock.error().message());
    return kStartupFailed;
  }
  std::unique_ptr<FileLock> snap_lock;
  if (RealPath(config.snapshot_path) != RealPath(config.wal_path)) {
    auto l = LockDir(env, config.snapshot_path, "snapshot");
    if (!l.has_value()) {
      spdlog::critical("{}", l.error().message());
      return kStartupFailed;
    }
    snap_lock = std::move(l).value();
  }
  // Every snapshot child keeps both locks until it exits (node/snapshot_child.h).
  SetSnapshotChildLockFds({(*wal_lock)->fd(), snap_lock ? snap_lock->fd() : -1});
  std::vector<std::string> storage_warnings;
  LogFileSystem(config.wal_path, "WAL", &storage_warnings);
  if (RealPath(config.snapshot_path) != RealPath(config.wal_path)) {
    LogFileSystem(config.snapshot_path, "snapshot", &storage_warnings);
  }

  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) {
    spdlog::critical("uv_loop_init failed");
    return kStartupFailed;
  }
  const int code = Serve(config, env, &loop, &notifier, std::move(storage_warnings));
  DrainLoop(&loop);
  uv_loop_close(&loop);
  if (code != 0) notifier.Stopping();
  return code;
}

}  // namespace kvd::daemon
