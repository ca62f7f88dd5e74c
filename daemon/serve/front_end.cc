#include "serve/front_end.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace kvd::daemon {

FrontEnd::FrontEnd(uv_loop_t* loop, std::unique_ptr<Protocol> protocol, RequestHandler* handler,
                   ServerCounters* counters, uint64_t* next_conn_id, Options options)
    : loop_(loop),
      protocol_(std::move(protocol)),
      handler_(handler),
      counters_(counters),
      next_conn_id_(next_conn_id),
      options_(options) {}

Status FrontEnd::ListenUnix(const std::string& path, uint32_t mode) {
  return unix_.Open(loop_, path, mode, [this](uv_stream_t* s) { OnAccept(s); });
}

Status FrontEnd::ListenTcp(const std::string& host, uint16_t port) {
  return tcp_.Open(loop_, host, port, [this](uv_stream_t* s) { OnAccept(s); });
}

void FrontEnd::OnAccept(uv_stream_t* server) {
  if (draining_) {
    RefuseConnection(loop_, server, *protocol_, Code::kShuttingDown, "kvd is shutting down");
    return;
  }
  if (conns_.size() >= options_.max_connections) {
    ++counters_->connections_refused;
    RefuseConnection(loop_, server, *protocol_, Code::kBusy,
                     fmt::format("too many connections (server.max_connections = {})", options_.max_connections));
    return;
  }
  const uint64_t id = (*next_conn_id_)++;
  auto c = std::make_unique<Connection>(id, handler_, options_.session, protocol_->NewCodec(), this, counters_);
  if (!c->Accept(loop_, server)) {
    c.release()->StartClose();
    return;
  }
  conns_.emplace(id, std::move(c));
  ++counters_->connections_total;
  ++counters_->connections_current;
}

void FrontEnd::BeginDrain() {
  draining_ = true;
  StopListening();
  for (auto& [id, c] : conns_) {
    c->StopReading();
    MarkDirty(c.get());
  }
}

void FrontEnd::StopListening() {
  unix_.Close();
  tcp_.Close();
}

void FrontEnd::MarkAllDirty() {
  for (auto& [id, c] : conns_) MarkDirty(c.get());
}

Session* FrontEnd::FindSession(uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : &it->second->session();
}

void FrontEnd::SessionReady(Session* s) {
  auto it = conns_.find(s->id());
  if (it != conns_.end()) MarkDirty(it->second.get());
}

void FrontEnd::MarkDirty(Connection* c) {
  if (c->dirty) return;
  c->dirty = true;
  dirty_.push_back(c->id());
}

void FrontEnd::RequestClose(Connection* c) {
  auto node = conns_.extract(c->id());
  if (node.empty()) return;
  handler_->SessionClosed(c->id());
  node.mapped().release()->StartClose();
  --counters_->connections_current;
}

void FrontEnd::FlushDirty() {
  std::vector<uint64_t> batch;
  while (!dirty_.empty()) {
    batch.swap(dirty_);
    for (uint64_t id : batch) {
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      it->second->dirty = false;
      it->second->Flush();
    }
    batch.clear();
  }
}

bool FrontEnd::AllIdle() const {
  return std::all_of(conns_.begin(), conns_.end(), [](const auto& e) { return e.second->session().Idle(); });
}

bool FrontEnd::AllQuiescent() const {
  return std::all_of(conns_.begin(), conns_.end(), [](const auto& e) { return e.second->session().Quiescent(); });
}

size_t FrontEnd::CloseIdle(std::chrono::steady_clock::time_point now, std::chrono::milliseconds idle_timeout) {
  std::vector<Connection*> idle;
  for (auto& [id, c] : conns_) {
    if (now - c->last_activity() >= idle_timeout && c->session().Idle() && c->session().Quiescent()) {
      idle.push_back(c.get());
    }
  }
  for (Connection* c : idle) {
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("connection {} ({}) closed: idle for {} ms", c->id(), c->session().peer().Describe(),
                    idle_timeout.count());
    }
    RequestClose(c);
  }
  counters_->idle_closed += idle.size();
  return idle.size();
}

void FrontEnd::CloseAll() {
  std::vector<uint64_t> ids;
  ids.reserve(conns_.size());
  for (auto& [id, c] : conns_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = conns_.find(id);
    if (it != conns_.end()) RequestClose(it->second.get());
  }
}

void FrontEnd::ReplyBytes(uint64_t* total, uint64_t* largest) const {
  for (const auto& [id, c] : conns_) {
    const uint64_t bytes = c->session().reply_bytes();
    *total += bytes;
    *largest = std::max(*largest, bytes);
  }
}

}  // namespace kvd::daemon
