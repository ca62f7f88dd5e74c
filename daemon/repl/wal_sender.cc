#include "repl/wal_sender.h"

#include <spdlog/fmt/fmt.h>

#include "repl/lag.h"
#include "sys/log.h"

namespace kvd::daemon::repl {
namespace {

uint64_t NowUs() { return PrimaryClockUs(); }

}  // namespace

std::string_view SenderStateName(SenderState s) {
  switch (s) {
    case SenderState::kHandshake: return "handshake";
    case SenderState::kCatchingUp: return "catching_up";
    case SenderState::kStreaming: return "streaming";
    case SenderState::kClosed: return "closed";
    case SenderState::kSnapshotTransfer: return "snapshot_transfer";
  }
  return "?";
}

WalSender::WalSender(uv_tcp_t* tcp, Context ctx, std::unique_ptr<StreamFilter> filter)
    : ctx_(std::move(ctx)),
      link_(std::make_unique<Link>(tcp, this, std::move(filter))),
      source_(ctx_.wal_dir),
      last_sent_(std::chrono::steady_clock::now()),
      last_heard_(last_sent_) {
  progress_.peer = link_->peer();
}

const SenderProgress& WalSender::progress() {
  progress_.state = state_;
  const Lsn acked = progress_.durable_lsn;
  progress_.lag_bytes = state_ == SenderState::kHandshake ? 0 : ctx_.feed->BytesAfter(acked);
  progress_.lag_ms = state_ == SenderState::kHandshake
                         ? 0
                         : PrimaryLagMs(acked, ctx_.feed->last_lsn(), progress_.echo_sent_at_us, hello_at_us_, NowUs());
  return progress_;
}

Lsn WalSender::needs_from() const {
  if (state_ == SenderState::kHandshake) return 0;
  // During and after a snapshot transfer: the WAL after the snapshot.
  if (progress_.snapshot_lsn != 0) return std::max(progress_.durable_lsn, progress_.snapshot_lsn) + 1;
  return progress_.durable_lsn + 1;
}

void WalSender::OnFrame(const Frame& f) {
  last_heard_ = std::chrono::steady_clock::now();
  const Epoch mine = ctx_.engine->current_epoch();
  if (f.epoch > mine) return NewerEpoch(f.epoch, fmt::format("a {} frame in epoch {}", MsgTypeName(f.type), f.epoch));
  switch (f.type) {
    case MsgType::kHello: return OnHello(f);
    case MsgType::kAck: return OnAck(f);
    case MsgType::kHeartbeat: return;
    case MsgType::kError: {
      auto e = DecodeError(f.body);
      link_->Close(Status::IOError("the replica refused the stream: " +
                                   (e ? e->reason : std::string("(undecodable ERROR)"))));
      return;
    }
    default:
      link_->Fail(Code::kInvalidArgument, fmt::format("unexpected {} from a replica", MsgTypeName(f.type)), mine);
  }
}

void WalSender::OnHello(const Frame& f) {
  const Epoch mine = ctx_.engine->current_epoch();
  if (state_ != SenderState::kHandshake) {
    return link_->Fail(Code::kInvalidArgument, "a second HELLO", mine);
  }
  auto hello = DecodeHello(f.body);
  if (!hello) return link_->Fail(Code::kInvalidArgument, hello.error().message(), mine);
  if (hello->protocol_version != kProtocolVersion) {
    return link_->Fail(Code::kUnsupported,
                       fmt::format("protocol version {} (this primary speaks {})", hello->protocol_version,
                                   kProtocolVersion),
                       mine);
  }
  progress_.name = hello->node_name;
  if (hello->history.current() > mine) {
    return NewerEpoch(hello->history.current(),
                      fmt::format("replica {}'s epoch history reaching epoch {}", hello->node_name,
                                  hello->history.current()));
  }
  if (ctx_.old_primary != nullptr && !ctx_.old_primary->ok()) {
    return link_->Fail(Code::kFenced, "fenced: this node is an old primary (" + ctx_.old_primary->message() + ")",
                       mine);
  }
  const Lsn my_last = ctx_.feed->last_lsn();
  const EpochHistory history = ctx_.engine->epoch_history();
  if (hello->history.empty()) {
    // No usable log (§4.1): its divergent tail is inside its own snapshot.
    // A full snapshot transfer, whatever WAL this primary still holds.
    progress_.sent_lsn = progress_.written_lsn = progress_.durable_lsn = progress_.applied_lsn = 0;
    hello_at_us_ = NowUs();
    LogEvent(spdlog::level::warn, Event::kReplication, my_last,
             fmt::format("replica {} ({}) asks for a full resync (its log cannot be cut back to a shared "
                         "prefix)",
                         progress_.name, progress_.peer));
    return StartSnapshot(history);
  }
  const Lsn fork = ForkPoint(history, my_last, hello->history, hello->last_lsn);
  // Beyond this primary's log *in the same epoch* is impossible (§5.4). A
  // last LSN beyond it in an older epoch is an old primary's divergent tail,
  // even when this primary wrote nothing since its promotion: TRUNCATE.
  if (hello->last_lsn > my_last && fork == my_last &&
      hello->history.EpochOf(hello->last_lsn) == history.EpochOf(hello->last_lsn)) {
    return link_->Fail(Code::kInvalidArgument,
                       fmt::format("future_lsn: the replica has LSN {}, this primary only {}", hello->last_lsn,
                                   my_last),
                       mine);
  }
  if (fork < hello->last_lsn) {
    // TRUNCATE (§5): the replica cuts its tail after the fork point, sets
    // it aside and reconnects; this link ends there. If the WAL after the
    // fork is gone here, its next HELLO (last LSN = fork) gets a snapshot.
    Welcome w;
    w.primary_name = ctx_.node_name;
    w.start = StartMode::kTruncate;
    w.start_lsn = fork + 1;
    w.fork_lsn = fork;
    w.history = history;
    link_->Send(MsgType::kWelcome, mine, {EncodeWelcome(w)});
    LogEvent(spdlog::level::warn, Event::kReplication, my_last,
             fmt::format("replica {} ({}) diverged after LSN {} (it has {}): told to cut its tail (TRUNCATE)",
                         progress_.name, progress_.peer, fork, hello->last_lsn));
    return;
  }
  next_lsn_ = hello->last_lsn + 1;
  progress_.sent_lsn = progress_.written_lsn = hello->last_lsn;
  progress_.durable_lsn = std::min(hello->durable_lsn, hello->last_lsn);  // never beyond what it has
  progress_.applied_lsn = progress_.durable_lsn;
  hello_at_us_ = NowUs();
  if (next_lsn_ < ctx_.feed->first_cached_lsn() && !WalOnDiskFrom(next_lsn_)) return StartSnapshot(history);
  Welcome w;
  w.primary_name = ctx_.node_name;
  w.start = StartMode::kStream;
  w.start_lsn = next_lsn_;
  w.history = history;
  link_->Send(MsgType::kWelcome, mine, {EncodeWelcome(w)});
  state_ = next_lsn_ < ctx_.feed->first_cached_lsn() ? SenderState::kCatchingUp : SenderState::kStreaming;
  if (ctx_.on_progress) ctx_.on_progress();
  Count(&ReplCounters::connects);
  if (state_ == SenderState::kCatchingUp) Count(&ReplCounters::catchups_started);
  LogEvent(spdlog::level::info, Event::kReplication, my_last,
           fmt::format("replica {} ({}) connected at LSN {}: {}", progress_.name, progress_.peer, hello->last_lsn,
                       state_ == SenderState::kCatchingUp ? "catching up from the WAL on disk" : "streaming"));
  Pump();
}

void WalSender::NewerEpoch(Epoch newer, const std::string& what) {
  const Epoch mine = ctx_.engine->current_epoch();
  const std::string why = fmt::format("newer_epoch: {} from {} ({}), this primary is in epoch {}", what,
                                      progress_.name.empty() ? "(no HELLO)" : progress_.name, progress_.peer, mine);
  // The ERROR first: the owner's fence closes every link, this one too.
  link_->Fail(Code::kFenced, why, mine);
  if (ctx_.on_newer_epoch) ctx_.on_newer_epoch(newer, why);
}

void WalSender::OnAck(const Frame& f) {
  const Epoch mine = ctx_.engine->current_epoch();
  auto ack = DecodeAck(f.body);
  if (!ack) return link_->Fail(Code::kInvalidArgument, ack.error().message(), mine);
  if (state_ == SenderState::kHandshake) return link_->Fail(Code::kInvalidArgument, "ACK before HELLO", mine);
  if (ack->written_lsn > progress_.sent_lsn) {
    return link_->Fail(Code::kInvalidArgument,
                       fmt::format("future_lsn: ACK of LSN {} but only {} was sent", ack->written_lsn,
                                   progress_.sent_lsn),
                       mine);
  }
  if (ack->durable_lsn > ack->written_lsn) {
    // Synchronous replication trusts durable_lsn: it can never pass what was written.
    return link_->Fail(Code::kInvalidArgument,
                       fmt::format("future_lsn: ACK of durable LSN {} beyond its written LSN {}", ack->durable_lsn,
                                   ack->written_lsn),
                       mine);
  }
  progress_.written_lsn = std::max(progress_.written_lsn, ack->written_lsn);
  progress_.durable_lsn = std::max(progress_.durable_lsn, ack->durable_lsn);
  progress_.applied_lsn = std::max(progress_.applied_lsn, ack->applied_lsn);
  if (ctx_.on_progress) ctx_.on_progress();
  // Only an echo of a timestamp this connection sent counts: a replica that
  // followed another primary before may still echo that one's sent_at, a
  // value from another host's clock (it would stretch lag_ms and the read
  // lease that OldestEcho feeds).
  if (ack->echo_sent_at_us >= hello_at_us_ && ack->echo_sent_at_us <= NowUs()) {
    progress_.echo_sent_at_us = std::max(progress_.echo_sent_at_us, ack->echo_sent_at_us);
  }
}

void WalSender::Pump() {
  if (state_ == SenderState::kHandshake || state_ == SenderState::kClosed || link_->closed()) return;
  if (state_ == SenderState::kSnapshotTransfer) {
    if (link_->queued_bytes() < Link::kLowWater) snapshot_->Resume();
    return;
  }
  while (!link_->closed() && link_->queued_bytes() < Link::kHighWater && next_lsn_ <= ctx_.feed->last_lsn()) {
    std::string records;
    Lsn last = 0;
    if (next_lsn_ >= ctx_.feed->first_cached_lsn()) {
      if (!ctx_.feed->ReadCached(next_lsn_, kWalChunkBytes, &records, &last)) break;
      if (state_ == SenderState::kCatchingUp) {
        state_ = SenderState::kStreaming;
        Count(&ReplCounters::catchups_finished);
        LogEvent(spdlog::level::info, Event::kReplication, next_lsn_,
                 fmt::format("replica {} caught up: streaming from LSN {}", progress_.name, next_lsn_));
      }
    } else {
      if (state_ == SenderState::kStreaming) {
        // Fell behind the feed's cache (a slow link): back to the disk.
        Count(&ReplCounters::catchups_started);
        LogEvent(spdlog::level::info, Event::kReplication, next_lsn_,
                 fmt::format("replica {} fell behind the in-memory feed: catching up from the WAL on disk at LSN {}",
                             progress_.name, next_lsn_));
      }
      state_ = SenderState::kCatchingUp;
      const Lsn upto = std::min(ctx_.feed->first_cached_lsn() - 1, ctx_.feed->last_lsn());
      Status st = source_.Read(next_lsn_, upto, kWalChunkBytes, &records, &last);
      if (!st.ok()) {
        const Code code = st.IsNotFound() ? Code::kUnsupported : st.code();
        return link_->Fail(code,
                           st.IsNotFound() ? st.message() + "; the replica receives a snapshot when it reconnects"
                                           : st.message(),
                           ctx_.engine->current_epoch());
      }
    }
    SendChunk(std::move(records), next_lsn_, last);
    next_lsn_ = last + 1;
  }
}

void WalSender::SendChunk(std::string records, Lsn first, Lsn last) {
  const WalHeader h{first, last, ctx_.feed->durable_lsn(), NowUs()};
  link_->Send(MsgType::kWal, ctx_.engine->current_epoch(), {EncodeWalHeader(h), records});
  progress_.sent_lsn = last;
  last_sent_ = std::chrono::steady_clock::now();
}

void WalSender::Tick(std::chrono::steady_clock::time_point now) {
  if (closed()) return;
  if (now - last_heard_ > kPeerTimeout) {
    link_->Close(Status::IOError("nothing heard from the replica for 5 s"));
    return;
  }
  Pump();
  // Every interval even while WAL flows: the replica's ACK echoes the
  // newest heartbeat's sent_at, which the cluster's read lease counts from
  // (docs/cluster.md §3.5).
  if (state_ != SenderState::kHandshake &&
      (now - last_sent_ >= kHeartbeatInterval || now - last_heartbeat_ >= kHeartbeatInterval)) {
    const Heartbeat hb{ctx_.feed->last_lsn(), ctx_.feed->durable_lsn(), NowUs()};
    link_->Send(MsgType::kHeartbeat, ctx_.engine->current_epoch(), {EncodeHeartbeat(hb)});
    last_sent_ = now;
    last_heartbeat_ = now;
  }
}

void WalSender::OnClosed(const Status& why) {
  if (snapshot_ && snapshot_->running()) {
    snapshot_->Abort();  // kills and reaps the child; it wrote no files
    LogEvent(spdlog::level::warn, Event::kReplication, progress_.snapshot_lsn,
             fmt::format("replica {}: snapshot transfer cut short after {} bytes", progress_.name,
                         progress_.snapshot_bytes_sent));
  }
  if (state_ != SenderState::kHandshake && state_ != SenderState::kClosed) Count(&ReplCounters::disconnects);
  state_ = SenderState::kClosed;
  progress_.error = why.ToString();
  LogEvent(spdlog::level::warn, Event::kReplication, progress_.sent_lsn,
           fmt::format("replica {} ({}) disconnected: {}", progress_.name.empty() ? "(no HELLO)" : progress_.name,
                       progress_.peer, why.ToString()));
  if (ctx_.on_progress) ctx_.on_progress();
}

}  // namespace kvd::daemon::repl
