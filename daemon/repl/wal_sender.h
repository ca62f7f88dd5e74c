// WalSender: the primary's end of one replica's connection
// (docs/replication.md §4-5). It waits for HELLO, finds where the replica's
// log meets ours, answers WELCOME, then streams WAL messages: from the
// segments on disk while the replica is behind the WalFeed's cache
// (catching_up), then from the cache as records are written (streaming).
// It reads the replica's ACKs (written / durable / applied LSN) and sends
// HEARTBEATs on an idle link.
//
// Threading: loop thread only. Owned by the ReplPrimary, which destroys it
// after it closed (never from inside one of its callbacks).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "kvd/engine.h"
#include "repl/link.h"
#include "repl/snapshot_streamer.h"
#include "repl/repl_counters.h"
#include "repl/wal_feed.h"
#include "repl/wal_source.h"

namespace kvd::daemon::repl {

enum class SenderState : uint8_t { kHandshake, kCatchingUp, kStreaming, kClosed, kSnapshotTransfer };
std::string_view SenderStateName(SenderState s);  // "handshake", "catching_up", ...

struct SenderProgress {
  std::string name;  // the replica's node name (from HELLO)
  std::string peer;  // its address
  SenderState state = SenderState::kHandshake;
  Lsn sent_lsn = 0, written_lsn = 0, durable_lsn = 0, applied_lsn = 0;
  uint64_t lag_bytes = 0;  // WAL written here that the replica has not made durable
  uint64_t lag_ms = 0;     // repl/lag.h: PrimaryLagMs
  uint64_t echo_sent_at_us = 0;  // the newest ACK's echo of our sent_at (primary's clock)
  std::string error;       // why it closed
  Lsn snapshot_lsn = 0;              // the snapshot transferred (0: none)
  uint64_t snapshot_bytes_sent = 0;  // of it, so far
};

class WalSender : public Link::Handler {
 public:
  struct Context {
    const Engine* engine = nullptr;
    WalFeed* feed = nullptr;
    std::string wal_dir;
    std::string node_name;
    // After the handshake, each ACK and the close: the replica's durable
    // LSN may have changed (synchronous replication, WAIT). May be empty.
    std::function<void()> on_progress;
    // The oldest LSN this sender needs moved (a snapshot transfer began):
    // the owner updates the retention floor at once.
    std::function<void()> needs_changed;
    ReplCounters* counters = nullptr;  // the primary's, for metrics; may be null (tests)
    // A frame or a HELLO's history showed a newer epoch: this primary is an
    // old one (docs/replication.md §7). The owner fences writes.
    std::function<void(Epoch newer, const std::string& why)> on_newer_epoch;
    // Not OK once the owner was fenced as an old primary: a HELLO is refused
    // with it. Not the engine's write fence: a switchover fences writes
    // too (kFenced) and still feeds its replicas. May be null (tests).
    const Status* old_primary = nullptr;
  };
  // `filter`: the link's TLS (server side); nullptr = plain.
  WalSender(uv_tcp_t* tcp, Context ctx, std::unique_ptr<StreamFilter> filter = nullptr);

  void Start() { link_->Start(); }
  // New records in the feed, or room on the link: send what is due.
  void Pump();
  // Called every heartbeat interval: heartbeat an idle link, time out a silent peer.
  void Tick(std::chrono::steady_clock::time_point now);
  void Close(const Status& why) { link_->Close(why); }

  bool closed() const { return state_ == SenderState::kClosed; }
  const SenderProgress& progress();
  // The oldest LSN this replica may still need (its durable LSN + 1, or the
  // LSN it asked for); 0 before the handshake.
  Lsn needs_from() const;

  static constexpr auto kHeartbeatInterval = std::chrono::milliseconds(200);
  static constexpr auto kPeerTimeout = std::chrono::seconds(5);

  // Link::Handler
  void OnFrame(const Frame& frame) override;
  void OnClosed(const Status& why) override;
  void OnWritable() override { Pump(); }

 private:
  void OnHello(const Frame& f);
  void OnAck(const Frame& f);
  void SendChunk(std::string records, Lsn first, Lsn last);
  // Snapshot transfer (wal_sender_snapshot.cc).
  bool WalOnDiskFrom(Lsn lsn);
  void StartSnapshot(const EpochHistory& history);
  void OnSnapshotChunk(std::string_view chunk);
  void OnSnapshotDone(const Status& st, uint64_t bytes, uint32_t crc);
  void Count(uint64_t ReplCounters::*field) {
    if (ctx_.counters != nullptr) ++(ctx_.counters->*field);
  }
  // Sees a newer epoch: tells the owner (which fences) and closes.
  void NewerEpoch(Epoch newer, const std::string& what);

  Context ctx_;
  std::unique_ptr<Link> link_;
  WalSource source_;
  SenderState state_ = SenderState::kHandshake;
  SenderProgress progress_;
  Lsn next_lsn_ = 0;  // the next record to send
  std::chrono::steady_clock::time_point last_sent_, last_heard_;
  std::chrono::steady_clock::time_point last_heartbeat_{};
  std::unique_ptr<SnapshotStreamer> snapshot_;
  uint64_t hello_at_us_ = 0;  // when the handshake completed (stands in for an echo until the first ACK)
};

}  // namespace kvd::daemon::repl
