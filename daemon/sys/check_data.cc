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
#include "sys/check_data_remedy.h"
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


// What to do for a remedy, in words.
std::string Action(const Remedy& r, const std::vector<StrayFile>& strays, const std::string& wal_path) {
  std::string a;
  if (!strays.empty()) {
    a = "move the " + std::to_string(strays.size()) + " stray file(s) out of " + wal_path + ", then ";
  }
  if (r.as_configured) return a + "start kvd as configured (recovery_mode=" + std::string(ToString(r.mode)) + ")";
  return a + "set recovery_mode = \"" + std::string(ToString(r.mode)) +
         "\" in [storage], start kvd once, then set it back";
}

std::string LsnRange(Lsn first, Lsn last) {
  return first == 0 ? std::string("none") : "lsn " + std::to_string(first) + ".." + std::to_string(last);
}

Json RemedyJson(const Remedy& r, const std::vector<StrayFile>& strays, const std::string& wal_path, Lsn start_lsn) {
  const DryRun& d = r.run;
  Json move = Json::array();
  for (const StrayFile& f : strays) move.push_back(f.path);
  Json set_aside = Json::array();
  if (d.damaged && d.damaged->good_bytes < d.damaged->file_bytes) set_aside.push_back(d.damaged->path + ".broken");
  for (const LaterSegment& l : d.later) set_aside.push_back(l.path + ".broken");
  const Lsn kept_last = std::max(d.report.last_lsn, start_lsn);
  return Json{{"recovery_mode", std::string(ToString(r.mode))},
              {"as_configured", r.as_configured},
              {"move_away", move},
              {"action", Action(r, strays, wal_path)},
              {"keeps",
               {{"snapshot_lsn", start_lsn},
                {"first_lsn", d.report.records_replayed > 0 ? start_lsn + 1 : 0},
                {"last_lsn", kept_last},
                {"records", d.report.records_replayed},
                {"keys", d.keys}}},
              {"drops",
               {{"bytes", d.dropped_bytes},
                {"records", d.dropped_records},
                {"first_lsn", d.dropped_first_lsn},
                {"last_lsn", d.dropped_last_lsn},
                {"valid_records_after_damage", d.dropped_records},
                {"keys_changed", d.keys_changed},
                {"damage_path", d.damaged ? Json(d.damaged->path) : Json(nullptr)},
                {"damage_offset", d.damaged ? Json(d.damaged->damage_offset) : Json(nullptr)},
                {"later_segments", d.later.size()},
                {"set_aside", set_aside}}}};
}

void PrintRemedy(std::ostream& out, size_t n, const Remedy& r, const std::vector<StrayFile>& strays,
                 const std::string& wal_path, Lsn start_lsn) {
  const DryRun& d = r.run;
  out << "  " << n << ". " << Action(r, strays, wal_path) << "\n";
  out << "     keeps: ";
  if (start_lsn > 0) out << "the snapshot (up to lsn " << start_lsn << ") and ";
  out << d.report.records_replayed << " records ("
      << LsnRange(d.report.records_replayed > 0 ? start_lsn + 1 : 0, d.report.last_lsn) << "); " << d.keys
      << " keys\n";
  out << "     drops: ";
  if (d.dropped_bytes == 0) {
    out << "nothing\n";
    return;
  }
  out << d.dropped_bytes << " bytes from " << Where(*d.damaged) << " on (the damaged bytes and all after them)";
  if (d.dropped_records == 0) {
    out << " (no whole record)";
  } else {
    out << ", among them " << d.dropped_records << " VALID records ("
        << LsnRange(d.dropped_first_lsn, d.dropped_last_lsn) << ") that follow the damage";
  }
  if (!d.later.empty()) out << "; sets " << d.later.size() << " later segment(s) aside";
  out << "; " << d.keys_changed << " keys would differ from replaying those records\n";
  out << "     set aside (not deleted) as *.broken next to the segments\n";
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
  const std::string snapshot = used != nullptr ? used->path : std::string();
  DryRun run = RunRecovery(env, config.wal_path, config.recovery_mode, start_lsn, snapshot);
  if (!run.status.ok() && !run.status.IsCorruption()) return fail("reading the WAL: " + run.status.ToString());
  const bool refused = !run.status.ok();

  // Stray files: no mode starts while they are there. Look at the WAL as it
  // would be once they are moved away (a discontinuity shows only when the
  // log before it has been read, so hide and look again).
  HidingEnv view(env);
  std::vector<StrayFile> strays;
  DryRun moved = run;  // the configured mode, once the strays are moved away
  while (!moved.report.stray_files.empty() && strays.size() < 1000) {
    for (const StrayFile& f : moved.report.stray_files) {
      strays.push_back(f);
      view.Hide(BaseName(f.path));
    }
    moved = RunRecovery(&view, config.wal_path, config.recovery_mode, start_lsn, snapshot);
  }
  // The segments as recovery would read them (once the strays are away).
  const std::vector<SegmentReport>& segments = moved.report.segments;
  const std::vector<Remedy> remedies = Remedies(&view, config.wal_path, config.recovery_mode, start_lsn, snapshot);

  // If it refuses, what would the mode that accepts the damage drop?
  std::optional<DryRun> alt;
  if (refused && run.damaged && strays.empty()) {
    const bool torn = run.damaged->damage == DamageKind::kTornTail;
    const RecoveryMode alt_mode = torn && config.recovery_mode == RecoveryMode::kAbsolute
                                      ? RecoveryMode::kTolerateTail
                                      : RecoveryMode::kPointInTime;
    alt = RunRecovery(env, config.wal_path, alt_mode, start_lsn, snapshot);
  }

  // ---- the verdict.
  std::string verdict, message;
  bool lost = false;
  if (refused) {
    lost = true;
    verdict = "refuse";
    if (!strays.empty()) {
      message = "would refuse to start: " + std::to_string(strays.size()) + " file(s) in " + config.wal_path +
                " are not segments of this log (";
      for (size_t i = 0; i < strays.size(); ++i) message += (i > 0 ? ", " : "") + BaseName(strays[i].path);
      message += "); no recovery_mode starts while they are there: move them out of the directory";
    } else if (!run.damaged) {
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
    for (const SegmentReport& s : segments) segs.push_back(SegmentJson(s));
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
    Json stray = Json::array();
    for (const StrayFile& f : strays) stray.push_back({{"path", f.path}, {"reason", f.reason}});
    j["stray_files"] = stray;
    Json rem = Json::array();
    for (const Remedy& r : remedies) rem.push_back(RemedyJson(r, strays, config.wal_path, start_lsn));
    j["remedies"] = rem;
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
  if (segments.empty()) out << "  (no segments)\n";
  for (const SegmentReport& s : segments) PrintSegment(out, s);
  const std::vector<LaterSegment>& later = alt ? alt->later : run.later;
  for (const LaterSegment& l : later) {
    out << "  " << BaseName(l.path) << ": after the damage, not replayed: " << l.bytes << " bytes, " << l.records
        << " records would be set aside" << (refused ? " by recovery_mode=" + std::string(ToString(alt->mode)) : "")
        << "\n";
  }
  if (!strays.empty()) {
    out << "not segments of this log (kvd refuses to start while they are in " << config.wal_path << "):\n";
    for (const StrayFile& f : strays) out << "  " << BaseName(f.path) << ": " << f.reason << "\n";
  }
  out << "verdict: " << message << "\n";
  if (lost) {
    if (remedies.empty()) {
      out << "remedies: none: no recovery_mode would start on this WAL\n";
    } else {
      out << "remedies, least destructive first:\n";
      for (size_t i = 0; i < remedies.size(); ++i) {
        PrintRemedy(out, i + 1, remedies[i], strays, config.wal_path, start_lsn);
      }
    }
  }
  return code;
}

}  // namespace kvd::daemon
