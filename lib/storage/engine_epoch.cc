// The engine's epochs: BeginEpoch and keeping the epoch history file in step
// with the LSNs (docs/wal_format.md §8).
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

}  // namespace kvd
