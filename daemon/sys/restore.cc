#include "sys/restore.h"

#include <fmt/format.h>

#include <memory>
#include <set>

#include "kvd/engine.h"
#include "kvd/salvage.h"
#include "kvd/snapshot.h"

namespace kvd::daemon {
namespace {

constexpr int kDone = 0;
constexpr int kRefused = 1;
constexpr int kCannotRead = 2;

// Empty, or holding only the LOCK file a stopped kvd leaves behind.
Status CheckEmpty(Env* env, const std::string& dir) {
  auto names = env->ListDir(dir);
  if (!names.has_value()) return names.error().IsNotFound() ? Status::Ok() : names.error();
  std::vector<std::string> found;
  for (const std::string& n : *names) {
    if (n != "LOCK") found.push_back(n);
  }
  if (found.empty()) return Status::Ok();
  return Status::InvalidArgument(fmt::format(
      "{} is not empty ({} entr{}, e.g. {}): restore only into an empty data directory (point wal_path and "
      "snapshot_path at new directories, or move these files away)",
      dir, found.size(), found.size() == 1 ? "y" : "ies", found.front()));
}

EngineOptions OptionsFor(const Config& config, Env* env) {
  EngineOptions eo;
  eo.env = env;
  eo.wal_dir = config.wal_path;
  eo.snapshot_dir = config.snapshot_path;
  eo.segment_size = config.segment_size;
  eo.recovery_mode = RecoveryMode::kAbsolute;  // nothing but the snapshot is there: any damage is a bug
  eo.max_key_bytes = config.max_key_bytes;
  eo.max_value_bytes = config.max_value_bytes;
  return eo;
}

}  // namespace

int Restore(const Config& config, const std::string& file, std::ostream& out, std::ostream& err, Env* env) {
  auto info = VerifySnapshot(env, file);
  if (!info.has_value()) {
    err << "kvd --restore: " << file << " is not a valid backup: " << info.error().message() << "\n";
    return kRefused;
  }
  std::vector<std::unique_ptr<FileLock>> locks;
  for (const std::string& dir : std::set<std::string>{config.wal_path, config.snapshot_path}) {
    Status st = CheckEmpty(env, dir);
    if (st.ok()) st = env->CreateDirs(dir);
    if (!st.ok()) {
      err << "kvd --restore: refusing: " << st.message() << "\n";
      return kRefused;
    }
    auto lock = env->LockFile(JoinPath(dir, "LOCK"));
    if (!lock.has_value()) {
      err << "kvd --restore: " << dir << " is in use by a running kvd: " << lock.error().message() << "\n";
      return kRefused;
    }
    locks.push_back(std::move(lock).value());
  }
  // Read whole: the engine loads it whole right after anyway.
  auto bytes = env->ReadFileToString(file);
  Status st = bytes.has_value() ? Status::Ok() : bytes.error();
  const std::string target = JoinPath(config.snapshot_path, SnapshotFileName(info->lsn));
  if (st.ok()) st = WriteFileAtomic(env, target, AsBytes(*bytes));
  if (!st.ok()) {
    err << "kvd --restore: installing the backup as " << target << " failed: " << st.message() << "\n";
    return kRefused;
  }
  bytes = std::string();
  // Open once: recovery loads the snapshot, finds an empty WAL, writes the
  // epoch history and the first segment; a later start finds a normal data
  // directory at exactly this LSN.
  RecoveryReport report;
  auto engine = Engine::Open(OptionsFor(config, env), &report);
  if (!engine.has_value()) {
    err << "kvd --restore: the restored data directory does not open: " << engine.error().message() << "\n";
    return kRefused;
  }
  Status closed = (*engine)->Close(nullptr);
  if (!closed.ok() || report.snapshot_lsn != info->lsn || report.last_lsn != info->lsn ||
      report.keys != info->entries) {
    err << "kvd --restore: the restored data directory is not the backup (lsn " << report.last_lsn << ", "
        << report.keys << " keys; expected lsn " << info->lsn << ", " << info->entries << " keys)"
        << (closed.ok() ? "" : ": " + closed.message()) << "\n";
    return kRefused;
  }
  out << fmt::format("restored {}: lsn={} keys={} digest={:016x} into wal_path={} snapshot_path={}\n", file,
                     info->lsn, report.keys, report.digest, config.wal_path, config.snapshot_path);
  return kDone;
}

int Salvage(const std::vector<std::string>& files, const std::string& out_path, std::ostream& out, std::ostream& err,
            Env* env) {
  if (env->FileExists(out_path)) {
    err << "kvd --salvage: " << out_path << " exists; choose a new --out file\n";
    return kRefused;
  }
  State state;
  SalvageReport r;
  Status st = SalvageWalFiles(env, files, &state, &r);
  if (!st.ok()) {
    err << "kvd --salvage: " << st.message() << "\n";
    return kCannotRead;
  }
  for (const SalvageFileReport& f : r.files) {
    out << fmt::format("{}: {} bytes, {}: {} records", f.path, f.bytes,
                       f.segment_header ? "a whole segment" : "bytes cut from a segment", f.records);
    if (f.records > 0) out << fmt::format(" (LSN {}..{})", f.first_lsn, f.last_lsn);
    out << fmt::format(", {} bytes unreadable\n", f.unreadable_bytes);
    for (const auto& [b, e] : f.unreadable) out << fmt::format("  unreadable: bytes {}..{} ({} bytes)\n", b, e, e - b);
  }
  if (r.records == 0) {
    err << "kvd --salvage: no readable record in " << files.size() << " file(s); nothing written\n";
    return kRefused;
  }
  out << fmt::format("salvaged {} records, LSN {}..{} ({} LSNs in that range missing), {} keys", r.records,
                     r.first_lsn, r.last_lsn, r.missing_lsns, r.keys);
  if (r.duplicates > 0) out << fmt::format(", {} duplicate records", r.duplicates);
  if (r.conflicts > 0) out << fmt::format(", {} conflicting records (the first file's kept)", r.conflicts);
  out << "\n";
  if (r.delete_records > 0) {
    out << fmt::format(
        "note: {} records delete keys; a snapshot holds only keys that exist, so those deletes are not in {}\n",
        r.delete_records, out_path);
  }
  auto written = WriteSnapshotFile(env, out_path, state, r.last_lsn);
  if (!written.has_value()) {
    err << "kvd --salvage: writing " << out_path << " failed: " << written.error().message() << "\n";
    return kRefused;
  }
  out << fmt::format("wrote {} (snapshot format, lsn={}, {} keys, {} bytes): load it with kvd --restore {} "
                     "--config FILE into an empty data directory\n",
                     out_path, r.last_lsn, written->entries, written->bytes, out_path);
  return kDone;
}

}  // namespace kvd::daemon
