// ReplPrimary: the primary's replication room. It listens on
// [replication] listen (TCP through net/, loopback only until TLS), runs a
// WalSender per connected replica, feeds them from the WalFeed, and holds
// the engine's WAL retention floor at the oldest LSN a known replica still
// needs, also while it is disconnected, until the retained WAL passes
// max_retained_wal (then the most lagging absent replica is dropped, logged).
//
// Threading: loop thread only.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "kvd/engine.h"
#include "net/tcp_listener.h"
#include "repl/wal_feed.h"
#include "repl/wal_sender.h"

namespace kvd::daemon::repl {

class ReplPrimary {
 public:
  ReplPrimary(uv_loop_t* loop, const ReplicationConfig& config, std::string node_name, std::string wal_dir);
  ~ReplPrimary();
  Status Start(Engine* engine, WalFeed* feed);
  void Stop();
  // New records or a new durable LSN in the feed.
  void OnFeedUpdate();
  uint16_t port() const { return listener_.port(); }
  nlohmann::json StatusJson();
  // Called when a replica shows a newer epoch (the owner fences writes).
  void set_on_newer_epoch(std::function<void(Epoch, const std::string&)> fn) { on_newer_epoch_ = std::move(fn); }
  // Closes every replica's link (a fenced old primary feeds nobody).
  void CloseAll(const Status& why) {
    for (auto& s : senders_) s->Close(why);
  }

 private:
  static void OnTimer(uv_timer_t* t);
  void OnAccept(uv_stream_t* server);
  void Reap();
  void UpdateRetention();

  uv_loop_t* loop_;
  ReplicationConfig config_;
  std::string node_name_;
  std::string wal_dir_;
  Engine* engine_ = nullptr;
  WalFeed* feed_ = nullptr;
  TcpListener listener_;
  UvHandle<uv_timer_t> timer_;
  std::vector<std::unique_ptr<WalSender>> senders_;
  // The durable LSN of every replica seen since start, by name: the floor
  // keeps their WAL while they reconnect.
  std::map<std::string, Lsn> known_;
  Lsn floor_ = 0;
  std::function<void(Epoch, const std::string&)> on_newer_epoch_;
};

}  // namespace kvd::daemon::repl
