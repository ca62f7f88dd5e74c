// MemberPublisher: keeps `<prefix>/members/<name>` in etcd up to date, on a
// lease of this node's own (docs/cluster.md §2), so the key disappears ttl
// after the node dies and `kvctl cluster status` shows only live members.
//
// Every interval (and at once on PublishNow) it renews its lease (a new one
// when etcd says it is gone) and puts the key with what facts() returns now.
// The value is JSON: {"name","address","repl_address","role","epoch",
// "durable_lsn","applied_lsn","updated_ms"}; updated_ms is wall-clock
// milliseconds since 1970 (for people and kvctl; nothing decides on it).
//
// Threading: loop thread only. The client must outlive this object.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cluster/etcd_client.h"
#include "net/uv_handle.h"

namespace kvd::daemon {

struct MemberFacts {
  std::string name;
  std::string address;       // the client Unix socket
  std::string repl_address;  // HOST:PORT of the replication listener
  std::string role;          // "primary" | "replica"
  uint64_t epoch = 0;
  uint64_t durable_lsn = 0;
  uint64_t applied_lsn = 0;
};

// The member key's JSON (updated_ms = now), and its parse (name, address
// and repl_address are required).
std::string MemberJson(const MemberFacts& f);
Result<MemberFacts> ParseMemberJson(std::string_view json);

class MemberPublisher {
 public:
  static Result<std::unique_ptr<MemberPublisher>> Create(uv_loop_t* loop, EtcdClient* client, std::string key,
                                                         std::chrono::milliseconds ttl,
                                                         std::chrono::milliseconds interval,
                                                         std::function<MemberFacts()> facts);
  ~MemberPublisher();
  MemberPublisher(const MemberPublisher&) = delete;
  MemberPublisher& operator=(const MemberPublisher&) = delete;

  void Start();
  // Publishes now (a role change), besides the periodic puts.
  void PublishNow();
  // Stops publishing and revokes the lease, which deletes the key.
  void Stop();

 private:
  MemberPublisher(uv_loop_t* loop, EtcdClient* client, std::string key, std::chrono::milliseconds ttl,
                  std::chrono::milliseconds interval, std::function<MemberFacts()> facts);
  void Tick();
  void Put();

  EtcdClient* client_;
  std::string key_;
  std::chrono::milliseconds ttl_;
  std::chrono::milliseconds interval_;
  std::function<MemberFacts()> facts_;
  int64_t lease_id_ = 0;
  bool granting_ = false;
  bool stopped_ = false;
  UvHandle<uv_timer_t> timer_;
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

}  // namespace kvd::daemon
