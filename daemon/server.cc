#include "server.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "sys/log.h"
#include "config/runtime_config.h"

namespace kvd::daemon {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr auto kDrainDeadline = std::chrono::seconds(5);    // then Close the engine anyway
constexpr auto kFlushDeadline = std::chrono::seconds(10);   // then drop unsent replies
constexpr auto kSnapshotRetryDelay = std::chrono::seconds(5);
constexpr int kStatusLineEvery = 5;  // housekeeping ticks between STATUS= lines

Dispatcher::Limits DispatchLimits(const Config& c) {
  Dispatcher::Limits l;
  l.max_scan_reply_bytes = std::max<size_t>(4096, c.max_frame_bytes / 2);
  return l;
}

NativeCodec::Limits CodecLimits(const Config& c) {
  NativeCodec::Limits l;
  l.max_frame_bytes = c.max_frame_bytes;
  l.max_key_bytes = c.max_key_bytes;
  l.max_value_bytes = c.max_value_bytes;
  return l;
}

}  // namespace

Server::Server(uv_loop_t* loop, Config config, Env* env, Notifier* notifier)
    : loop_(loop),
      config_(std::move(config)),
      env_(env),
      notifier_(notifier),
      started_(steady_clock::now()),
      dispatcher_(nullptr, this, DispatchLimits(config_), &counters_),
      protocol_(CodecLimits(config_)),
      bridge_(loop, &dispatcher_, [this] { AfterPoll(); }),
      watchdog_progress_(steady_clock::now()) {}

Server::~Server() {
  CloseAllConnections();
  // The committer thread may notify until the engine is closed: close it
  // before the bridge's async handle goes away.
  if (engine_) (void)engine_->Close(&dispatcher_);
  StopHandles();
  engine_.reset();
}

Status Server::Start(std::unique_ptr<Engine> engine, RecoveryReport recovery) {
  engine_ = std::move(engine);
  recovery_ = std::move(recovery);
  dispatcher_.set_engine(engine_.get());
  last_snapshot_lsn_ = recovery_.snapshot_lsn;
  snapshotter_ = std::make_unique<Snapshotter>(loop_, engine_.get(), env_, config_.snapshot_path,
                                               [this](const SnapshotOutcome& o) { OnSnapshotDone(o); });

  KVD_RETURN_IF_ERROR(listener_.Open(loop_, config_.socket, config_.socket_mode,
                                     [this](uv_stream_t* s) { OnAccept(s); }));
  IgnoreSigpipe();
  if (!signals_.Start(
          loop_, [this](int sig) { BeginShutdown(sig == SIGINT ? "SIGINT" : "SIGTERM"); },
          [this] { Reload(); })) {
    return Status::Internal("cannot install signal handlers");
  }
  if (!InitPrepare(loop_, &prepare_, this)) return Status::Internal("uv_prepare_init failed");
  // Once per loop turn, after every ready socket was read: start the next
  // commit with all writes read so far (the engine defers starting), then send
  // the replies while it runs; writes that Flush itself submits (input left
  // behind a read barrier) start right after, not a timer tick later.
  engine_->SetDeferredCommitStart(true);
  uv_prepare_start(prepare_.get(), [](uv_prepare_t* p) {
    auto* self = static_cast<Server*>(p->data);
    if (self->engine_) self->engine_->StartCommits();
    self->FlushDirty();
    if (self->engine_) self->engine_->StartCommits();
  });

  if (!InitTimer(loop_, &housekeeping_, this)) return Status::Internal("uv_timer_init failed");
  uint64_t hk_ms = 1000;
  if (config_.idle_timeout.count() > 0) {
    hk_ms = std::clamp<uint64_t>(static_cast<uint64_t>(config_.idle_timeout.count()) / 2, 10, 1000);
  }
  uv_timer_start(housekeeping_.get(), [](uv_timer_t* t) { static_cast<Server*>(t->data)->Housekeeping(); },
                 hk_ms, hk_ms);

  if (!InitTimer(loop_, &snapshot_timer_, this)) return Status::Internal("uv_timer_init failed");
  RestartSnapshotTimer();

  const auto wd = notifier_->watchdog_interval();
  if (wd.count() > 0) {
    if (!InitTimer(loop_, &watchdog_, this)) return Status::Internal("uv_timer_init failed");
    const uint64_t ms = std::max<uint64_t>(1, static_cast<uint64_t>(wd.count() / 1000));
    uv_timer_start(watchdog_.get(), [](uv_timer_t* t) { static_cast<Server*>(t->data)->WatchdogTick(); },
                   ms, ms);
    notifier_->Watchdog();
  }
  bridge_.Attach(engine_.get(), engine_->durability().flush_interval);
  CheckFaults();
  return Status::Ok();
}

// ---- connections --------------------------------------------------------------

void Server::OnAccept(uv_stream_t* server) {
  if (phase_ != Phase::kServing) {
    RefuseConnection(loop_, server, protocol_, Code::kShuttingDown, "kvd is shutting down");
    return;
  }
  if (conns_.size() >= config_.max_connections) {
    ++counters_.connections_refused;
    RefuseConnection(loop_, server, protocol_, Code::kBusy,
                     fmt::format("too many connections (server.max_connections = {})", config_.max_connections));
    return;
  }
  const uint64_t id = next_conn_id_++;
  Session::Limits limits;
  limits.max_pending_reply_bytes = config_.max_pending_reply_bytes;
  auto c = std::make_unique<Connection>(id, &dispatcher_, limits, protocol_.NewCodec(), this, &counters_);
  if (!c->Accept(loop_, server)) {
    c.release()->StartClose();
    return;
  }
  conns_.emplace(id, std::move(c));
  ++counters_.connections_total;
  counters_.connections_current = conns_.size();
}

Session* Server::FindSession(uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : &it->second->session();
}

void Server::SessionReady(Session* s) {
  auto it = conns_.find(s->id());
  if (it != conns_.end()) MarkDirty(it->second.get());
}

void Server::MarkDirty(Connection* c) {
  if (c->dirty) return;
  c->dirty = true;
  dirty_.push_back(c->id());
}

void Server::RequestClose(Connection* c) {
  auto node = conns_.extract(c->id());
  if (node.empty()) return;
  node.mapped().release()->StartClose();
  counters_.connections_current = conns_.size();
}

void Server::FlushDirty() {
  std::vector<uint64_t> batch;
  while (!dirty_.empty()) {
    batch.swap(dirty_);
    for (uint64_t id : batch) {
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      it->second->dirty = false;
      it->second->Flush();
    }
    batch.clear();
  }
}

void Server::CloseAllConnections() {
  std::vector<uint64_t> ids;
  ids.reserve(conns_.size());
  for (auto& [id, c] : conns_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = conns_.find(id);
    if (it != conns_.end()) RequestClose(it->second.get());
  }
}

// ---- engine progress and faults -----------------------------------------------

void Server::AfterPoll() {
  CheckFaults();
  if (!engine_) return;
  const EngineStats st = engine_->stats();
  if (st.groups != last_groups_) {
    last_groups_ = st.groups;
    const auto slow_us = static_cast<uint64_t>(duration_cast<std::chrono::microseconds>(config_.slow_sync_warning).count());
    if (slow_us > 0 && st.last_sync_us > slow_us) {
      // At most one line per 10 s, counting the ones folded into it.
      const auto now = steady_clock::now();
      ++slow_syncs_unlogged_;
      if (now - last_slow_log_ > std::chrono::seconds(10)) {
        LogEvent(spdlog::level::warn, Event::kSlowSync, st.durable_lsn,
                 fmt::format("slow fdatasync: {:.1f} ms (threshold {} ms; {} slow since last report; p99 {:.1f} ms)",
                             static_cast<double>(st.last_sync_us) / 1000.0, config_.slow_sync_warning.count(),
                             slow_syncs_unlogged_, static_cast<double>(st.sync_p99_us) / 1000.0));
        last_slow_log_ = now;
        slow_syncs_unlogged_ = 0;
      }
    }
  }
}

void Server::CheckFaults() {
  if (!engine_ || refusal_logged_) return;
  Status refusal = engine_->write_refusal();
  if (refusal.ok()) return;
  refusal_logged_ = true;
  LogEvent(spdlog::level::critical, Event::kFsyncFailure, engine_->durable_lsn(),
           fmt::format("writes refused from now on ({}); reads keep working; acknowledged data is safe up to "
                       "LSN {}; restart kvd to recover",
                       refusal.ToString(), engine_->durable_lsn()));
  notifier_->Status("writes refused: " + refusal.message());
}

void Server::OnWriteError(const Status& status) {
  if (status.IsNoSpace()) {
    if (!in_no_space_) {
      in_no_space_ = true;
      LogEvent(spdlog::level::err, Event::kNoSpace, engine_->durable_lsn(),
               "out of disk space: writes fail until space is freed (" + status.message() + ")");
    }
    return;
  }
  CheckFaults();
}

// ---- timers ---------------------------------------------------------------------

void Server::Housekeeping() {
  if (!engine_) return;
  const auto now = steady_clock::now();
  if (config_.idle_timeout.count() > 0 && phase_ == Phase::kServing) {
    std::vector<Connection*> idle;
    for (auto& [id, c] : conns_) {
      if (now - c->last_activity() >= config_.idle_timeout && c->session().Idle() && c->session().Quiescent()) {
        idle.push_back(c.get());
      }
    }
    for (Connection* c : idle) {
      ++counters_.idle_closed;
      RequestClose(c);
    }
  }
  const EngineStats st = engine_->stats();
  if (in_no_space_ && st.no_space.empty()) {
    in_no_space_ = false;
    LogEvent(spdlog::level::info, Event::kNoSpace, st.durable_lsn, "disk space available again: writes accepted");
  }
  if (phase_ == Phase::kServing && config_.snapshot_wal_bytes > 0 &&
      st.wal.bytes >= wal_bytes_baseline_ + config_.snapshot_wal_bytes) {
    StartSnapshot("wal_bytes");
  }
  if (++housekeeping_ticks_ % kStatusLineEvery == 0 && phase_ == Phase::kServing) {
    std::string line = fmt::format("serving: {} keys, durable LSN {}, {} clients", engine_->state().size(),
                                   st.durable_lsn, conns_.size());
    if (!st.write_refusal.empty()) line += "; writes refused: " + st.write_refusal;
    if (!st.no_space.empty()) line += "; out of disk space";
    notifier_->Status(line);
  }
}

void Server::WatchdogTick() {
  if (!engine_) return;
  // Healthy when the loop turns (this timer fired) and the committer is not
  // stuck: nothing is waiting for a commit, or durability advanced lately.
  const auto now = steady_clock::now();
  const EngineStats st = engine_->stats();
  const bool waiting = dispatcher_.pending_writes() > 0 || dispatcher_.pending_flushes() > 0 ||
                       (engine_->durability().mode != DurabilityMode::kNone && st.pending_records > 0);
  if (!waiting || st.durable_lsn != watchdog_durable_ || !st.write_refusal.empty()) {
    watchdog_durable_ = st.durable_lsn;
    watchdog_progress_ = now;
  }
  const auto stuck = now - watchdog_progress_;
  if (stuck < notifier_->watchdog_interval() * 3 / 2) {
    notifier_->Watchdog();
  } else {
    spdlog::warn("watchdog: no commit progress for {} ms with writes pending; not petting the watchdog",
                 duration_cast<milliseconds>(stuck).count());
  }
}

// ---- snapshots ------------------------------------------------------------------

void Server::RestartSnapshotTimer() {
  if (!snapshot_timer_) return;
  uv_timer_stop(snapshot_timer_.get());
  const auto ms = static_cast<uint64_t>(config_.snapshot_interval.count());
  if (ms == 0) return;
  uv_timer_start(snapshot_timer_.get(), [](uv_timer_t* t) {
    auto* self = static_cast<Server*>(t->data);
    // Nothing new since the last snapshot: nothing to write.
    if (self->engine_ && self->engine_->SnapshotLsn() > self->last_snapshot_lsn_) self->StartSnapshot("interval");
  }, ms, ms);
}

void Server::StartSnapshot(const char* reason) {
  if (!snapshotter_ || snapshotter_->running() || phase_ != Phase::kServing) return;
  const bool automatic = std::string_view(reason) != "request";
  if (automatic && steady_clock::now() < snapshot_retry_after_) return;
  spdlog::debug("snapshot: starting ({}) at LSN {}", reason, engine_->SnapshotLsn());
  (void)snapshotter_->Start(reason);  // failures arrive through OnSnapshotDone
}

void Server::OnSnapshotDone(const SnapshotOutcome& o) {
  Status st = o.status;
  if (st.ok()) {
    Status installed = engine_->SnapshotInstalled(o.lsn);
    if (!installed.ok()) {
      // The snapshot itself is durable; only pruning failed. Still a success.
      spdlog::error("snapshot at LSN {} written, but cleaning up after it failed: {}", o.lsn, installed.ToString());
    }
    ++snapshots_.succeeded;
    snapshots_.have_last = true;
    snapshots_.last = o;
    snapshots_.last_at = steady_clock::now();
    snapshots_.last_error.clear();
    last_snapshot_lsn_ = std::max(last_snapshot_lsn_, o.lsn);
    wal_bytes_baseline_ = engine_->stats().wal.bytes;
    LogEvent(spdlog::level::info, Event::kSnapshot, o.lsn,
             fmt::format("snapshot at LSN {} ({}): {} keys, {} bytes, took {:.1f} ms (child wrote in {:.1f} ms), "
                         "fork {} us, child peak RSS {:.1f} MiB",
                         o.lsn, o.reason, o.entries, o.bytes, static_cast<double>(o.duration.count()) / 1000.0,
                         static_cast<double>(o.child_write.count()) / 1000.0, o.fork_time.count(),
                         static_cast<double>(o.child_peak_rss_bytes) / (1024.0 * 1024.0)));
  } else {
    ++snapshots_.failed;
    snapshots_.last_error = st.ToString();
    snapshot_retry_after_ = steady_clock::now() + kSnapshotRetryDelay;
    LogEvent(spdlog::level::err, Event::kSnapshotFailed, o.lsn,
             fmt::format("snapshot at LSN {} ({}) failed: {}; the previous snapshot is intact; retrying at the "
                         "next trigger",
                         o.lsn, o.reason, st.ToString()));
  }
  dispatcher_.OnSnapshotDone(st, o.lsn);
}

// ---- STATUS and CONFIG ------------------------------------------------------------

std::string Server::StatusJson() {
  StatusInputs in;
  in.config = &config_;
  in.engine = engine_.get();
  in.recovery = &recovery_;
  in.counters = &counters_;
  for (const auto& [id, conn] : conns_) {
    const uint64_t bytes = conn->session().reply_bytes();
    in.reply_bytes += bytes;
    in.largest_client_reply_bytes = std::max(in.largest_client_reply_bytes, bytes);
  }
  in.snapshots = &snapshots_;
  in.started = started_;
  in.snapshot_running = snapshotter_ && snapshotter_->running();
  if (in.snapshot_running) {
    in.snapshot_running_lsn = snapshotter_->running_lsn();
    in.snapshot_started = snapshotter_->started();
  }
  in.stopping = phase_ != Phase::kServing;
  return BuildStatusJson(in);
}

Result<std::string> Server::ConfigGetJson(std::string_view name) {
  nlohmann::json j = nlohmann::json::object();
  if (name.empty()) {
    for (const auto& [k, v] : ListConfigValues(config_)) j[k] = v;
  } else {
    auto v = GetConfigValue(config_, name);
    if (!v.has_value()) return Status::InvalidArgument("unknown config key: " + std::string(name));
    j[std::string(name)] = *v;
  }
  return j.dump();
}

Status Server::ConfigSet(std::string_view name, std::string_view value) {
  if (GetConfigValue(config_, name).has_value() && !IsRuntimeKey(name)) {
    return Status::InvalidArgument(std::string(name) + " cannot change at run time (edit kvd.toml and restart)");
  }
  Config next = config_;
  KVD_RETURN_IF_ERROR(SetConfigValue(&next, name, value));
  const std::string before = GetConfigValue(config_, name).value_or("");
  ApplyConfig(next);
  LogEvent(spdlog::level::info, Event::kReload, 0,
           fmt::format("CONFIG SET {}: {} -> {}", name, before, GetConfigValue(config_, name).value_or("")));
  return Status::Ok();
}

void Server::ApplyConfig(const Config& next) {
  Status st = ApplyEngineAndLogging(next, engine_.get());
  if (!st.ok()) spdlog::error("applying configuration: {}", st.ToString());
  const bool interval_changed = next.snapshot_interval != config_.snapshot_interval;
  const auto old_flush = config_.durability.flush_interval;
  config_ = next;
  if (interval_changed) RestartSnapshotTimer();
  if (old_flush != config_.durability.flush_interval) bridge_.SetFlushInterval(config_.durability.flush_interval);
}

void Server::Reload() {
  if (phase_ != Phase::kServing) return;
  notifier_->Reloading();
  auto loaded = LoadConfig(config_.source_path);
  if (!loaded.has_value()) {
    LogEvent(spdlog::level::err, Event::kConfigError, 0,
             "reload: " + loaded.error().message() + "; nothing changed");
    notifier_->Ready();
    return;
  }
  const ConfigDiff diff = DiffConfig(config_, *loaded);
  for (const auto& change : diff.runtime_changed) {
    LogEvent(spdlog::level::info, Event::kReload, 0, "reload: " + change);
  }
  for (const auto& change : diff.restart_required) {
    LogEvent(spdlog::level::warn, Event::kReload, 0, "reload: " + change);
  }
  if (diff.runtime_changed.empty() && diff.restart_required.empty()) {
    LogEvent(spdlog::level::info, Event::kReload, 0, "reload: no changes");
  }
  ApplyConfig(MergeRuntimeKeys(config_, *loaded));
  notifier_->Ready();
}

// ---- shutdown ---------------------------------------------------------------------

void Server::BeginShutdown(std::string_view why) {
  if (phase_ != Phase::kServing) {
    spdlog::info("{} during shutdown: already stopping", why);
    return;
  }
  phase_ = Phase::kDraining;
  shutdown_started_ = steady_clock::now();
  notifier_->Stopping();
  LogEvent(spdlog::level::info, Event::kShutdown, engine_ ? engine_->last_lsn() : 0,
           fmt::format("{}: stopping: no new clients; answering {} connected clients' requests", why, conns_.size()));
  listener_.Close();
  if (snapshotter_ && snapshotter_->running()) {
    snapshotter_->Abort();
    spdlog::info("snapshot in progress abandoned for shutdown (the previous snapshot is intact)");
  }
  dispatcher_.OnSnapshotDone(Status::ShuttingDown("kvd is shutting down"), 0);
  for (auto& [id, c] : conns_) {
    c->StopReading();
    MarkDirty(c.get());
  }
  if (snapshot_timer_) uv_timer_stop(snapshot_timer_.get());
  if (InitTimer(loop_, &shutdown_timer_, this)) {
    uv_timer_start(shutdown_timer_.get(), [](uv_timer_t* t) { static_cast<Server*>(t->data)->ShutdownStep(); },
                   0, 5);
  }
}

void Server::ShutdownStep() {
  const auto elapsed = steady_clock::now() - shutdown_started_;
  if (phase_ == Phase::kDraining) {
    // Wait until every request already read has been submitted and
    // answered, so writes pipelined behind a read are not refused.
    bool busy = false;
    for (auto& [id, c] : conns_) busy = busy || !c->session().Idle();
    if (busy && elapsed < kDrainDeadline) return;
    Status st = engine_->Close(&dispatcher_);
    bridge_.Detach();
    dispatcher_.BeginShutdown();
    if (st.ok()) {
      LogEvent(spdlog::level::info, Event::kShutdown, engine_->durable_lsn(),
               fmt::format("WAL closed: everything up to LSN {} is durable", engine_->durable_lsn()));
    } else {
      exit_code_ = 3;
      LogEvent(spdlog::level::critical, Event::kFsyncFailure, engine_->durable_lsn(),
               "closing the WAL failed: " + st.ToString() + "; data after LSN " +
                   std::to_string(engine_->durable_lsn()) + " may be lost");
    }
    phase_ = Phase::kFlushing;
    for (auto& [id, c] : conns_) MarkDirty(c.get());
    return;
  }
  if (phase_ == Phase::kFlushing) {
    bool busy = false;
    for (auto& [id, c] : conns_) busy = busy || !c->session().Quiescent();
    if (busy && elapsed < kFlushDeadline) return;
    if (busy) spdlog::warn("shutdown: dropping replies to clients that do not read them");
    phase_ = Phase::kDone;
    CloseAllConnections();
    StopHandles();
    LogEvent(spdlog::level::info, Event::kShutdown, engine_->durable_lsn(), "kvd stopped");
  }
}

void Server::StopHandles() {
  signals_.Stop();
  listener_.Close();
  bridge_.Close();
  prepare_.reset();
  housekeeping_.reset();
  snapshot_timer_.reset();
  watchdog_.reset();
  shutdown_timer_.reset();
  if (snapshotter_) snapshotter_->Abort();
}

}  // namespace kvd::daemon
