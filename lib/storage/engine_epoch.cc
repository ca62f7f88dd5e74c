// The engine's epochs: BeginEpoch and keeping the epoch history file in step
// with the LSNs (docs/wal_format.md §8).
#include "kvd/snapshot.h"
#include "storage/engine_impl.h"

namespace kvd {

Status EngineImpl::BeginEpoch(Epoch epoch) {
  if (closed_) return Status::ShuttingDown("the engine is closed");
  KVD_RETURN_IF_ERROR(refusal_);
  EpochHistory next = epochs_;
  next.ClampTo(last_lsn_ + 1);  // epochs begun for records a crash took away
  KVD_RETURN_IF_ERROR(next.Append(epoch, last_lsn_ + 1));
  // Durable before any record of the new epoch can reach the WAL, so
  // recovery never meets a record whose epoch the history does not know.
  KVD_RETURN_IF_ERROR(SaveEpochHistory(env_, opts_.wal_dir, next));
  epochs_ = std::move(next);
  epoch_ = epoch;
  return Status::Ok();
}

Status EngineImpl::ClampEpochHistoryNow() {
  EpochHistory next = epochs_;
  if (!next.ClampTo(last_lsn_ + 1)) return Status::Ok();
  KVD_RETURN_IF_ERROR(SaveEpochHistory(env_, opts_.wal_dir, next));
  epochs_ = std::move(next);
  return Status::Ok();
}

Status Engine::TruncateAfter(EngineOptions options, Lsn lsn, const std::string& set_aside_dir,
                             WalTruncateReport* report) {
  WalTruncateReport local;
  if (report == nullptr) report = &local;
  if (options.wal_dir.empty()) return Status::InvalidArgument("wal_dir is empty");
  if (options.snapshot_dir.empty()) options.snapshot_dir = options.wal_dir;
  Env* env = options.env != nullptr ? options.env : Env::Default();
  KVD_ASSIGN_OR_RETURN(std::vector<SnapshotInfo> snaps, ListSnapshots(env, options.snapshot_dir));
  for (const SnapshotInfo& s : snaps) {
    if (s.lsn > lsn) {
      return Status::InvalidArgument("snapshot " + s.path + " covers LSN " + std::to_string(s.lsn) +
                                     ", after LSN " + std::to_string(lsn) + ": the tail cannot be cut");
    }
  }
  KVD_RETURN_IF_ERROR(TruncateWalAfter(env, options.wal_dir, lsn, set_aside_dir, report));
  // The WAL first: a crash before the history is rewritten leaves only
  // entries past the end, which running this again drops.
  Result<EpochHistory> h = LoadEpochHistory(env, options.wal_dir);
  if (!h) return h.error().IsNotFound() ? Status::Ok() : h.error();
  if (h->TruncateAfter(lsn)) KVD_RETURN_IF_ERROR(SaveEpochHistory(env, options.wal_dir, *h));
  return Status::Ok();
}

}  // namespace kvd
