// kvd --check-data. Everything goes through RecoverWal(dry_run) and
// VerifySnapshot, which classify damage exactly as start-up does, so the
// verdict here is what the next start would do.
#include "sys/check_data.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sys/check_data_env.h"
#include "kvd/snapshot.h"
#include "kvd/state.h"
#include "kvd/wal.h"

namespace kvd::daemon {
namespace {

using Json = nlohmann::ordered_json;

struct SnapshotCheck {
  std::string path;
  Lsn lsn = 0;
  uint64_t entries = 0;
  uint64_t bytes = 0;
  std::string error;  // empty: verified
};

// A segment after the damage: recovery sets it aside without replaying it.
struct LaterSegment {
  std::string path;
  uint64_t bytes = 0;
  uint64_t records = 0;  // good records in it, counted on its own
};

// What one dry run in one mode found and would drop.
struct DryRun {
  RecoveryMode mode = RecoveryMode::kTolerateTail;
  Status status;  // OK, kCorruption (refusal / undecodable record), or an I/O error
  WalRecoveryReport report;
  std::optional<SegmentReport> damaged;  // the segment where it stopped, if any
  std::vector<LaterSegment> later;
  uint64_t dropped_bytes = 0;
  uint64_t dropped_records = 0;
};

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

// Counts the good records of one segment by dry-running recovery over a view
// of the directory that holds only that file.
uint64_t CountRecords(Env* env, const std::string& dir, const std::string& name) {
  SingleFileEnv one(env, name);
  WalRecoveryOptions o;
  o.dir = dir;
  o.mode = RecoveryMode::kPointInTime;
  o.dry_run = true;
  if (auto lsn = ParseSegmentFileName(name); lsn && *lsn > 0) o.start_lsn = *lsn - 1;
  WalRecoveryReport r;
  (void)RecoverWal(&one, o, &r);
  uint64_t n = 0;
  for (const SegmentReport& s : r.segments) n += s.good_records + s.dropped_records;
  return n;
}

DryRun Run(Env* env, const std::string& dir, RecoveryMode mode, Lsn start_lsn, bool apply) {
  DryRun run;
  run.mode = mode;
  State scratch;  // records are decoded and applied as at start-up, then thrown away
  WalRecoveryOptions o;
  o.dir = dir;
  o.mode = mode;
  o.start_lsn = start_lsn;
  o.dry_run = true;
  if (apply) o.apply = [&scratch](const WalRecord& rec) { return ApplyRecord(&scratch, rec); };
  run.status = RecoverWal(env, o, &run.report);
  for (const SegmentReport& s : run.report.segments) {
    if (s.damage != DamageKind::kNone) run.damaged = s;
  }
  if (!run.damaged) return run;
  run.dropped_bytes = run.damaged->dropped_bytes;
  run.dropped_records = run.damaged->dropped_records;
  auto names = SegmentNames(env, dir);
  if (!names) return run;
  bool after = false;
  for (const std::string& n : *names) {
    const std::string path = JoinPath(dir, n);
    if (after) {
      LaterSegment l{path, env->FileSize(path).value_or(0), CountRecords(env, dir, n)};
      run.dropped_bytes += l.bytes;
      run.dropped_records += l.records;
      run.later.push_back(std::move(l));
    }
    after = after || path == run.damaged->path;
  }
  return run;
}

// Stable identifiers for --json ("torn_tail"), whatever ToString() prints.
std::string_view DamageId(DamageKind k) {
  switch (k) {
    case DamageKind::kNone: return "none";
    case DamageKind::kTornTail: return "torn_tail";
    case DamageKind::kCorruption: return "corruption";
  }
  return "unknown";
}

std::string BaseName(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }

std::string Where(const SegmentReport& s) { return s.path + " at offset " + std::to_string(s.damage_offset); }

std::string Loss(uint64_t bytes, uint64_t records) {
  return std::to_string(bytes) + " bytes (" + std::to_string(records) + " whole records)";
}

Json SegmentJson(const SegmentReport& s) {
  return Json{{"path", s.path},
              {"first_lsn", s.first_lsn},
              {"last_good_lsn", s.last_good_lsn},
              {"records", s.good_records},
              {"good_bytes", s.good_bytes},
              {"file_bytes", s.file_bytes},
              {"damage", std::string(DamageId(s.damage))},
              {"damage_offset", s.damage_offset},
              {"damage_reason", s.damage_reason},
              {"dropped_bytes", s.dropped_bytes},
              {"dropped_records", s.dropped_records}};
}

Json LaterJson(const std::vector<LaterSegment>& later) {
  Json a = Json::array();
  for (const LaterSegment& l : later) a.push_back({{"path", l.path}, {"bytes", l.bytes}, {"records", l.records}});
  return a;
}

void PrintSegment(std::ostream& out, const SegmentReport& s) {
  out << "  " << BaseName(s.path) << ": first lsn " << s.first_lsn << ", last good lsn " << s.last_good_lsn << ", "
      << s.good_records << " records, " << s.good_bytes << " of " << s.file_bytes << " bytes good";
  if (s.damage == DamageKind::kNone) {
    out << ", no damage\n";
    return;
  }
  out << "\n    " << ToString(s.damage) << " at offset " << s.damage_offset << ": " << s.damage_reason << "; "
      << s.dropped_bytes << " bytes and " << s.dropped_records << " valid-looking records after it\n";
}

}  // namespace

int CheckData(const Config& config, bool json, std::ostream& out) {
  return CheckData(config, json, out, Env::Default());
}

int CheckData(const Config& config, bool json, std::ostream& out, Env* env) {
  auto fail = [&](const std::string& why) {
    if (json) {
      out << Json{{"ok", false}, {"verdict", "error"}, {"message", why}, {"exit_code", kCheckCannotRun}}.dump(2)
          << "\n";
    } else {
      out << "kvd --check-data: " << why << "\n";
    }
    return kCheckCannotRun;
  };

  // ---- snapshots, newest first; recovery uses the newest that verifies.
  std::vector<SnapshotCheck> snapshots;
  auto listed = ListSnapshots(env, config.snapshot_path);
  if (!listed && !listed.error().IsNotFound()) return fail("listing snapshots: " + listed.error().ToString());
  const SnapshotCheck* used = nullptr;
  if (listed) {
    for (const SnapshotInfo& info : *listed) {
      SnapshotCheck c{info.path, info.lsn, info.entries, info.bytes, ""};
      auto v = VerifySnapshot(env, info.path);
      if (v) {
        c.entries = v->entries;
        c.bytes = v->bytes;
      } else {
        c.error = v.error().message();
      }
      snapshots.push_back(std::move(c));
    }
    for (const SnapshotCheck& c : snapshots) {
      if (c.error.empty()) {
        used = &c;
        break;
      }
    }
  }
  const Lsn start_lsn = used != nullptr ? used->lsn : 0;

  // ---- the WAL, in the configured mode.
  DryRun run = Run(env, config.wal_path, config.recovery_mode, start_lsn, /*apply=*/true);
  if (!run.status.ok() && !run.status.IsCorruption()) return fail("reading the WAL: " + run.status.ToString());
  const bool refused = !run.status.ok();

  // If it refuses, what would the mode that accepts the damage drop?
  std::optional<DryRun> alt;
  if (refused && run.damaged) {
    const bool torn = run.damaged->damage == DamageKind::kTornTail;
    const RecoveryMode alt_mode = torn && config.recovery_mode == RecoveryMode::kAbsolute
                                      ? RecoveryMode::kTolerateTail
                                      : RecoveryMode::kPointInTime;
    alt = Run(env, config.wal_path, alt_mode, start_lsn, /*apply=*/false);
  }

  // ---- the verdict.
  std::string verdict, message;
  bool lost = false;
  if (refused) {
    lost = true;
    verdict = "refuse";
    if (!run.damaged) {
      message = "would refuse to start: " + run.status.message();
    } else {
      message = "would refuse to start: " + std::string(ToString(run.damaged->damage)) + " in " +
                Where(*run.damaged) + ": " + run.damaged->damage_reason;
      if (alt && alt->status.ok()) {
        message += "; recovery_mode=" + std::string(ToString(alt->mode)) + " would accept it, dropping " +
                   Loss(alt->dropped_bytes, alt->dropped_records) + " after lsn " +
                   std::to_string(alt->report.last_lsn);
      }
    }
  } else if (run.damaged) {
    lost = run.dropped_bytes > 0;
    const bool torn = run.damaged->damage == DamageKind::kTornTail;
    verdict = torn ? "cut_torn_tail" : "cut_corruption";
    message = std::string(torn ? "would cut a torn tail" : "would cut at corruption") + " in " +
              Where(*run.damaged) + " (" + run.damaged->damage_reason + "), dropping " +
              Loss(run.dropped_bytes, run.dropped_records);
    if (!run.later.empty()) message += " and setting " + std::to_string(run.later.size()) + " later segment(s) aside";
    message += "; the state would end at lsn " + std::to_string(run.report.last_lsn);
  } else {
    verdict = "clean";
    message = "clean: recovery would replay " + std::to_string(run.report.records_replayed) +
              " records after lsn " + std::to_string(start_lsn) + ", up to lsn " +
              std::to_string(std::max(run.report.last_lsn, start_lsn));
  }
  size_t bad_snapshots = 0;
  for (const SnapshotCheck& c : snapshots) bad_snapshots += c.error.empty() ? 0 : 1;
  if (bad_snapshots > 0) {
    message += "; " + std::to_string(bad_snapshots) + " corrupt snapshot(s) would be skipped";
  }
  const int code = lost ? kCheckDataLoss : kCheckClean;

  if (json) {
    Json snaps = Json::array();
    for (const SnapshotCheck& c : snapshots) {
      snaps.push_back({{"path", c.path},
                       {"lsn", c.lsn},
                       {"entries", c.entries},
                       {"bytes", c.bytes},
                       {"ok", c.error.empty()},
                       {"error", c.error}});
    }
    Json segs = Json::array();
    for (const SegmentReport& s : run.report.segments) segs.push_back(SegmentJson(s));
    Json j{{"ok", !lost},
           {"verdict", verdict},
           {"message", message},
           {"exit_code", code},
           {"config", config.source_path},
           {"recovery_mode", std::string(ToString(config.recovery_mode))},
           {"snapshot_path", config.snapshot_path},
           {"snapshots", snaps},
           {"snapshot_used", used != nullptr ? Json(used->path) : Json(nullptr)},
           {"start_lsn", start_lsn},
           {"wal_path", config.wal_path},
           {"segments", segs},
           {"set_aside", LaterJson(refused ? std::vector<LaterSegment>{} : run.later)},
           {"last_lsn", run.report.last_lsn},
           {"records_replayed", run.report.records_replayed},
           {"dropped_bytes", refused ? 0 : run.dropped_bytes},
           {"dropped_records", refused ? 0 : run.dropped_records},
           {"error", refused ? run.status.message() : ""}};
    if (alt) {
      j["alternative"] = {{"recovery_mode", std::string(ToString(alt->mode))},
                          {"accepts", alt->status.ok()},
                          {"dropped_bytes", alt->dropped_bytes},
                          {"dropped_records", alt->dropped_records},
                          {"last_lsn", alt->report.last_lsn},
                          {"set_aside", LaterJson(alt->later)}};
    }
    out << j.dump(2) << "\n";
    return code;
  }

  out << "snapshots in " << config.snapshot_path << ":\n";
  if (snapshots.empty()) out << "  (none)\n";
  for (const SnapshotCheck& c : snapshots) {
    out << "  " << BaseName(c.path) << ": lsn " << c.lsn << ", ";
    if (c.error.empty()) {
      out << c.entries << " entries, " << c.bytes << " bytes, ok" << (&c == used ? " (recovery starts here)" : "")
          << "\n";
    } else {
      out << "CORRUPT: " << c.error << "\n";
    }
  }
  out << "WAL in " << config.wal_path << " (recovery_mode=" << ToString(config.recovery_mode)
      << ", replaying records after lsn " << start_lsn << "):\n";
  if (run.report.segments.empty()) out << "  (no segments)\n";
  for (const SegmentReport& s : run.report.segments) PrintSegment(out, s);
  const std::vector<LaterSegment>& later = alt ? alt->later : run.later;
  for (const LaterSegment& l : later) {
    out << "  " << BaseName(l.path) << ": after the damage, not replayed: " << l.bytes << " bytes, " << l.records
        << " records would be set aside" << (refused ? " by recovery_mode=" + std::string(ToString(alt->mode)) : "")
        << "\n";
  }
  out << "verdict: " << message << "\n";
  return code;
}

}  // namespace kvd::daemon
