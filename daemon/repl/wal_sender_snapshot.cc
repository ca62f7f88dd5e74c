// WalSender, snapshot transfer (docs/replication.md §4.6): when the WAL a
// replica needs is gone, a forked child streams a snapshot of the state,
// sent as SNAPSHOT_BEGIN / SNAPSHOT_CHUNK* / SNAPSHOT_END, then the WAL after
// the snapshot's LSN as for any replica catching up.
#include <spdlog/fmt/fmt.h>

#include "repl/snapshot_messages.h"
#include "repl/wal_sender.h"
#include "sys/log.h"

namespace kvd::daemon::repl {

bool WalSender::WalOnDiskFrom(Lsn lsn) {
  std::string probe;
  Lsn last = 0;
  const Lsn upto = std::min(ctx_.feed->first_cached_lsn() - 1, ctx_.feed->last_lsn());
  return !source_.Read(lsn, upto, 1, &probe, &last).IsNotFound();
}

void WalSender::StartSnapshot(const EpochHistory& history) {
  const Epoch mine = ctx_.engine->current_epoch();
  const Lsn lsn = ctx_.engine->SnapshotLsn();
  snapshot_ = std::make_unique<SnapshotStreamer>(link_->loop());
  SnapshotStreamer::Callbacks cb;
  cb.on_chunk = [this](std::string_view chunk) { OnSnapshotChunk(chunk); };
  cb.on_done = [this](const Status& st, uint64_t bytes, uint32_t crc) { OnSnapshotDone(st, bytes, crc); };
  if (Status st = snapshot_->Start(ctx_.engine->state(), lsn, std::move(cb)); !st.ok()) {
    return link_->Fail(Code::kIOError, "snapshot_failed: " + st.ToString(), mine);
  }
  LogEvent(spdlog::level::info, Event::kReplication, lsn,
           fmt::format("replica {} ({}) needs WAL from LSN {}, which is gone: sending a snapshot at LSN {} "
                       "(child {})",
                       progress_.name, progress_.peer, next_lsn_, lsn, snapshot_->pid()));
  next_lsn_ = lsn + 1;
  progress_.snapshot_lsn = lsn;
  progress_.snapshot_bytes_sent = 0;
  state_ = SenderState::kSnapshotTransfer;
  Welcome w;
  w.primary_name = ctx_.node_name;
  w.start = StartMode::kSnapshot;
  w.start_lsn = next_lsn_;
  w.history = history;
  link_->Send(MsgType::kWelcome, mine, {EncodeWelcome(w)});
  link_->Send(MsgType::kSnapshotBegin, mine, {EncodeSnapshotBegin({lsn})});
  last_sent_ = std::chrono::steady_clock::now();
  if (ctx_.needs_changed) ctx_.needs_changed();  // hold the WAL after lsn from now on
}

void WalSender::OnSnapshotChunk(std::string_view chunk) {
  link_->Send(MsgType::kSnapshotChunk, ctx_.engine->current_epoch(), {chunk});
  progress_.snapshot_bytes_sent += chunk.size();
  last_sent_ = std::chrono::steady_clock::now();
  // Back-pressure: the pipe fills and the child waits until the link drains.
  if (link_->queued_bytes() >= Link::kHighWater) snapshot_->Pause();
}

void WalSender::OnSnapshotDone(const Status& st, uint64_t bytes, uint32_t crc) {
  const Epoch mine = ctx_.engine->current_epoch();
  if (link_->closed()) return;
  if (!st.ok()) {
    LogEvent(spdlog::level::err, Event::kReplication, progress_.snapshot_lsn,
             fmt::format("replica {}: snapshot transfer failed: {}", progress_.name, st.ToString()));
    return link_->Fail(Code::kIOError, "snapshot_failed: " + st.ToString(), mine);
  }
  link_->Send(MsgType::kSnapshotEnd, mine, {EncodeSnapshotEnd({bytes, crc})});
  progress_.sent_lsn = progress_.snapshot_lsn;
  state_ = next_lsn_ < ctx_.feed->first_cached_lsn() ? SenderState::kCatchingUp : SenderState::kStreaming;
  LogEvent(spdlog::level::info, Event::kReplication, progress_.snapshot_lsn,
           fmt::format("replica {}: snapshot at LSN {} sent ({} bytes, crc {:08x}); WAL follows from LSN {}",
                       progress_.name, progress_.snapshot_lsn, bytes, crc, next_lsn_));
  Pump();
}

}  // namespace kvd::daemon::repl
