// Replication's role changes (docs/replication.md §5, §7): BecomePrimary,
// BecomeReplica, fencing an old primary, cutting a divergent tail. An API
// for whoever decides roles: kvctl (PROMOTE, REPLICATE) today, a failover
// coordinator later.
#include <spdlog/fmt/fmt.h>

#include "kvd/epoch_history.h"
#include "kvd/snapshot.h"
#include "repl/promote_check.h"
#include "repl/replication.h"
#include "sys/log.h"

namespace kvd::daemon {

Epoch Replication::highest_epoch_seen() const { return WithOwnEpochs(seen_epoch_); }

Epoch Replication::announced_epoch() const { return WithOwnEpochs(announced_seen_epoch()); }

Epoch Replication::WithOwnEpochs(Epoch e) const {
  if (engine_ != nullptr) {
    const EpochHistory history = engine_->epoch_history();  // by value: keep it alive for the loop
    for (const EpochStart& s : history.entries()) e = std::max(e, s.epoch);
    e = std::max(e, engine_->current_epoch());
  }
  return e;
}

Result<std::unique_ptr<repl::ReplPrimary>> Replication::StartPrimary() {
  auto primary = std::make_unique<repl::ReplPrimary>(loop_, config_, name_, wal_dir_, tls_);
  primary->set_on_newer_epoch([this](Epoch e, const std::string& why) { FenceForNewerEpoch(e, why); });
  primary->set_on_progress([this] {
    if (on_acks_changed_) on_acks_changed_();
  });
  KVD_RETURN_IF_ERROR(primary->Start(engine_, &feed_));
  if (Status st = primary->StartSync(node_->bridge().NotifyFn()); !st.ok()) {
    primary->Stop();
    return st;
  }
  primary->SetSyncEligible(sync_members_);  // before any replica can ACK
  return primary;
}

void Replication::StartReceiver(const HostPort& primary) {
  if (receiver_) {
    receiver_->Stop();
    retired_.push_back(std::move(receiver_));  // a pending connect may still call it back
  }
  primary_addr_ = primary.ToString();
  receiver_ = std::make_unique<repl::WalReceiver>(loop_, primary, name_, tls_);
  receiver_->SetStorage(env_ != nullptr ? env_ : Env::Default(), wal_dir_, snapshot_dir_);
  receiver_->set_role_hooks({[this] { return seen_epoch_; },
                             [this](Epoch e) { return SeeEpoch(e, "the primary at " + primary_addr_); },
                             [this](Lsn fork, Lsn last) { return RewindLog(fork, last); },
                             [this] { feed_.Rewind(engine_->last_lsn()); },
                             [this] { return announced_seen_epoch(); }});
  feed_.set_on_update(
      [this] {
        if (receiver_) receiver_->OnLocalDurable(feed_.durable_lsn());
      },
      /*wake_on_written=*/false);  // a replica ACKs fdatasyncs, not writes
  receiver_->Start(engine_);
}

Result<Epoch> Replication::BecomePrimary(Epoch epoch, bool force) {
  if (!enabled() || engine_ == nullptr || node_ == nullptr) {
    return Status::InvalidArgument("replication is not configured ([replication] in kvd.toml)");
  }
  if (node_->role() == Role::kPrimary) {
    if (engine_->write_fence().code() == Code::kFenced) {
      return Status::InvalidArgument("this node is an old primary, fenced (" + engine_->write_fence().message() +
                                     "): make it a replica of the new primary first (kvctl replicate --from)");
    }
    return Status::InvalidArgument(fmt::format("this node is already the primary (epoch {})", engine_->current_epoch()));
  }
  if (config_.listen.empty()) {
    return Status::InvalidArgument(
        "[replication] listen is not configured: a primary needs it so that replicas can connect");
  }
  const Epoch seen = highest_epoch_seen();
  if (epoch == 0) epoch = seen + 1;
  if (epoch <= seen) {
    return Status::InvalidArgument(fmt::format("epoch {} is not newer than the highest epoch seen here ({})", epoch, seen));
  }
  if (!force && receiver_) {
    repl::PromoteFacts f;
    f.heard_primary = receiver_->heard_primary();
    f.link_up = receiver_->link_up();
    f.silent_for = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                         receiver_->last_heard());
    f.own_durable = engine_->durable_lsn();
    f.primary_durable = receiver_->primary_durable();
    KVD_RETURN_IF_ERROR(repl::CheckPromoteSafe(f));
  }

  // The listener first, so a failure (port taken) changes nothing.
  KVD_ASSIGN_OR_RETURN(std::unique_ptr<repl::ReplPrimary> primary, StartPrimary());
  const std::string old_primary = primary_addr_;
  if (receiver_) {
    receiver_->Stop();
    retired_.push_back(std::move(receiver_));
  }
  // Durably in the epoch history before any write of the new epoch.
  if (Status st = engine_->BeginEpoch(epoch); !st.ok()) {
    primary->Stop();
    // Its sync gate turned the engine's on; no client write was taken since
    // (the fence is still up), so what waits is replicated and released OK.
    (void)engine_->SetAckWatermarkRequired(false);
    if (auto back = ParseHostPort(old_primary); back.has_value()) StartReceiver(*back);
    return st.Annotate("beginning epoch " + std::to_string(epoch));
  }
  primary_ = std::move(primary);
  feed_.set_on_update([this] { primary_->OnFeedUpdate(); });
  node_->set_role(Role::kPrimary);
  node_->ClearWriteFence();
  LogEvent(spdlog::level::warn, Event::kReplication, engine_->last_lsn(),
           fmt::format("role change: {} is now the primary in epoch {} from LSN {} (was a replica of {}{})", name_,
                       epoch, engine_->last_lsn() + 1, old_primary.empty() ? "(none)" : old_primary,
                       force ? "; forced" : ""));
  return epoch;
}

Status Replication::BecomeReplica(const HostPort& primary) {
  if (!enabled() || engine_ == nullptr || node_ == nullptr) {
    return Status::InvalidArgument("replication is not configured ([replication] in kvd.toml)");
  }
  const Role before = node_->role();
  // Writes first: nothing a client sends from now on is accepted here.
  KVD_RETURN_IF_ERROR(node_->SetWriteFence(
      Status::NotPrimary("this node is a replica; send writes to the primary at " + primary.ToString())));
  LeavePrimaryRole(Status::NotPrimary("this node became a replica of " + primary.ToString() +
                                      " before its replicas confirmed the write"));
  node_->set_role(Role::kReplica);
  StartReceiver(primary);
  LogEvent(spdlog::level::warn, Event::kReplication, engine_->last_lsn(),
           fmt::format("role change: {} ({} in epoch {}) now replicates from {}", name_, RoleName(before),
                       engine_->current_epoch(), primary.ToString()));
  return Status::Ok();
}

void Replication::SetSyncMembers(std::optional<std::vector<std::string>> names) {
  sync_members_ = std::move(names);
  if (primary_) primary_->SetSyncEligible(sync_members_);
}

void Replication::StepDown(const Status& why) {
  if (engine_ == nullptr || node_ == nullptr) return;
  (void)node_->SetWriteFence(why);
  feed_.set_on_update([] {});
  LeavePrimaryRole(why);
  if (receiver_) {
    receiver_->Stop();
    retired_.push_back(std::move(receiver_));
  }
  primary_addr_.clear();
  node_->set_role(Role::kReplica);
  LogEvent(spdlog::level::warn, Event::kReplication, engine_->last_lsn(),
           fmt::format("role change: {} stepped down (epoch {}): {}", name_, engine_->current_epoch(), why.message()));
}

void Replication::LeavePrimaryRole(const Status& why) {
  // Writes held for the replicas' ACKs, and those whose fdatasync is still
  // running, are not acknowledged now; what a replica of this node appends
  // later waits for nobody's ACK (no gate left behind to hold it forever).
  engine_->DropAckGate(why);
  if (!primary_) return;
  primary_->Stop();
  primary_.reset();
  engine_->SetRetentionFloor(0);  // WAL kept for our replicas is theirs to fetch elsewhere now
}

void Replication::FenceEpoch(Epoch e) {
  if (seen_epoch_ < e + 1) {
    seen_before_fence_ = seen_epoch_;
    provisional_fence_ = e;
  }
  (void)SeeEpoch(e + 1, "a takeover from the silent primary of epoch " + std::to_string(e));
  seen_epoch_ = std::max(seen_epoch_, e + 1);
}

void Replication::ConfirmEpochFence(Epoch e) {
  if (provisional_fence_ == e) provisional_fence_ = 0;
}

Epoch Replication::announced_seen_epoch() const {
  // Only while the fence is the newest thing seen: a newer epoch seen since
  // is announced as usual.
  if (provisional_fence_ != 0 && seen_epoch_ == provisional_fence_ + 1) return seen_before_fence_;
  return seen_epoch_;
}

Result<bool> Replication::LiftEpochFence(Epoch e) {
  if (seen_epoch_ != e + 1) return false;  // not fenced at e, or a newer epoch was seen since
  Status st = SaveSeenEpoch(env_ != nullptr ? env_ : Env::Default(), wal_dir_, e);
  if (!st.ok()) {
    LogEvent(spdlog::level::err, Event::kReplication, engine_->last_lsn(),
             fmt::format("cannot lift this node's fence of epoch {} (its primary kept the leader key): {}; the "
                         "fence stays (a primary it fences resigns its leader key)",
                         e, st.ToString()));
    return st;
  }
  LogEvent(spdlog::level::warn, Event::kReplication, engine_->last_lsn(),
           fmt::format("lifted this node's fence of epoch {}: the takeover did not happen and that epoch's primary "
                       "still holds the leader key; saved in {}",
                       e, JoinPath(wal_dir_, std::string(kSeenEpochFileName))));
  seen_epoch_ = e;
  provisional_fence_ = 0;
  return true;
}

Status Replication::SeeEpoch(Epoch e, const std::string& from) {
  if (e <= seen_epoch_) return Status::Ok();
  Status st = SaveSeenEpoch(env_ != nullptr ? env_ : Env::Default(), wal_dir_, e);
  if (!st.ok()) {
    LogEvent(spdlog::level::err, Event::kReplication, engine_->last_lsn(),
             fmt::format("cannot save the highest epoch seen ({} from {}): {}", e, from, st.ToString()));
    return st;
  }
  LogEvent(spdlog::level::info, Event::kReplication, engine_->last_lsn(),
           fmt::format("highest epoch seen: {} (was {}), from {}; saved in {}", e, seen_epoch_, from,
                       JoinPath(wal_dir_, std::string(kSeenEpochFileName))));
  seen_epoch_ = e;
  return Status::Ok();
}

void Replication::FenceForNewerEpoch(Epoch newer, const std::string& why) {
  // Saved first, so that a restart does not bring the old primary back
  // unfenced; fenced either way (a failed save is logged: the fence then
  // lasts until this process ends).
  (void)SeeEpoch(newer, why);
  seen_epoch_ = std::max(seen_epoch_, newer);
  // Once per role: a switchover's fence (kFenced too) does not count, since
  // an aborted switchover lifts that one.
  if (fenced_by_newer_epoch()) return;
  const std::string reason =
      fmt::format("a newer epoch {} exists (this primary is in epoch {}): another node is primary; this one "
                  "takes no writes until it is made a replica ({})",
                  newer, engine_->current_epoch(), why);
  LogEvent(spdlog::level::err, Event::kReplication, engine_->last_lsn(), "fenced: " + reason);
  (void)node_->SetWriteFence(Status::Fenced(reason));
  // What the gate holds is not acknowledged now: the newer primary's log may
  // lack it, and a replica still in this epoch that reconnected could
  // otherwise confirm it on a branch that will be cut. Nothing new is gated
  // either; the fence stays up for as long as this node is primary
  // (fenced_by_newer_epoch keeps an aborted switchover from lifting it).
  engine_->DropAckGate(Status::Fenced(reason));
  if (primary_) primary_->FenceAsOldPrimary(Status::Fenced(reason));
  if (on_fenced_by_newer_) on_fenced_by_newer_(newer);
}

Status Replication::RewindLog(Lsn fork, Lsn last) {
  if (hooks_.snapshot_running && hooks_.snapshot_running()) {
    return Status::Busy("a snapshot is being written; the tail is cut on the next attempt");
  }
  // A snapshot holding the tail cannot be rewound (its state includes it):
  // kUnsupported makes the receiver ask for a snapshot transfer instead.
  auto snaps = ListSnapshots(env_ != nullptr ? env_ : Env::Default(), snapshot_dir_);
  if (!snaps) return snaps.error();
  for (const SnapshotInfo& s : *snaps) {
    if (s.lsn > fork) {
      return Status::Unsupported(fmt::format("snapshot {} covers LSN {}, after the fork point {}", s.path, s.lsn,
                                             fork));
    }
  }
  // A copy left by a cut that a crash interrupted is kept: never overwritten.
  const std::string base = JoinPath(wal_dir_, fmt::format("diverged-{}-{}.broken", fork + 1, last));
  std::string path = base;
  for (int i = 1; Env::Default()->FileExists(path); ++i) path = base + "." + std::to_string(i);
  auto report = engine_->RewindTo(fork, path, hooks_.sink);
  if (!report) return report.error();
  feed_.Rewind(engine_->last_lsn());
  LogEvent(spdlog::level::warn, Event::kReplication, fork,
           fmt::format("divergent tail cut: {} record(s) after LSN {} (up to {}) set aside in {}; the state is "
                       "now as at LSN {}",
                       report->records_set_aside, fork, report->last_lsn_before, path, fork));
  return Status::Ok();
}

}  // namespace kvd::daemon
