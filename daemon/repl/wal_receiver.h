// WalReceiver: a replica's one connection to its primary
// (docs/replication.md §4-5). It connects, sends HELLO (name, last and
// durable LSN, epoch history), checks WELCOME, and hands every WAL message's
// records to Engine::AppendReplicated: the same group commit and the same
// ApplyRecord as recovery. Each record's CRC and LSN are checked on receipt,
// before anything is appended; a bad message closes the link and nothing of
// it is applied. The engine fdatasyncs the records read in one loop turn as
// one group; the receiver ACKs written / durable / applied LSN after each
// fdatasync (WalFeed::OnDurable) and with every heartbeat. After a link
// loss it reconnects with backoff (100 ms doubling to 2 s).
//
// Threading: loop thread only.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "kvd/engine.h"
#include "metrics/replication_metrics.h"
#include "net/host_port.h"
#include "net/tls_context.h"
#include "net/uv_handle.h"
#include "repl/lag.h"
#include "repl/link.h"
#include "repl/snapshot_installer.h"

namespace kvd::daemon::repl {

struct PendingConnect;  // a uv_tcp_connect in flight (wal_receiver.cc)

enum class ReceiverState : uint8_t { kConnecting, kHandshake, kStreaming, kWaiting, kSnapshotTransfer };
std::string_view ReceiverStateName(ReceiverState s);

class WalReceiver : public Link::Handler {
 public:
  // `tls`: the link to the primary is mutual TLS with it; nullptr = plain.
  WalReceiver(uv_loop_t* loop, HostPort primary, std::string node_name,
              std::shared_ptr<const TlsContext> tls = nullptr);
  ~WalReceiver() override;
  void Start(Engine* engine);
  // Where a transferred snapshot is installed and the replaced WAL set
  // aside (docs/replication.md §4.6); without it a SNAPSHOT start is refused.
  void SetStorage(Env* env, std::string wal_dir, std::string snapshot_dir);
  void Stop();
  // The engine made records durable (or wrote some): acknowledge.
  void OnLocalProgress() { SendAck(); }
  // The WalFeed saw records written or an fdatasync return here, with the
  // LSN the last local fdatasync covered (reported by the committer after
  // it returned): the ACK then does not depend on whether the engine's Poll
  // ran first. ACKs only a durable LSN beyond the last one ACKed: records
  // merely written tell the primary nothing it waits for (the ACK timer
  // reports written and applied LSNs), and each ACK costs both nodes a
  // socket write, a read and a wakeup.
  void OnLocalDurable(Lsn durable_lsn);
  nlohmann::json StatusJson() const;
  // The replica's part of the replication metrics.
  void FillMetrics(ReplicationMetrics* m) const;

  // Role changes (docs/replication.md §5, §7). seen_epoch: the highest
  // epoch this node has seen (kept by Replication, across receivers and
  // restarts): frames from an older primary are refused. announced_epoch:
  // what this replica's own frames carry, the seen epoch without a takeover
  // fence that is still provisional. see_epoch(e): a frame of a newer epoch e arrived;
  // it is made durable before the frame is acted on (not OK: the link
  // closes and nothing of the frame is used). rewind(fork, last): cut the
  // log after fork (a TRUNCATE welcome); OK means the receiver reconnects
  // with the shorter log.
  struct RoleHooks {
    std::function<Epoch()> seen_epoch;
    std::function<Status(Epoch)> see_epoch;
    std::function<Status(Lsn fork, Lsn last)> rewind;
    // A transferred snapshot replaced the whole state (the log now ends at
    // its LSN): the owner's WAL feed must forget the records it cached.
    std::function<void()> after_reset;
    std::function<Epoch()> announced_epoch;  // unset: seen_epoch
  };
  void set_role_hooks(RoleHooks hooks) { hooks_ = std::move(hooks); }
  // What PROMOTE judges by (promote_check.h).
  bool heard_primary() const { return heard_primary_; }
  bool link_up() const {
    return link_ != nullptr && !link_->closed() &&
           (state_ == ReceiverState::kHandshake || state_ == ReceiverState::kStreaming);
  }
  std::chrono::steady_clock::time_point last_heard() const { return last_heard_; }
  Lsn primary_durable() const { return primary_durable_; }

  // Link::Handler
  void OnFrame(const Frame& frame) override;
  void OnClosed(const Status& why) override;

 private:
  static void OnConnect(uv_connect_t* req, int status);
  static void OnTimer(uv_timer_t* t);
  void Connect();
  void Retry(const std::string& why);
  void OnWelcome(const Frame& f);
  void OnWal(const Frame& f);
  void SendAck();
  Lsn AckableDurable() const;
  // Snapshot transfer (wal_receiver_snapshot.cc).
  void OnSnapshotFrame(const Frame& f);
  // Replaces the engine's state with the installed snapshot; false if the
  // link was failed or the engine is still busy (pending_install_ kept).
  bool InstallSnapshot();
  // After anything that may move the applied LSN or the primary's last LSN.
  void NoteLag();
  void OnTruncate(Lsn fork);
  // The epoch this replica speaks in and refuses older primaries below.
  Epoch MyEpoch() const;

  uv_loop_t* loop_;
  HostPort primary_;
  std::string node_name_;
  std::shared_ptr<const TlsContext> tls_;
  Engine* engine_ = nullptr;
  std::unique_ptr<Link> link_;
  std::unique_ptr<Link> dead_link_;  // closed inside its own callback: freed on the next timer
  UvHandle<uv_timer_t> timer_;
  ReceiverState state_ = ReceiverState::kWaiting;
  std::chrono::milliseconds backoff_{100};
  std::chrono::steady_clock::time_point retry_at_, last_heard_, last_ack_;
  Epoch primary_epoch_ = 0;
  std::string primary_name_;
  Lsn primary_last_ = 0, primary_durable_ = 0;
  uint64_t echo_sent_at_us_ = 0;
  Lsn local_durable_ = 0;  // see OnLocalDurable
  Lsn acked_durable_ = 0;  // the durable LSN of the last ACK on this link
  BehindClock behind_;  // lag_ms on this side (repl/lag.h)
  uint64_t connects_ = 0, records_received_ = 0;
  uint64_t disconnects_ = 0;  // links lost (each one a connect that ended)
  std::string last_error_;
  bool stopped_ = false;
  // The connect in flight, if any: Stop detaches it from this receiver and
  // closes its socket, so its callback (which libuv still makes) never
  // reaches a receiver that was destroyed meanwhile.
  PendingConnect* connecting_ = nullptr;
  Env* env_ = nullptr;
  std::string wal_dir_, snapshot_dir_;
  std::unique_ptr<SnapshotInstaller> installer_;
  EpochHistory primary_history_;  // from WELCOME: the new log's epochs
  std::string pending_install_;   // installed snapshot the engine has not reset to yet
  uint64_t snapshots_installed_ = 0;
  std::chrono::steady_clock::time_point last_heartbeat_;
  bool heard_primary_ = false;
  // A divergent tail inside this node's own snapshot (the rewind hook said
  // kUnsupported): HELLO asks for a full snapshot transfer (no history,
  // last LSN 0) and the engine resyncs from it (ResyncFromSnapshot: the
  // whole old state set aside). Cleared once installed.
  bool resync_ = false;
  Lsn resync_fork_ = 0;
  RoleHooks hooks_;
};

}  // namespace kvd::daemon::repl
