#include "repl/repl_primary.h"

#include <spdlog/fmt/fmt.h>

#include "net/host_port.h"
#include "repl/repl_tls.h"
#include "sys/log.h"

namespace kvd::daemon::repl {

ReplPrimary::ReplPrimary(uv_loop_t* loop, const ReplicationConfig& config, std::string node_name, std::string wal_dir,
                         std::shared_ptr<const TlsContext> tls)
    : loop_(loop),
      config_(config),
      node_name_(std::move(node_name)),
      wal_dir_(std::move(wal_dir)),
      tls_(std::move(tls)) {}

ReplPrimary::~ReplPrimary() { Stop(); }

Status ReplPrimary::Start(Engine* engine, WalFeed* feed) {
  engine_ = engine;
  feed_ = feed;
  KVD_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(config_.listen, /*allow_port0=*/true));
  KVD_RETURN_IF_ERROR(listener_.Open(loop_, hp.host, hp.port, [this](uv_stream_t* s) { OnAccept(s); })
                          .Annotate("replication.listen"));
  if (!InitTimer(loop_, &timer_, this)) return Status::Internal("uv_timer_init failed");
  const auto ms = static_cast<uint64_t>(WalSender::kHeartbeatInterval.count()) / 2;
  uv_timer_start(timer_.get(), &ReplPrimary::OnTimer, ms, ms);
  hp.port = listener_.port();
  LogEvent(spdlog::level::info, Event::kReplication, engine_->last_lsn(),
           fmt::format("primary {}: replication listening on {} ({})", node_name_, hp.ToString(),
                       tls_ ? "mutual TLS"
                       : IsLoopback(hp) ? "unencrypted, loopback only"
                                        : "UNENCRYPTED on a non-loopback address: insecure = true"));
  return Status::Ok();
}

void ReplPrimary::Stop() {
  listener_.Close();
  timer_.reset();
  if (sync_) sync_->Stop();
  senders_.clear();
  // The floor is left as it is: Stop runs at shutdown, after Engine::Close,
  // when the engine must not be asked to drop segments any more.
}

void ReplPrimary::OnAccept(uv_stream_t* server) {
  auto* tcp = new uv_tcp_t{};
  if (uv_tcp_init(loop_, tcp) != 0) {
    delete tcp;
    return;
  }
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(tcp)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  auto filter = MakeLinkFilter(tls_.get(), TlsFilter::Side::kServer);
  if (!filter) {
    LogEvent(spdlog::level::err, Event::kReplication, engine_->last_lsn(),
             "replication: cannot set up TLS for a new link: " + filter.error().message());
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  WalSender::Context ctx{engine_, feed_, wal_dir_, node_name_, [this] { OnSenderProgress(); },
                         [this] { UpdateRetention(); }, &counters_, on_newer_epoch_, &old_primary_};
  senders_.push_back(std::make_unique<WalSender>(tcp, std::move(ctx), std::move(filter).value()));
  senders_.back()->Start();
}

void ReplPrimary::OnFeedUpdate() {
  if (sync_) sync_->OnWritten(feed_->last_lsn());  // before any replica can ACK these records
  for (auto& s : senders_) s->Pump();
}

Status ReplPrimary::StartSync(std::function<void()> poll_engine) {
  sync_ = std::make_unique<SyncGate>(loop_, std::move(poll_engine));
  return sync_->Start(engine_, config_.sync_replicas, config_.sync_timeout);
}

Status ReplPrimary::ConfigureSync(uint32_t sync_replicas, std::chrono::milliseconds timeout) {
  config_.sync_replicas = sync_replicas;
  config_.sync_timeout = timeout;
  return sync_ ? sync_->Configure(sync_replicas, timeout) : Status::Ok();
}

std::vector<SyncGate::Replica> ReplPrimary::ConnectedReplicas() {
  std::vector<SyncGate::Replica> out;
  for (auto& s : senders_) {
    if (s->closed()) continue;
    const SenderProgress& p = s->progress();
    if (p.state == SenderState::kHandshake || p.name.empty()) continue;
    out.push_back({p.name, p.durable_lsn});
  }
  return out;
}

uint64_t ReplPrimary::EchoSentAtUs(const std::string& name) {
  uint64_t best = 0;
  for (auto& s : senders_) {
    if (s->closed()) continue;
    const SenderProgress& p = s->progress();
    if (p.name == name) best = std::max(best, p.echo_sent_at_us);
  }
  return best;
}

void ReplPrimary::OnSenderProgress() {
  if (sync_) sync_->Update(ConnectedReplicas());
  if (on_progress_) on_progress_();
}

uint32_t ReplPrimary::CountDurable(Lsn lsn) {
  std::map<std::string, Lsn> best;
  for (const SyncGate::Replica& r : ConnectedReplicas()) best[r.name] = std::max(best[r.name], r.durable_lsn);
  uint32_t n = 0;
  for (const auto& [name, durable] : best) n += durable >= lsn ? 1 : 0;
  return n;
}

void ReplPrimary::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<ReplPrimary*>(t->data);
  const auto now = std::chrono::steady_clock::now();
  for (auto& s : self->senders_) s->Tick(now);
  self->Reap();
  self->UpdateRetention();
  if (self->sync_) self->sync_->Update(self->ConnectedReplicas());
}

void ReplPrimary::Reap() {
  // A replica that reconnected replaces its older link.
  std::map<std::string, WalSender*> newest;
  for (auto& s : senders_) {
    const SenderProgress& p = s->progress();
    if (p.name.empty() || p.state == SenderState::kHandshake) continue;
    // Closed ones too: a replica that came and went between two timer ticks
    // is still known, and its WAL kept (the retention floor).
    known_[p.name] = std::max(known_[p.name], p.durable_lsn);
    if (s->closed()) continue;
    auto [it, inserted] = newest.emplace(p.name, s.get());
    if (!inserted) {
      it->second->Close(Status::IOError("replaced by a newer connection from the same replica"));
      it->second = s.get();
    }
  }
  std::erase_if(senders_, [](const std::unique_ptr<WalSender>& s) { return s->closed(); });
}

void ReplPrimary::UpdateRetention() {
  if (engine_ == nullptr) return;
  std::map<std::string, bool> connected;
  for (auto& s : senders_) {
    if (!s->progress().name.empty()) connected[s->progress().name] = true;
  }
  const EngineStats st = engine_->stats();
  if (st.retained_wal_bytes > config_.max_retained_wal) {
    // Too much WAL kept: give up on the absent replica furthest behind.
    auto worst = known_.end();
    for (auto it = known_.begin(); it != known_.end(); ++it) {
      if (!connected.contains(it->first) && (worst == known_.end() || it->second < worst->second)) worst = it;
    }
    if (worst != known_.end()) {
      LogEvent(spdlog::level::warn, Event::kReplication, worst->second,
               fmt::format("replica {} is away and {} bytes of WAL are retained for it (max_retained_wal {}): "
                           "no longer keeping WAL for it",
                           worst->first, st.retained_wal_bytes, config_.max_retained_wal));
      known_.erase(worst);
    }
  }
  Lsn floor = 0;
  for (const auto& [name, durable] : known_) floor = floor == 0 ? durable + 1 : std::min(floor, durable + 1);
  for (auto& s : senders_) {
    if (const Lsn need = s->needs_from(); need != 0) floor = floor == 0 ? need : std::min(floor, need);
  }
  if (floor != floor_) {
    floor_ = floor;
    engine_->SetRetentionFloor(floor);
  }
}

void ReplPrimary::FillMetrics(ReplicationMetrics* m) {
  for (auto& s : senders_) {
    if (s->closed()) continue;
    const SenderProgress& p = s->progress();
    m->replicas.push_back({p.name, std::string(SenderStateName(p.state)), p.sent_lsn, p.durable_lsn, p.applied_lsn,
                           p.lag_bytes, p.lag_ms});
  }
  m->replica_connects = counters_.connects;
  m->replica_disconnects = counters_.disconnects;
  m->catchups_started = counters_.catchups_started;
  m->catchups_finished = counters_.catchups_finished;
}

nlohmann::json ReplPrimary::StatusJson() {
  nlohmann::json replicas = nlohmann::json::array();
  for (auto& s : senders_) {
    const SenderProgress& p = s->progress();
    if (s->closed()) continue;
    replicas.push_back({{"name", p.name},
                        {"address", p.peer},
                        {"state", std::string(SenderStateName(p.state))},
                        {"sent_lsn", p.sent_lsn},
                        {"written_lsn", p.written_lsn},
                        {"durable_lsn", p.durable_lsn},
                        {"applied_lsn", p.applied_lsn},
                        {"lag_bytes", p.lag_bytes},
                        {"lag_ms", p.lag_ms},
                        {"lag_lsn", feed_->last_lsn() - std::min(feed_->last_lsn(), p.durable_lsn)},
                        {"snapshot_lsn", p.snapshot_lsn},
                        {"snapshot_bytes_sent", p.snapshot_bytes_sent}});
  }
  nlohmann::json away = nlohmann::json::array();
  for (const auto& [name, durable] : known_) {
    bool here = false;
    for (auto& s : senders_) here = here || (!s->closed() && s->progress().name == name);
    if (!here) away.push_back({{"name", name}, {"durable_lsn", durable}});
  }
  return {{"listen", config_.listen},
          {"port", listener_.port()},
          {"replicas", replicas},
          {"disconnected", away},
          {"retention_floor", floor_},
          {"sync", sync_ ? sync_->StatusJson() : nlohmann::json::object()}};
}

}  // namespace kvd::daemon::repl
