// A DispatchHost for serving-core tests (Dispatcher + Session without a
// Server): finds sessions by id, records what the dispatcher asks of it, and
// answers STATUS / CONFIG GET with fixed JSON a test may set.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/serve/dispatcher.h"
#include "daemon/serve/session.h"

namespace kvd::test {

class FakeDispatchHost : public daemon::DispatchHost {
 public:
  daemon::Session* FindSession(uint64_t id) override {
    auto it = sessions.find(id);
    return it == sessions.end() ? nullptr : it->second;
  }
  void SessionReady(daemon::Session* s) override { ready.push_back(s->id()); }
  std::string StatusJson() override { return status_json; }
  Result<std::string> ConfigGetJson(std::string_view name) override {
    if (!unknown_config_key.empty() && name == unknown_config_key) {
      return Status::InvalidArgument("unknown config key: " + std::string(name));
    }
    return config_json;
  }
  Status ConfigSet(std::string_view, std::string_view, const daemon::Peer&) override { return Status::Ok(); }
  void RequestSnapshot() override { ++snapshot_requests; }
  void OnWriteError(const Status&) override { ++write_errors; }
  Status PrimaryGate(bool write) override { return write ? Status::Ok() : read_gate; }
  std::optional<std::chrono::milliseconds> ReadBarrier() override { return read_barrier; }
  Status ReadBarrierFailure() override { return Status::IOError("not enough synchronous replicas (have 0 of 1)"); }

  std::map<uint64_t, daemon::Session*> sessions;
  std::vector<uint64_t> ready;
  std::optional<std::chrono::milliseconds> read_barrier;  // nullopt: reads are never held
  Status read_gate = Status::Ok();  // PrimaryGate for reads (a cluster node past its lease: kFenced)
  int snapshot_requests = 0;
  int write_errors = 0;
  std::string status_json = "{}";
  std::string config_json = "{}";
  std::string unknown_config_key;  // ConfigGetJson refuses this name ("" = none)
};

}  // namespace kvd::test
