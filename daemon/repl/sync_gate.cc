#include "repl/sync_gate.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <map>

#include "sys/log.h"

namespace kvd::daemon::repl {
namespace {

constexpr auto kTick = std::chrono::milliseconds(10);
constexpr auto kCoalesce = std::chrono::milliseconds(1);
constexpr auto kLogEvery = std::chrono::seconds(1);

}  // namespace

Lsn SyncGate::Watermark(std::span<const Replica> replicas, uint32_t n, std::vector<std::string>* counting) {
  if (counting != nullptr) counting->clear();
  if (n == 0) return 0;
  std::map<std::string_view, Lsn> best;
  for (const Replica& r : replicas) {
    Lsn& b = best[r.name];
    b = std::max(b, r.durable_lsn);
  }
  if (best.size() < n) return 0;
  std::vector<std::pair<Lsn, std::string_view>> order;
  order.reserve(best.size());
  for (const auto& [name, lsn] : best) order.emplace_back(lsn, name);
  // Most advanced first; among equals by name, so `counting` is stable.
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  if (counting != nullptr) {
    for (uint32_t i = 0; i < n; ++i) counting->emplace_back(order[i].second);
  }
  return order[n - 1].first;
}

SyncGate::SyncGate(uv_loop_t* loop, std::function<void()> poll_engine)
    : loop_(loop), poll_engine_(std::move(poll_engine)) {}

Status SyncGate::Start(Engine* engine, uint32_t sync_replicas, std::chrono::milliseconds timeout) {
  engine_ = engine;
  if (!InitTimer(loop_, &timer_, this)) return Status::Internal("uv_timer_init failed");
  return Configure(sync_replicas, timeout);
}

Status SyncGate::Configure(uint32_t sync_replicas, std::chrono::milliseconds timeout) {
  if (engine_ == nullptr) return Status::Internal("SyncGate::Configure before Start");
  const uint32_t before = n_;
  KVD_RETURN_IF_ERROR(engine_->SetAckWatermarkRequired(sync_replicas > 0).Annotate("replication.sync_replicas"));
  n_ = sync_replicas;
  timeout_ = timeout;
  if (n_ == 0) {
    marks_.clear();
    if (before > 0) {
      LogEvent(spdlog::level::warn, Event::kReplication, engine_->last_lsn(),
               "sync_replicas is 0 now: writes are acknowledged once durable here (asynchronous replication); "
               "writes still waiting for replicas are acknowledged");
      poll_engine_();  // releases what the gate held
    }
    return Status::Ok();
  }
  if (before == 0) {
    // Writes still waiting (not yet durable here) now wait for the replicas
    // too: their sync_timeout starts now. At start-up nothing waits.
    if (engine_->last_lsn() > engine_->durable_lsn() && engine_->last_lsn() > watermark_) {
      marks_.push_back({engine_->last_lsn(), std::chrono::steady_clock::now()});
    }
    LogEvent(spdlog::level::info, Event::kReplication, engine_->last_lsn(),
             fmt::format("synchronous replication: a write is acknowledged once durable here and on {} replica{} "
                         "(sync_timeout {} ms)",
                         n_, n_ == 1 ? "" : "s", timeout_.count()));
  }
  Recompute();
  ArmTimer();
  return Status::Ok();
}

void SyncGate::Stop() {
  timer_.reset();
  timer_active_ = false;
  marks_.clear();
}

void SyncGate::OnWritten(Lsn last) {
  if (n_ == 0 || last <= watermark_) return;
  if (!marks_.empty() && last <= marks_.back().lsn) return;
  const auto now = std::chrono::steady_clock::now();
  if (!marks_.empty() && now - marks_.back().at < kCoalesce) {
    marks_.back().lsn = last;
  } else {
    marks_.push_back({last, now});
  }
  ArmTimer();
}

void SyncGate::Update(std::vector<Replica> replicas) {
  all_replicas_ = std::move(replicas);
  replicas_.clear();
  for (const Replica& r : all_replicas_) {
    if (!eligible_ || std::find(eligible_->begin(), eligible_->end(), r.name) != eligible_->end()) {
      replicas_.push_back(r);
    }
  }
  Recompute();
}

void SyncGate::SetEligible(std::optional<std::vector<std::string>> names) {
  eligible_ = std::move(names);
  Update(std::move(all_replicas_));
}

void SyncGate::Recompute() {
  const Lsn w = Watermark(replicas_, n_, &counting_);
  std::vector<std::string> names;
  for (const Replica& r : replicas_) {
    if (std::find(names.begin(), names.end(), r.name) == names.end()) names.push_back(r.name);
  }
  connected_ = names.size();
  if (n_ == 0 || engine_ == nullptr || w <= watermark_) return;
  engine_->AdvanceAckWatermark(w);
  watermark_ = std::max(watermark_, std::min(w, engine_->last_lsn()));
  while (!marks_.empty() && marks_.front().lsn <= watermark_) marks_.pop_front();
  poll_engine_();
}

Status SyncGate::Why(bool read) const {
  if (connected_ < n_) {
    return Status::IOError(fmt::format("not enough synchronous replicas (have {} of {})", connected_, n_));
  }
  return Status::IOError(fmt::format("the synchronous replicas did not confirm {} within sync_timeout "
                                     "({} ms; sync_replicas {}, {} connected, confirmed up to LSN {})",
                                     read ? "the writes this read saw" : "the write", timeout_.count(), n_,
                                     connected_, watermark_));
}

void SyncGate::ArmTimer() {
  if (timer_active_ || !timer_ || marks_.empty()) return;
  timer_active_ = true;
  const auto ms = static_cast<uint64_t>(kTick.count());
  uv_timer_start(timer_.get(), &SyncGate::OnTimer, ms, ms);
}

void SyncGate::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<SyncGate*>(t->data);
  self->Expire(std::chrono::steady_clock::now());
  if (self->marks_.empty()) {
    uv_timer_stop(t);
    self->timer_active_ = false;
  }
}

void SyncGate::Expire(std::chrono::steady_clock::time_point now) {
  if (engine_ == nullptr || n_ == 0) return;
  bool failed = false;
  Lsn upto = 0;
  while (!marks_.empty() && now - marks_.front().at >= timeout_) {
    const Mark m = marks_.front();
    const Status why = Why();
    engine_->FailGatedWritesUpTo(why, m.lsn);
    failed = true;
    upto = m.lsn;
    // Writes still waiting for the local fdatasync are not held by the gate
    // yet: keep the note and fail them once they are.
    if (std::min(engine_->durable_lsn(), engine_->applied_lsn()) < m.lsn) break;
    marks_.pop_front();
    ++timeouts_;
  }
  if (!failed) return;
  poll_engine_();
  if (now - last_log_ >= kLogEvery) {
    last_log_ = now;
    LogEvent(spdlog::level::warn, Event::kReplication, upto,
             fmt::format("writes up to LSN {} failed after sync_timeout {} ms: {}", upto, timeout_.count(),
                         Why().message()));
  }
}

nlohmann::json SyncGate::StatusJson() const {
  nlohmann::json j = {{"sync_replicas", n_},
                      {"sync_timeout_ms", timeout_.count()},
                      {"watermark", watermark_},
                      {"connected", connected_},
                      {"counting", counting_},
                      {"timeouts", timeouts_}};
  if (engine_ != nullptr) {
    const EngineStats st = engine_->stats();
    j["ack_lsn"] = st.ack_lsn;
    j["gated_writes"] = st.gated_writes;
  }
  j["state"] = n_ == 0 ? "off" : connected_ < n_ ? "too_few_replicas" : "ok";
  return j;
}

}  // namespace kvd::daemon::repl
