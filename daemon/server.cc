#include "server.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "node/status_report.h"
#include "resp/resp_config.h"
#include "serve/native_codec.h"

namespace kvd::daemon {
namespace {

Dispatcher::Limits DispatchLimits(const Config& c) {
  Dispatcher::Limits l;
  l.max_scan_reply_bytes = std::max<size_t>(4096, c.max_frame_bytes / 2);
  l.snapshot_dir = c.snapshot_path;
  l.min_lsn_wait = c.replication.min_lsn_wait;
  return l;
}

std::unique_ptr<Protocol> NativeFor(const Config& c) {
  NativeCodec::Limits l;
  l.max_frame_bytes = c.max_frame_bytes;
  l.max_key_bytes = c.max_key_bytes;
  l.max_value_bytes = c.max_value_bytes;
  return std::make_unique<NativeProtocol>(l);
}

FrontEnd::Options FrontEndOptions(const Config& c, RequestLatency* latency) {
  FrontEnd::Options o;
  o.session.max_pending_reply_bytes = c.max_pending_reply_bytes;
  // Latency is measured only for the metrics endpoint: off, no cost.
  if (!c.metrics_listen.empty()) o.session.latency = latency;
  o.max_connections = c.max_connections;
  return o;
}

std::unique_ptr<RespService> MakeResp(uv_loop_t* loop, const Config& c, Dispatcher* dispatcher, DispatchHost* host,
                                     ServerCounters* counters, uint64_t* next_conn_id, RequestLatency* latency,
                                     Status* error) {
  if (!RespEnabled(c)) return nullptr;
  auto svc = RespService::Create(loop, c, dispatcher, host, counters, next_conn_id, FrontEndOptions(c, latency));
  if (!svc.has_value()) {
    *error = svc.error();
    return nullptr;
  }
  return std::move(svc).value();
}

}  // namespace

Server::Server(uv_loop_t* loop, Config config, Env* env, Notifier* notifier)
    : loop_(loop),
      started_(std::chrono::steady_clock::now()),
      config_(std::move(config), notifier),
      dispatcher_(nullptr, this, DispatchLimits(config_.config()), &counters_),
      node_(loop, &dispatcher_, &config_.config(), notifier),
      repl_(loop, config_.config()),
      native_(loop, NativeFor(config_.config()), &dispatcher_, &counters_, &next_conn_id_,
              FrontEndOptions(config_.config(), &latency_)),
      resp_(MakeResp(loop, config_.config(), &dispatcher_, this, &counters_, &next_conn_id_, &latency_,
                     &resp_error_)),
      snapshots_(loop, env, &config_.config(),
                 [this](const Status& st, Lsn lsn) { dispatcher_.OnSnapshotDone(st, lsn); }),
      housekeeping_(&config_.config(), notifier, &node_, &snapshots_,
                    Housekeeping::Hooks{
                        [this](auto now, auto timeout) {
                          for (FrontEnd* f : FrontEnds()) f->CloseIdle(now, timeout);
                        },
                        [this] {
                          size_t n = 0;
                          for (FrontEnd* f : FrontEnds()) n += f->size();
                          return n;
                        },
                        [this] { return shutdown_.serving(); },
                        [this] { return dispatcher_.pending_writes() > 0 || dispatcher_.pending_flushes() > 0; },
                    }),
      shutdown_(loop, notifier, &node_, &dispatcher_, &snapshots_, FrontEnds(), [this] { StopHandles(); }) {
  config_.set_on_applied([this](const Config& before, const Config& after) { OnConfigApplied(before, after); });
  if (resp_ != nullptr) resp_->EnableWait(loop, &repl_);
  repl_.set_env(env);
}

Server::~Server() {
  for (FrontEnd* f : FrontEnds()) f->CloseAll();
  (void)node_.CloseEngine(&dispatcher_);
  StopHandles();
}

Status Server::Start(std::unique_ptr<Engine> engine, RecoveryReport recovery) {
  node_.Adopt(std::move(engine), std::move(recovery));  // closed by the destructor if Start fails
  Engine* e = node_.engine();
  dispatcher_.set_engine(e);
  config_.set_engine(e);
  KVD_RETURN_IF_ERROR(snapshots_.Start(e, node_.recovery()));
  repl_.set_hooks({&dispatcher_, [this] { return snapshots_.running(); }});
  KVD_RETURN_IF_ERROR(repl_.Start(e, &node_));
  KVD_ASSIGN_OR_RETURN(cluster_, Coordinator::Create(loop_, config_.config(), &repl_, &node_));
  const Config& c = config_.config();
  read_barrier_ = c.replication.read_barrier == "on" || (c.replication.read_barrier == "auto" && c.cluster.enabled());
  KVD_RETURN_IF_ERROR(native_.ListenUnix(c.socket, c.socket_mode));
  KVD_RETURN_IF_ERROR(resp_error_);
  if (resp_ != nullptr) KVD_RETURN_IF_ERROR(resp_->Listen(c));
  IgnoreSigpipe();
  if (!signals_.Start(
          loop_, [this](int sig) { BeginShutdown(sig == SIGINT ? "SIGINT" : "SIGTERM"); },
          [this] {
            if (shutdown_.serving()) config_.Reload();
          })) {
    return Status::Internal("cannot install signal handlers");
  }
  if (!InitPrepare(loop_, &prepare_, this)) return Status::Internal("uv_prepare_init failed");
  // Once per loop turn, after every ready socket was read: start the next
  // commit with all writes read so far (the engine defers starting), then send
  // the replies while it runs; writes that Flush itself submits (input left
  // behind a read barrier) start right after, not a timer tick later.
  e->SetDeferredCommitStart(true);
  uv_prepare_start(prepare_.get(), [](uv_prepare_t* p) {
    auto* self = static_cast<Server*>(p->data);
    Engine* live = self->node_.engine();
    live->StartCommits();
    self->WakeParkedReads();
    self->native_.FlushDirty();
    if (self->resp_ != nullptr) self->resp_->front_end().FlushDirty();
    live->StartCommits();
  });
  if (!InitTimer(loop_, &lsn_wait_timer_, this)) return Status::Internal("uv_timer_init failed");
  KVD_RETURN_IF_ERROR(housekeeping_.Start(loop_));
  if (!c.metrics_listen.empty()) {
    KVD_RETURN_IF_ERROR(metrics_.Start(loop_, c.metrics_listen, [this](MetricsSnapshot* s) { FillMetrics(s); }));
    spdlog::info("metrics on http://{}:{}/metrics", c.metrics_listen.substr(0, c.metrics_listen.rfind(':')),
                 metrics_.port());
  }
  node_.Run();
  if (cluster_) cluster_->Start();
  return Status::Ok();
}

void Server::BeginShutdown(std::string_view why) {
  if (!cluster_) return shutdown_.Begin(why);
  cluster_->Resign([this, w = std::string(why)] { shutdown_.Begin(w); });
}

void Server::WakeParkedReads() {
  // Runs every loop turn, after whatever applied records ran in it; the
  // timer only makes sure a turn comes at the earliest deadline.
  if (!lsn_wait_timer_) return;
  uv_handle_t* timer = reinterpret_cast<uv_handle_t*>(lsn_wait_timer_.get());
  if (dispatcher_.parked_reads() == 0 && dispatcher_.held_reads() == 0 && uv_is_active(timer) == 0) {
    return;  // the usual turn: nothing to do
  }
  dispatcher_.WakeParkedReads(std::chrono::steady_clock::now());
  dispatcher_.ReleaseHeldReads(std::chrono::steady_clock::now());  // the read barrier (sync replication)
  const auto next = dispatcher_.NextParkedDeadline();
  if (!next) {
    uv_timer_stop(lsn_wait_timer_.get());
    return;
  }
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*next - std::chrono::steady_clock::now());
  uv_timer_start(lsn_wait_timer_.get(), [](uv_timer_t*) {}, static_cast<uint64_t>(std::max<int64_t>(1, wait.count())),
                 0);
}

void Server::FillMetrics(MetricsSnapshot* m) {
  m->counters = counters_;
  m->latency = latency_;
  m->uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  const SnapshotHistory& h = snapshots_.history();
  m->snapshots_succeeded = h.succeeded;
  m->snapshots_failed = h.failed;
  m->snapshot_duration_ms = h.duration_ms;
  m->snapshot_running = snapshots_.running();
  m->last_snapshot_lsn = h.have_last ? h.last.lsn : 0;
  m->rss_bytes = ProcessRssBytes();
  m->repl.role = std::string(RoleName(node_.role()));
  repl_.FillMetrics(&m->repl);
  const Engine* e = node_.engine();
  if (e == nullptr) return;
  const EngineStats st = e->stats();
  m->last_lsn = st.last_lsn;
  m->durable_lsn = st.durable_lsn;
  m->applied_lsn = st.applied_lsn;
  m->pending_records = st.pending_records;
  m->wal_bytes = st.wal.bytes;
  m->wal_segments = st.wal.segments;
  m->sync_latency_us = st.sync_latency_us;
  m->group_records = st.group_records;
  m->writes_refusing = !st.write_refusal.empty();
  m->repl.epoch = e->current_epoch();
  m->keys = e->state().size();
  m->state_bytes = e->state().MemoryBytes();
  m->data_bytes = e->state().DataBytes();
}

void Server::OnConfigApplied(const Config& before, const Config& after) {
  if (before.snapshot_interval != after.snapshot_interval) snapshots_.RestartTimer();
  if (before.durability.flush_interval != after.durability.flush_interval) {
    node_.bridge().SetFlushInterval(after.durability.flush_interval);
  }
  const ReplicationConfig &rb = before.replication, &ra = after.replication;
  if (rb.sync_replicas != ra.sync_replicas || rb.sync_timeout != ra.sync_timeout) {
    // With [cluster] the published sync set must follow in order (cluster/sync_set.h).
    const bool by_cluster = cluster_ && cluster_->ApplySync(ra.sync_replicas, ra.sync_timeout);
    if (!by_cluster) {
      if (Status st = repl_.SetSync(ra.sync_replicas, ra.sync_timeout); !st.ok()) {
        spdlog::error("applying replication.sync_replicas: {}", st.ToString());
      }
    }
  }
}

std::string Server::StatusJson() {
  StatusInputs in;
  in.config = &config_.config();
  in.engine = node_.engine();
  in.recovery = &node_.recovery();
  in.counters = &counters_;
  in.parked_reads = dispatcher_.parked_reads();
  for (FrontEnd* f : FrontEnds()) f->ReplyBytes(&in.reply_bytes, &in.largest_client_reply_bytes);
  in.snapshots = &snapshots_.history();
  in.started = started_;
  in.snapshot_running = snapshots_.running();
  if (in.snapshot_running) {
    in.snapshot_running_lsn = snapshots_.running_lsn();
    in.snapshot_started = snapshots_.running_since();
  }
  in.stopping = !shutdown_.serving();
  in.role = RoleName(node_.role());
  in.storage_warnings = &storage_warnings_;
  if (in.engine != nullptr) {
    const EngineStats st = in.engine->stats();
    in.snapshot_wal_grown = snapshots_.wal_grown(st);
    in.snapshot_wal_growth_threshold = snapshots_.wal_growth_threshold();
  }
  in.replication_json = repl_.StatusJson();
  return BuildStatusJson(in);
}

Status Server::Replicate(std::string_view primary) {
  KVD_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(std::string(primary)));
  return repl_.BecomeReplica(hp);
}

std::vector<FrontEnd*> Server::FrontEnds() {
  std::vector<FrontEnd*> all{&native_};
  if (resp_ != nullptr) all.push_back(&resp_->front_end());
  return all;
}

Session* Server::FindSession(uint64_t id) {
  if (Session* s = native_.FindSession(id)) return s;
  return resp_ != nullptr ? resp_->front_end().FindSession(id) : nullptr;
}

void Server::SessionReady(Session* s) {
  // Connection ids are unique across front ends: only the owner finds it.
  native_.SessionReady(s);
  if (resp_ != nullptr) resp_->front_end().SessionReady(s);
}

void Server::StopHandles() {
  metrics_.Stop();
  signals_.Stop();
  for (FrontEnd* f : FrontEnds()) f->StopListening();
  if (resp_ != nullptr) resp_->StopWait();
  node_.CloseHandles();
  cluster_.reset();
  repl_.Stop();
  prepare_.reset();
  lsn_wait_timer_.reset();
  housekeeping_.Stop();
  snapshots_.Close();
  shutdown_.Close();
}

}  // namespace kvd::daemon
