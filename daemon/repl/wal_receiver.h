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

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "kvd/engine.h"
#include "metrics/replication_metrics.h"
#include "net/host_port.h"
#include "net/uv_handle.h"
#include "repl/lag.h"
#include "repl/link.h"

namespace kvd::daemon::repl {

enum class ReceiverState : uint8_t { kConnecting, kHandshake, kStreaming, kWaiting };
std::string_view ReceiverStateName(ReceiverState s);

class WalReceiver : public Link::Handler {
 public:
  WalReceiver(uv_loop_t* loop, HostPort primary, std::string node_name);
  ~WalReceiver() override;
  void Start(Engine* engine);
  void Stop();
  // The engine made records durable (or wrote some): acknowledge.
  void OnLocalProgress() { SendAck(); }
  nlohmann::json StatusJson() const;
  // The replica's part of the replication metrics.
  void FillMetrics(ReplicationMetrics* m) const;

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
  // After anything that may move the applied LSN or the primary's last LSN.
  void NoteLag();

  uv_loop_t* loop_;
  HostPort primary_;
  std::string node_name_;
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
  BehindClock behind_;  // lag_ms on this side (repl/lag.h)
  uint64_t connects_ = 0, records_received_ = 0;
  uint64_t disconnects_ = 0;  // links lost (each one a connect that ended)
  std::string last_error_;
  bool stopped_ = false;
};

}  // namespace kvd::daemon::repl
