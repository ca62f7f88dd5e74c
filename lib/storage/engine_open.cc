// Engine::Open: recovery (newest valid snapshot, then WAL replay), then the
// writer and the committer thread.
#include <algorithm>

#include "kvd/mutation.h"
#include "storage/engine_impl.h"

namespace kvd {
namespace {

Status ValidateOptions(EngineOptions* o) {
  if (o->wal_dir.empty()) return Status::InvalidArgument("wal_dir is empty");
  if (o->snapshot_dir.empty()) o->snapshot_dir = o->wal_dir;
  if (o->durability.batch_size == 0) return Status::InvalidArgument("batch_size must be at least 1");
  if (o->durability.flush_interval.count() <= 0) return Status::InvalidArgument("flush_interval must be positive");
  if (o->segment_size < 4096) return Status::InvalidArgument("segment_size must be at least 4096 bytes");
  o->max_key_bytes = std::min(o->max_key_bytes, kMaxKeyBytes);
  o->max_value_bytes = std::min(o->max_value_bytes, kMaxValueBytes);
  return Status::Ok();
}

// Loads the newest snapshot that verifies, falling back to older ones.
Status LoadNewestSnapshot(Env* env, const std::string& dir, State* state, RecoveryReport* report) {
  KVD_ASSIGN_OR_RETURN(std::vector<SnapshotInfo> snaps, ListSnapshots(env, dir));
  for (const SnapshotInfo& info : snaps) {
    Result<SnapshotInfo> loaded = LoadSnapshot(env, info.path, state);
    if (loaded) {
      report->snapshot_path = info.path;
      report->snapshot_lsn = loaded->lsn;
      report->snapshot_entries = loaded->entries;
      return Status::Ok();
    }
    report->snapshot_failures.push_back(info.path + ": " + loaded.error().ToString());
    state->Clear();
  }
  return Status::Ok();
}

// Records that recovery read may have been only in the page cache (a process
// crash in batch/none mode). The writer may start a new segment instead of
// appending to this one, so sync it now: otherwise a later power loss could
// take these records while keeping newer ones, leaving a hole in the log.
Status SyncLastSegment(Env* env, const WalRecoveryReport& wal) {
  if (KVD_MUTANT(skip_recovered_data_sync)) return Status::Ok();
  for (auto it = wal.segments.rbegin(); it != wal.segments.rend(); ++it) {
    if (!env->FileExists(it->path)) continue;  // set aside by point_in_time
    KVD_ASSIGN_OR_RETURN(auto f, env->NewWritableFile(it->path, OpenMode::kExisting));
    Status s = f->Sync();
    Status c = f->Close();
    return s.ok() ? c : s;
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Open(EngineOptions options, RecoveryReport* report) {
  RecoveryReport local;
  if (report == nullptr) report = &local;
  *report = RecoveryReport{};
  const Clock::time_point t0 = Clock::now();
  KVD_RETURN_IF_ERROR(ValidateOptions(&options));
  Env* env = options.env != nullptr ? options.env : Env::Default();
  KVD_RETURN_IF_ERROR(env->CreateDirs(options.wal_dir));
  KVD_RETURN_IF_ERROR(env->CreateDirs(options.snapshot_dir));

  auto engine = std::make_unique<EngineImpl>(options, env);
  State* state = engine->mutable_state();
  KVD_RETURN_IF_ERROR(LoadNewestSnapshot(env, options.snapshot_dir, state, report));
  const Lsn snap_lsn = report->snapshot_lsn;

  // The epoch history: every replayed record's epoch must be the one the
  // history gives its LSN. Without the file, rebuild it from the records.
  Result<EpochHistory> loaded = LoadEpochHistory(env, options.wal_dir);
  if (!loaded && !loaded.error().IsNotFound()) {
    return loaded.error().Annotate("(delete it to rebuild it from the WAL records)");
  }
  const bool have_history = loaded.has_value();
  EpochHistory epochs = have_history ? std::move(*loaded) : EpochHistory();

  WalRecoveryOptions wo;
  wo.dir = options.wal_dir;
  wo.mode = options.recovery_mode;
  wo.start_lsn = snap_lsn;
  wo.segment_size = options.segment_size;  // a preallocated segment keeps its size through a crash
  wo.apply = [state, &epochs, have_history](const WalRecord& rec) -> Status {
    if (have_history) {
      const Epoch want = epochs.EpochOf(rec.lsn);
      if (rec.epoch != want) {
        return Status::Corruption("WAL record lsn " + std::to_string(rec.lsn) + " has epoch " +
                                  std::to_string(rec.epoch) + " but the epoch history gives epoch " +
                                  std::to_string(want) + " for it");
      }
    } else if (epochs.empty()) {
      // LSNs before the first record read (snapshot-covered) are taken to be
      // in that record's epoch: nothing on disk says otherwise.
      (void)epochs.Append(rec.epoch, 1);
    } else if (rec.epoch > epochs.current()) {
      (void)epochs.Append(rec.epoch, rec.lsn);  // the reader refuses epochs going back
    }
    return ApplyRecord(state, rec);
  };
  wo.progress = options.recovery_progress;
  KVD_RETURN_IF_ERROR(RecoverWal(env, wo, &report->wal));

  // Segments a snapshot covered are deleted; if the snapshot we could load is
  // older than the ones we could not, the log may not reach back to it.
  for (const SegmentReport& seg : report->wal.segments) {
    if (seg.good_records == 0) continue;
    if (seg.first_lsn > snap_lsn + 1) {
      std::string why = "the WAL starts at LSN " + std::to_string(seg.first_lsn) + " but ";
      why += report->snapshot_path.empty() ? std::string("no snapshot could be loaded")
                                           : "the snapshot used covers only up to LSN " + std::to_string(snap_lsn);
      for (const std::string& f : report->snapshot_failures) why += "; rejected " + f;
      return Status::Corruption(why + ": records are missing");
    }
    break;
  }

  const Lsn last = std::max(snap_lsn, report->wal.last_lsn);
  if (!report->wal.segments.empty()) KVD_RETURN_IF_ERROR(SyncLastSegment(env, report->wal));
  // Durable before the writer appends anything. Entries past the recovered
  // end (epochs begun on top of records a crash took away) stay: they still
  // say which epoch those LSNs belong to when a replica receives them again;
  // the first local write moves them back (EngineImpl::ClampEpochHistory).
  report->epoch_history_rebuilt = !have_history && !epochs.empty();
  if (epochs.empty()) epochs = EpochHistory::Initial();
  if (!have_history) KVD_RETURN_IF_ERROR(SaveEpochHistory(env, options.wal_dir, epochs));
  if (report->epoch_history_rebuilt && options.on_warning) {
    options.on_warning("the epoch history file was missing; rebuilt it from the WAL records (" +
                       std::to_string(epochs.entries().size()) + " epoch(s), current " +
                       std::to_string(epochs.current()) + ")");
  }
  report->epochs = epochs;
  engine->set_epoch_history(std::move(epochs));
  WalWriterOptions wwo;
  wwo.dir = options.wal_dir;
  wwo.segment_size = options.segment_size;
  wwo.preallocate = options.preallocate;
  wwo.on_warning = options.on_warning;
  KVD_ASSIGN_OR_RETURN(auto wal, WalWriter::Open(env, wwo, report->wal, last + 1));
  engine->set_wal(std::move(wal));
  engine->Start(last);

  report->last_lsn = last;
  report->keys = state->size();
  report->digest = state->Digest();
  report->duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace kvd
