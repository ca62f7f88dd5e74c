#include "repl/wal_receiver.h"

#include <spdlog/fmt/fmt.h>

#include "kvd/wal.h"
#include "repl/repl_tls.h"
#include "sys/log.h"

namespace kvd::daemon::repl {
namespace {

constexpr auto kTick = std::chrono::milliseconds(50);
constexpr auto kAckInterval = std::chrono::milliseconds(200);
constexpr auto kPeerTimeout = std::chrono::seconds(5);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);

}  // namespace

struct PendingConnect {
  uv_connect_t req;
  WalReceiver* receiver;  // nullptr once the receiver stopped (its socket is closed then)
  uv_tcp_t* tcp;
};

namespace {

void CloseAndDelete(uv_tcp_t* tcp) {
  uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
}

}  // namespace

std::string_view ReceiverStateName(ReceiverState s) {
  switch (s) {
    case ReceiverState::kConnecting: return "connecting";
    case ReceiverState::kHandshake: return "handshake";
    case ReceiverState::kStreaming: return "streaming";
    case ReceiverState::kWaiting: return "waiting_to_reconnect";
    case ReceiverState::kSnapshotTransfer: return "snapshot_transfer";
  }
  return "?";
}

WalReceiver::WalReceiver(uv_loop_t* loop, HostPort primary, std::string node_name,
                         std::shared_ptr<const TlsContext> tls)
    : loop_(loop), primary_(std::move(primary)), node_name_(std::move(node_name)), tls_(std::move(tls)) {}

WalReceiver::~WalReceiver() { Stop(); }

void WalReceiver::Start(Engine* engine) {
  engine_ = engine;
  if (InitTimer(loop_, &timer_, this)) {
    uv_timer_start(timer_.get(), &WalReceiver::OnTimer, kTick.count(), kTick.count());
  }
  Connect();
}

void WalReceiver::Stop() {
  stopped_ = true;
  if (connecting_ != nullptr) {
    // Cancels the connect: its callback comes with UV_ECANCELED, detached.
    connecting_->receiver = nullptr;
    CloseAndDelete(connecting_->tcp);
    connecting_ = nullptr;
  }
  timer_.reset();
  link_.reset();
  dead_link_.reset();
}

void WalReceiver::Connect() {
  if (stopped_) return;
  sockaddr_storage addr{};
  if (uv_ip4_addr(primary_.host.c_str(), primary_.port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(primary_.host.c_str(), primary_.port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return Retry("bad primary address " + primary_.ToString());
  }
  auto* tcp = new uv_tcp_t{};
  if (uv_tcp_init(loop_, tcp) != 0) {
    delete tcp;
    return Retry("uv_tcp_init failed");
  }
  auto* req = new PendingConnect{{}, this, tcp};
  state_ = ReceiverState::kConnecting;
  ++connects_;
  const int r = uv_tcp_connect(&req->req, tcp, reinterpret_cast<const sockaddr*>(&addr), &WalReceiver::OnConnect);
  if (r != 0) {
    delete req;
    CloseAndDelete(tcp);
    return Retry(std::string("connect: ") + uv_strerror(r));
  }
  connecting_ = req;
}

void WalReceiver::OnConnect(uv_connect_t* r, int status) {
  auto* req = reinterpret_cast<PendingConnect*>(r);
  WalReceiver* self = req->receiver;
  uv_tcp_t* tcp = req->tcp;
  delete req;
  if (self == nullptr) return;  // stopped (perhaps destroyed) meanwhile: Stop closed the socket
  self->connecting_ = nullptr;
  if (status < 0) {
    CloseAndDelete(tcp);
    return self->Retry(fmt::format("cannot connect to the primary at {}: {}", self->primary_.ToString(),
                                   uv_strerror(status)));
  }
  auto filter = MakeLinkFilter(self->tls_.get(), TlsFilter::Side::kClient);
  if (!filter) {
    CloseAndDelete(tcp);
    return self->Retry("cannot set up TLS: " + filter.error().message());
  }
  self->link_ = std::make_unique<Link>(tcp, self, std::move(filter).value());
  self->state_ = ReceiverState::kHandshake;
  self->link_->Start();
  if (self->link_ == nullptr || self->link_->closed()) return;  // OnClosed ran: a retry is due
  self->last_heard_ = std::chrono::steady_clock::now();
  Hello h;
  h.node_name = self->node_name_;
  if (!self->resync_) {
    h.last_lsn = self->engine_->last_lsn();
    h.durable_lsn = self->engine_->durable_lsn();
    h.history = self->engine_->epoch_history();
  }  // else no history, last LSN 0: a full snapshot transfer (§4.1)
  self->acked_durable_ = h.durable_lsn;  // the primary starts from HELLO's
  self->link_->Send(MsgType::kHello, self->MyEpoch(), {EncodeHello(h)});
}

void WalReceiver::Retry(const std::string& why) {
  if (stopped_) return;
  if (why != last_error_ || state_ == ReceiverState::kStreaming) {
    LogEvent(spdlog::level::warn, Event::kReplication, engine_ != nullptr ? engine_->last_lsn() : 0,
             fmt::format("replica {}: link to the primary {} lost: {}; reconnecting in {} ms", node_name_,
                         primary_.ToString(), why, backoff_.count()));
  }
  last_error_ = why;
  state_ = ReceiverState::kWaiting;
  retry_at_ = std::chrono::steady_clock::now() + backoff_;
  backoff_ = std::min(backoff_ * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kMaxBackoff));
}

void WalReceiver::OnClosed(const Status& why) {
  if (installer_ && installer_->active()) {
    // The previous state is untouched: only incoming.tmp existed.
    LogEvent(spdlog::level::warn, Event::kReplication, engine_->last_lsn(),
             fmt::format("replica {}: snapshot transfer cut short after {} bytes; keeping the previous state",
                         node_name_, installer_->bytes()));
    installer_->Abort();
  }
  if (resync_ && !pending_install_.empty()) {
    (void)env_->RemoveFile(pending_install_);  // a verified copy of the primary's, not yet installed
  }
  pending_install_.clear();  // installed on disk: a restart recovers from it; the engine keeps its state until then
  // Called from inside the link's own callback: free it later.
  dead_link_ = std::move(link_);
  ++disconnects_;
  Retry(why.ToString());
}

Epoch WalReceiver::MyEpoch() const {
  const Epoch announced = hooks_.announced_epoch ? hooks_.announced_epoch()
                          : hooks_.seen_epoch    ? hooks_.seen_epoch()
                                                 : 0;
  return std::max(engine_->current_epoch(), announced);
}

void WalReceiver::OnFrame(const Frame& f) {
  last_heard_ = std::chrono::steady_clock::now();
  const Epoch mine = MyEpoch();
  const Epoch seen = std::max(engine_->current_epoch(), hooks_.seen_epoch ? hooks_.seen_epoch() : 0);
  if (f.epoch < seen) {
    // An old primary (one a failover left behind, or one this node fenced
    // to take over from it): none of its records are accepted. Logged once
    // per connection attempt. The refusal carries `mine`: a fence still
    // provisional is not shown to that primary (Replication::FenceEpoch).
    LogEvent(spdlog::level::warn, Event::kReplication, engine_->last_lsn(),
             fmt::format("replica {}: refusing the primary at {}: it is in epoch {}, this replica has seen epoch {} "
                         "(stale_epoch{})",
                         node_name_, primary_.ToString(), f.epoch, seen,
                         mine < seen ? "; a takeover fence, not announced yet" : ""));
    return link_->Fail(Code::kFenced,
                       fmt::format("stale_epoch: the primary is in epoch {}, this replica already in {}", f.epoch,
                                   seen),
                       mine);
  }
  if (hooks_.see_epoch && f.epoch > hooks_.seen_epoch()) {
    // A newer epoch is durable here before this replica acts on it: after a
    // restart (or a cut that drops it from the history) it still refuses
    // the primaries that epoch replaced.
    if (Status st = hooks_.see_epoch(f.epoch); !st.ok()) {
      return link_->Close(Status(st.code(), "cannot keep the primary's epoch " + std::to_string(f.epoch) + ": " +
                                                st.message()));
    }
  }
  heard_primary_ = true;
  primary_epoch_ = f.epoch;
  switch (f.type) {
    case MsgType::kWelcome: return OnWelcome(f);
    case MsgType::kWal: return OnWal(f);
    case MsgType::kSnapshotBegin:
    case MsgType::kSnapshotChunk:
    case MsgType::kSnapshotEnd: return OnSnapshotFrame(f);
    case MsgType::kHeartbeat: {
      auto hb = DecodeHeartbeat(f.body);
      if (!hb) return link_->Fail(Code::kInvalidArgument, hb.error().message(), mine);
      primary_last_ = hb->last_lsn;
      primary_durable_ = hb->durable_lsn;
      echo_sent_at_us_ = hb->sent_at_us;
      NoteLag();
      return;
    }
    case MsgType::kError: {
      auto e = DecodeError(f.body);
      const std::string reason = e ? e->reason : std::string("(undecodable ERROR)");
      LogEvent(spdlog::level::err, Event::kReplication, engine_->last_lsn(),
               fmt::format("replica {}: the primary refused the stream: {}", node_name_, reason));
      return link_->Close(Status::IOError("refused by the primary: " + reason));
    }
    default:
      return link_->Fail(Code::kInvalidArgument, fmt::format("unexpected {} from the primary", MsgTypeName(f.type)),
                         mine);
  }
}

void WalReceiver::OnWelcome(const Frame& f) {
  const Epoch mine = engine_->current_epoch();
  auto w = DecodeWelcome(f.body);
  if (!w) return link_->Fail(Code::kInvalidArgument, w.error().message(), mine);
  if (state_ != ReceiverState::kHandshake) return link_->Fail(Code::kInvalidArgument, "a second WELCOME", mine);
  if (w->start == StartMode::kSnapshot && installer_ != nullptr && w->start_lsn > 0) {
    primary_name_ = w->primary_name;
    primary_history_ = w->history;
    state_ = ReceiverState::kSnapshotTransfer;
    LogEvent(spdlog::level::info, Event::kReplication, engine_->last_lsn(),
             fmt::format("replica {}: primary {} ({}) no longer has the WAL after LSN {}: receiving a snapshot "
                         "at LSN {}",
                         node_name_, w->primary_name, primary_.ToString(), engine_->last_lsn(), w->start_lsn - 1));
    return;
  }
  if (resync_) {
    return link_->Fail(Code::kInvalidArgument,
                       fmt::format("this replica asked for a snapshot transfer; the primary offers start mode {}",
                                   static_cast<int>(w->start)),
                       mine);
  }
  if (w->start == StartMode::kTruncate && hooks_.rewind) {
    if (w->fork_lsn >= engine_->last_lsn() || w->start_lsn != w->fork_lsn + 1) {
      return link_->Fail(Code::kInvalidArgument,
                         fmt::format("TRUNCATE after LSN {} (start {}) but this replica's last LSN is {}", w->fork_lsn,
                                     w->start_lsn, engine_->last_lsn()),
                         mine);
    }
    primary_name_ = w->primary_name;
    return OnTruncate(w->fork_lsn);
  }
  if (w->start != StartMode::kStream || w->start_lsn != engine_->last_lsn() + 1) {
    return link_->Fail(Code::kUnsupported,
                       fmt::format("the primary offers start mode {} at LSN {}; this replica can only stream from "
                                   "LSN {}",
                                   static_cast<int>(w->start), w->start_lsn, engine_->last_lsn() + 1),
                       mine);
  }
  primary_name_ = w->primary_name;
  state_ = ReceiverState::kStreaming;
  backoff_ = std::chrono::milliseconds(100);
  last_error_.clear();
  LogEvent(spdlog::level::info, Event::kReplication, engine_->last_lsn(),
           fmt::format("replica {}: streaming from primary {} ({}) at LSN {}", node_name_, primary_name_,
                       primary_.ToString(), w->start_lsn));
}

void WalReceiver::OnWal(const Frame& f) {
  const Epoch mine = engine_->current_epoch();
  if (!pending_install_.empty() && !InstallSnapshot()) {
    if (link_ != nullptr && !link_->closed()) {
      link_->Fail(Code::kBusy, "the replica could not switch to the transferred snapshot yet", mine);
    }
    return;
  }
  if (state_ != ReceiverState::kStreaming) return link_->Fail(Code::kInvalidArgument, "WAL before WELCOME", mine);
  auto m = DecodeWal(f.body);
  if (!m) return link_->Fail(Code::kInvalidArgument, m.error().message(), mine);
  // Verify everything before anything is appended: every CRC, LSNs that
  // continue ours exactly and match the message's header.
  Lsn expect = engine_->last_lsn() + 1;
  if (m->header.first_lsn != expect) {
    return link_->Fail(Code::kInvalidArgument,
                       fmt::format("bad_record: WAL message starts at LSN {}, expected {}", m->header.first_lsn,
                                   expect),
                       mine);
  }
  Status st = ForEachVerifiedRecord(m->records, [&](const WalRecord& rec) {
    if (rec.lsn != expect) {
      return Status::InvalidArgument(fmt::format("LSN {} where {} was expected", rec.lsn, expect));
    }
    ++expect;
    return Status::Ok();
  });
  if (st.ok() && expect - 1 != m->header.last_lsn) {
    st = Status::InvalidArgument(fmt::format("the message says it ends at LSN {}, its records at {}",
                                             m->header.last_lsn, expect - 1));
  }
  if (!st.ok()) return link_->Fail(Code::kInvalidArgument, "bad_record: " + st.message(), mine);
  // What the primary had durable is known even if the append below fails
  // (a full disk): PROMOTE judges by it.
  primary_last_ = std::max(primary_last_, m->header.last_lsn);
  primary_durable_ = std::max(primary_durable_, m->header.primary_durable_lsn);
  auto ticket = engine_->AppendReplicated(std::as_bytes(std::span(m->records.data(), m->records.size())));
  if (!ticket) {
    LogEvent(spdlog::level::err, Event::kReplication, engine_->last_lsn(),
             fmt::format("replica {}: cannot append records {}..{}: {}", node_name_, m->header.first_lsn,
                         m->header.last_lsn, ticket.error().ToString()));
    return link_->Fail(ticket.error().code(), "replica cannot append: " + ticket.error().message(), mine);
  }
  records_received_ += m->header.last_lsn - m->header.first_lsn + 1;
  primary_last_ = std::max(primary_last_, m->header.last_lsn);
  primary_durable_ = std::max(primary_durable_, m->header.primary_durable_lsn);
  echo_sent_at_us_ = m->header.sent_at_us;
  NoteLag();
}

void WalReceiver::NoteLag() {
  if (engine_ != nullptr) behind_.Note(engine_->applied_lsn(), primary_last_, std::chrono::steady_clock::now());
}

void WalReceiver::OnTruncate(Lsn fork) {
  const Lsn last = engine_->last_lsn();
  LogEvent(spdlog::level::warn, Event::kReplication, last,
           fmt::format("replica {}: primary {} ({}) says this log diverged after LSN {}: cutting LSNs {}..{}",
                       node_name_, primary_name_, primary_.ToString(), fork, fork + 1, last));
  Status st = hooks_.rewind(fork, last);
  if (st.code() == Code::kUnsupported) {
    // The tail is inside a snapshot of this node: only a whole new state
    // from the primary helps. Ask for it on the next connect.
    LogEvent(spdlog::level::warn, Event::kReplication, last,
             fmt::format("replica {}: the divergent tail after LSN {} cannot be cut ({}): asking the primary for a "
                         "snapshot transfer; this node's snapshots and WAL will be set aside, not deleted",
                         node_name_, fork, st.message()));
    resync_ = true;
    resync_fork_ = fork;
    backoff_ = std::chrono::milliseconds(100);
    return link_->Close(Status::IOError("resyncing by snapshot transfer; reconnecting"));
  }
  if (!st.ok()) {
    LogEvent(spdlog::level::err, Event::kReplication, engine_->last_lsn(),
             fmt::format("replica {}: cannot cut the divergent tail after LSN {}: {}", node_name_, fork,
                         st.ToString()));
    return link_->Close(Status(st.code(), "cannot cut the divergent tail: " + st.message()));
  }
  // What the feed reported durable may lie beyond the cut: from now on only
  // an fdatasync of the new records may be acknowledged as durable.
  local_durable_ = engine_->durable_lsn();
  // Reconnect at once with the shorter log: the primary streams from fork + 1.
  backoff_ = std::chrono::milliseconds(100);
  link_->Close(Status::IOError(fmt::format("the log was cut after LSN {}; reconnecting", fork)));
}

Lsn WalReceiver::AckableDurable() const {
  // Only what an fdatasync here covered (never what was merely written),
  // which synchronous replication on the primary relies on.
  return std::min(engine_->last_lsn(), std::max(engine_->durable_lsn(), local_durable_));
}

void WalReceiver::OnLocalDurable(Lsn durable_lsn) {
  local_durable_ = std::max(local_durable_, durable_lsn);
  if (AckableDurable() > acked_durable_) {
    SendAck();
  } else {
    NoteLag();
  }
}

void WalReceiver::SendAck() {
  NoteLag();  // after each fdatasync (records applied) and every ACK interval
  if (link_ == nullptr || link_->closed() || state_ != ReceiverState::kStreaming) return;
  const Lsn durable = AckableDurable();
  const Ack a{engine_->last_lsn(), durable, engine_->applied_lsn(), echo_sent_at_us_};
  link_->Send(MsgType::kAck, MyEpoch(), {EncodeAck(a)});
  acked_durable_ = durable;
  last_ack_ = std::chrono::steady_clock::now();
}

void WalReceiver::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<WalReceiver*>(t->data);
  self->dead_link_.reset();
  const auto now = std::chrono::steady_clock::now();
  if (self->state_ == ReceiverState::kWaiting) {
    if (now >= self->retry_at_) self->Connect();
    return;
  }
  if (self->link_ == nullptr) return;
  if (!self->pending_install_.empty()) (void)self->InstallSnapshot();
  if (self->state_ == ReceiverState::kSnapshotTransfer && self->link_ != nullptr && !self->link_->closed() &&
      now - self->last_heartbeat_ >= kAckInterval) {
    // No ACK while the state is being replaced; heartbeats keep the link.
    const Heartbeat hb{self->engine_->last_lsn(), self->engine_->durable_lsn(), 0};
    self->link_->Send(MsgType::kHeartbeat, self->engine_->current_epoch(), {EncodeHeartbeat(hb)});
    self->last_heartbeat_ = now;
  }
  if (self->link_ == nullptr) return;
  if ((self->state_ == ReceiverState::kStreaming || self->state_ == ReceiverState::kHandshake ||
       self->state_ == ReceiverState::kSnapshotTransfer) &&
      now - self->last_heard_ > kPeerTimeout) {
    self->link_->Close(Status::IOError("nothing heard from the primary for 5 s"));
    return;
  }
  if (self->state_ == ReceiverState::kStreaming && now - self->last_ack_ >= kAckInterval) self->SendAck();
}

void WalReceiver::FillMetrics(ReplicationMetrics* m) const {
  m->receiver = true;
  m->receiver_streaming = state_ == ReceiverState::kStreaming;
  m->receiver_connects = connects_;
  m->receiver_disconnects = disconnects_;
  m->records_received = records_received_;
  m->receiver_lag_ms =
      engine_ != nullptr ? behind_.LagMs(engine_->applied_lsn(), primary_last_, std::chrono::steady_clock::now()) : 0;
  m->primary_last_lsn = primary_last_;
}

nlohmann::json WalReceiver::StatusJson() const {
  const auto now = std::chrono::steady_clock::now();
  return {{"primary", primary_.ToString()},
          {"primary_name", primary_name_},
          {"state", std::string(ReceiverStateName(state_))},
          {"primary_epoch", primary_epoch_},
          {"primary_last_lsn", primary_last_},
          {"primary_durable_lsn", primary_durable_},
          {"written_lsn", engine_ != nullptr ? engine_->last_lsn() : 0},
          {"durable_lsn", engine_ != nullptr ? engine_->durable_lsn() : 0},
          {"applied_lsn", engine_ != nullptr ? engine_->applied_lsn() : 0},
          {"lag_lsn", engine_ != nullptr && primary_last_ > engine_->applied_lsn() ? primary_last_ - engine_->applied_lsn()
                                                                                    : 0},
          {"lag_ms", engine_ != nullptr ? behind_.LagMs(engine_->applied_lsn(), primary_last_, now) : 0},
          {"last_heard_ms", state_ == ReceiverState::kStreaming
                                ? std::chrono::duration_cast<std::chrono::milliseconds>(now - last_heard_).count()
                                : 0},
          {"records_received", records_received_},
          {"snapshot_lsn", installer_ != nullptr && installer_->active() ? installer_->snapshot_lsn() : 0},
          {"snapshot_bytes_received", installer_ != nullptr ? installer_->bytes() : 0},
          {"snapshots_installed", snapshots_installed_},
          {"heard_primary", heard_primary_},
          {"silent_ms", heard_primary_ ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - last_heard_)
                                             .count()
                                       : 0},
          {"connects", connects_},
          {"last_error", last_error_}};
}

}  // namespace kvd::daemon::repl
