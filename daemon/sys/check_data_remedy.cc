// Dry runs of recovery per mode, and the remedies built from them.
#include "sys/check_data_remedy.h"

#include <algorithm>
#include <tuple>

#include "kvd/snapshot.h"
#include "kvd/state.h"
#include "sys/check_data_env.h"

namespace kvd::daemon {
namespace {

Result<std::vector<std::string>> SegmentNames(Env* env, const std::string& dir) {
  auto names = env->ListDir(dir);
  if (!names) {
    if (names.error().IsNotFound()) return std::vector<std::string>{};
    return names.error();
  }
  std::vector<std::pair<Lsn, std::string>> found;
  for (const std::string& n : *names) {
    if (auto lsn = ParseSegmentFileName(n)) found.emplace_back(*lsn, n);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

// Replays one segment on its own (a view of the directory that holds only
// that file) into *state if given; fills the record count and LSN range.
void ReadLater(Env* env, const std::string& dir, const std::string& name, State* state, LaterSegment* out) {
  SingleFileEnv one(env, name);
  WalRecoveryOptions o;
  o.dir = dir;
  o.mode = RecoveryMode::kPointInTime;
  o.dry_run = true;
  if (auto lsn = ParseSegmentFileName(name); lsn && *lsn > 0) o.start_lsn = *lsn - 1;
  o.apply = [&](const WalRecord& rec) -> Status {
    if (out->first_lsn == 0) out->first_lsn = rec.lsn;
    out->last_lsn = rec.lsn;
    ++out->records;
    if (state != nullptr) (void)ApplyRecord(state, rec);  // an undecodable one changes nothing here
    return Status::Ok();
  };
  WalRecoveryReport r;
  (void)RecoverWal(&one, o, &r);
  for (const SegmentReport& s : r.segments) {  // valid records past damage inside it
    out->records += s.dropped_records;
    if (s.dropped_last_lsn != 0) {
      if (out->first_lsn == 0) out->first_lsn = s.dropped_first_lsn;
      out->last_lsn = s.dropped_last_lsn;
    }
  }
}

// Keys whose value or presence differs between a and b (a merge of cursors).
uint64_t KeysDiffering(const State& a, const State& b) {
  uint64_t n = 0;
  State::Cursor x = a.Begin(), y = b.Begin();
  while (x.Valid() || y.Valid()) {
    if (!y.Valid() || (x.Valid() && x.key() < y.key())) {
      ++n;
      x.Next();
    } else if (!x.Valid() || y.key() < x.key()) {
      ++n;
      y.Next();
    } else {
      n += x.value() != y.value() ? 1 : 0;
      x.Next();
      y.Next();
    }
  }
  return n;
}

// Replays the WAL as mode would into *state (loaded from the snapshot first).
// With dropped_into, the valid records found after the damage are applied
// there, after the records kept (which go to state as well).
Status Replay(Env* env, const std::string& wal_dir, RecoveryMode mode, Lsn start_lsn, const std::string& snapshot,
              State* state, WalRecoveryReport* report, bool apply_dropped = false) {
  if (!snapshot.empty()) (void)LoadSnapshot(env, snapshot, state);  // verified by the caller
  WalRecoveryOptions o;
  o.dir = wal_dir;
  o.mode = mode;
  o.start_lsn = start_lsn;
  o.dry_run = true;
  o.apply = [state](const WalRecord& rec) { return ApplyRecord(state, rec); };
  if (apply_dropped) o.on_dropped_record = [state](const WalRecord& rec) { (void)ApplyRecord(state, rec); };
  return RecoverWal(env, o, report);
}

}  // namespace

DryRun RunRecovery(Env* env, const std::string& wal_dir, RecoveryMode mode, Lsn start_lsn,
                   const std::string& snapshot_path) {
  DryRun run;
  run.mode = mode;
  State kept;  // records are decoded and applied as at start-up, then thrown away
  run.status = Replay(env, wal_dir, mode, start_lsn, snapshot_path, &kept, &run.report);
  run.keys = kept.size();
  for (const SegmentReport& s : run.report.segments) {
    if (s.damage != DamageKind::kNone) run.damaged = s;
  }
  if (!run.damaged) return run;
  run.dropped_bytes = run.damaged->dropped_bytes;
  run.dropped_records = run.damaged->dropped_records;
  run.dropped_first_lsn = run.damaged->dropped_first_lsn;
  run.dropped_last_lsn = run.damaged->dropped_last_lsn;
  auto names = SegmentNames(env, wal_dir);
  if (!names) return run;
  // What the dropped records of the later segments would change: replay what
  // is kept again, then them on top.
  State all;
  WalRecoveryReport again;
  const bool accepted = run.status.ok();
  if (accepted) (void)Replay(env, wal_dir, mode, start_lsn, snapshot_path, &all, &again, /*apply_dropped=*/true);
  bool after = false;
  for (const std::string& n : *names) {
    const std::string path = JoinPath(wal_dir, n);
    if (after) {
      LaterSegment l{path, env->FileSize(path).value_or(0)};
      ReadLater(env, wal_dir, n, accepted ? &all : nullptr, &l);
      run.dropped_bytes += l.bytes;
      run.dropped_records += l.records;
      if (l.records > 0) {
        if (run.dropped_first_lsn == 0) run.dropped_first_lsn = l.first_lsn;
        run.dropped_last_lsn = l.last_lsn;
      }
      run.later.push_back(std::move(l));
    }
    after = after || path == run.damaged->path;
  }
  if (accepted) run.keys_changed = KeysDiffering(kept, all);
  return run;
}

std::vector<Remedy> Remedies(Env* env, const std::string& wal_dir, RecoveryMode configured, Lsn start_lsn,
                             const std::string& snapshot_path) {
  // Strictest first, so that ties keep the stricter mode.
  std::vector<Remedy> all;
  for (RecoveryMode m : {RecoveryMode::kAbsolute, RecoveryMode::kTolerateTail, RecoveryMode::kPointInTime}) {
    DryRun run = RunRecovery(env, wal_dir, m, start_lsn, snapshot_path);
    if (run.status.ok()) all.push_back({m, m == configured, std::move(run)});
  }
  std::stable_sort(all.begin(), all.end(), [](const Remedy& a, const Remedy& b) {
    return std::make_tuple(a.run.dropped_records, a.run.dropped_bytes, !a.as_configured) <
           std::make_tuple(b.run.dropped_records, b.run.dropped_bytes, !b.as_configured);
  });
  std::vector<Remedy> out;
  for (Remedy& r : all) {
    const bool same = !out.empty() && out.back().run.dropped_records == r.run.dropped_records &&
                      out.back().run.dropped_bytes == r.run.dropped_bytes &&
                      out.back().run.report.last_lsn == r.run.report.last_lsn &&
                      out.back().run.later.size() == r.run.later.size();
    if (!same) out.push_back(std::move(r));
  }
  return out;
}

}  // namespace kvd::daemon
