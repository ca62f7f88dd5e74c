#include "server.h"

#include <algorithm>

#include "node/status_report.h"
#include "serve/native_codec.h"

namespace kvd::daemon {
namespace {

Dispatcher::Limits DispatchLimits(const Config& c) {
  Dispatcher::Limits l;
  l.max_scan_reply_bytes = std::max<size_t>(4096, c.max_frame_bytes / 2);
  return l;
}

std::unique_ptr<Protocol> NativeFor(const Config& c) {
  NativeCodec::Limits l;
  l.max_frame_bytes = c.max_frame_bytes;
  l.max_key_bytes = c.max_key_bytes;
  l.max_value_bytes = c.max_value_bytes;
  return std::make_unique<NativeProtocol>(l);
}

FrontEnd::Options FrontEndOptions(const Config& c) {
  FrontEnd::Options o;
  o.session.max_pending_reply_bytes = c.max_pending_reply_bytes;
  o.max_connections = c.max_connections;
  return o;
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
              FrontEndOptions(config_.config())),
      snapshots_(loop, env, &config_.config(),
                 [this](const Status& st, Lsn lsn) { dispatcher_.OnSnapshotDone(st, lsn); }),
      housekeeping_(&config_.config(), notifier, &node_, &snapshots_,
                    Housekeeping::Hooks{
                        [this](auto now, auto timeout) { native_.CloseIdle(now, timeout); },
                        [this] { return native_.size(); },
                        [this] { return shutdown_.serving(); },
                        [this] { return dispatcher_.pending_writes() > 0 || dispatcher_.pending_flushes() > 0; },
                    }),
      shutdown_(loop, notifier, &node_, &dispatcher_, &snapshots_, {&native_}, [this] { StopHandles(); }) {
  config_.set_on_applied([this](const Config& before, const Config& after) { OnConfigApplied(before, after); });
}

Server::~Server() {
  native_.CloseAll();
  (void)node_.CloseEngine(&dispatcher_);
  StopHandles();
}

Status Server::Start(std::unique_ptr<Engine> engine, RecoveryReport recovery) {
  node_.Adopt(std::move(engine), std::move(recovery));  // closed by the destructor if Start fails
  Engine* e = node_.engine();
  dispatcher_.set_engine(e);
  config_.set_engine(e);
  KVD_RETURN_IF_ERROR(snapshots_.Start(e, node_.recovery().snapshot_lsn));
  KVD_RETURN_IF_ERROR(repl_.Start(e, &node_));
  const Config& c = config_.config();
  KVD_RETURN_IF_ERROR(native_.ListenUnix(c.socket, c.socket_mode));
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
    self->native_.FlushDirty();
    live->StartCommits();
  });
  KVD_RETURN_IF_ERROR(housekeeping_.Start(loop_));
  node_.Run();
  return Status::Ok();
}

void Server::OnConfigApplied(const Config& before, const Config& after) {
  if (before.snapshot_interval != after.snapshot_interval) snapshots_.RestartTimer();
  if (before.durability.flush_interval != after.durability.flush_interval) {
    node_.bridge().SetFlushInterval(after.durability.flush_interval);
  }
}

std::string Server::StatusJson() {
  StatusInputs in;
  in.config = &config_.config();
  in.engine = node_.engine();
  in.recovery = &node_.recovery();
  in.counters = &counters_;
  native_.ReplyBytes(&in.reply_bytes, &in.largest_client_reply_bytes);
  in.snapshots = &snapshots_.history();
  in.started = started_;
  in.snapshot_running = snapshots_.running();
  if (in.snapshot_running) {
    in.snapshot_running_lsn = snapshots_.running_lsn();
    in.snapshot_started = snapshots_.running_since();
  }
  in.stopping = !shutdown_.serving();
  in.role = RoleName(node_.role());
  in.replication_json = repl_.StatusJson();
  return BuildStatusJson(in);
}

void Server::StopHandles() {
  signals_.Stop();
  native_.StopListening();
  node_.CloseHandles();
  repl_.Stop();
  prepare_.reset();
  housekeeping_.Stop();
  snapshots_.Close();
  shutdown_.Close();
}

}  // namespace kvd::daemon
