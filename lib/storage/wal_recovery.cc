// RecoverWal: replays every segment in LSN order and applies the recovery
// mode to damage (docs/wal_format.md §6).
#include <algorithm>

#include "kvd/mutation.h"
#include "kvd/wal.h"
#include "storage/wal_coding.h"
#include "storage/wal_reader.h"

namespace kvd {
namespace {

// A name for set-aside bytes that does not overwrite earlier evidence.
std::string FreeBrokenName(Env* env, const std::string& path) {
  std::string name = path + ".broken";
  for (int i = 1; env->FileExists(name); ++i) name = path + ".broken." + std::to_string(i);
  return name;
}

// Copies the dropped bytes aside, then truncates the segment to the damage.
Status CutSegment(Env* env, const std::string& dir, const SegmentReport& seg, std::string_view data,
                  WalRecoveryReport* report) {
  uint64_t end = seg.damage_offset + seg.dropped_bytes;
  std::string broken = FreeBrokenName(env, seg.path);
  if (!KVD_MUTANT(truncate_instead_of_set_aside)) {
    KVD_ASSIGN_OR_RETURN(auto f, env->NewWritableFile(broken, OpenMode::kCreateExclusive));
    KVD_RETURN_IF_ERROR(f->WriteAt(0, AsBytes(data.substr(seg.damage_offset, end - seg.damage_offset))));
    KVD_RETURN_IF_ERROR(f->SyncAll());
    KVD_RETURN_IF_ERROR(f->Close());
  }
  KVD_RETURN_IF_ERROR(env->SyncDir(dir));  // the evidence is durable before the cut
  {
    KVD_ASSIGN_OR_RETURN(auto f, env->NewWritableFile(seg.path, OpenMode::kExisting));
    KVD_RETURN_IF_ERROR(f->Truncate(seg.damage_offset));
    KVD_RETURN_IF_ERROR(f->SyncAll());
    KVD_RETURN_IF_ERROR(f->Close());
  }
  report->broken_file = broken;
  return Status::Ok();
}

Status SetAside(Env* env, const std::string& path, WalRecoveryReport* report) {
  std::string to = FreeBrokenName(env, path);
  KVD_RETURN_IF_ERROR(env->RenameFile(path, to));
  report->set_aside.push_back(to);
  return Status::Ok();
}

Status RefuseStrays(const std::string& dir, const std::vector<StrayFile>& strays) {
  std::string msg = "WAL directory " + dir + " holds " + std::to_string(strays.size()) +
                    " file(s) that are not segments of this log: ";
  for (size_t i = 0; i < strays.size(); ++i) msg += (i > 0 ? "; " : "") + strays[i].path + ": " + strays[i].reason;
  msg += " (no recovery_mode reads them as part of the log; move them out of the directory, then start again)";
  return Status::Corruption(std::move(msg));
}

// Why segment `file` does not continue the log whose last record so far is
// prev (0: none yet), or empty. Records a snapshot covers may have gaps.
std::string Discontinuity(const wal::SegmentFile& file, const std::string& prev_path, Lsn prev, Lsn start_lsn) {
  if (prev == 0) return {};
  if (file.lsn <= prev) {
    return "starts at lsn " + std::to_string(file.lsn) + ", inside " + prev_path + " (which ends at lsn " +
           std::to_string(prev) + "): lsn reordering between segments";
  }
  if (file.lsn > std::max(prev, start_lsn) + 1) {
    return "lsn gap " + std::to_string(std::max(prev, start_lsn)) + " -> " + std::to_string(file.lsn) +
           " between segments: the log before it ends at lsn " + std::to_string(prev) + " in " + prev_path +
           " (a stray file, or the segments in between are missing)";
  }
  return {};
}

Status Refuse(const SegmentReport& seg, RecoveryMode mode) {
  bool torn = seg.damage == DamageKind::kTornTail;
  std::string msg = std::string(torn ? "WAL torn tail in " : "WAL corruption in ") + seg.path + " at offset " +
                    std::to_string(seg.damage_offset) + ": " + seg.damage_reason + " (recovery_mode=" +
                    std::string(ToString(mode)) + " refuses it; ";
  msg += torn ? "recovery_mode=tolerate_tail would cut the " + std::to_string(seg.dropped_bytes) + " bytes there)"
              : "recovery_mode=point_in_time would drop everything from there on)";
  return Status::Corruption(std::move(msg));
}

}  // namespace

Status RecoverWal(Env* env, const WalRecoveryOptions& options, WalRecoveryReport* report) {
  *report = WalRecoveryReport{};
  KVD_ASSIGN_OR_RETURN(wal::WalInventory inv, wal::TakeWalInventory(env, options.dir));
  if (!inv.strays.empty()) {
    report->stray_files = inv.strays;
    return RefuseStrays(options.dir, inv.strays);
  }
  const std::vector<wal::SegmentFile>& files = inv.segments;
  Lsn prev = 0;
  Epoch prev_epoch = 0;
  std::string prev_path;
  for (size_t i = 0; i < files.size(); ++i) {
    bool last = i + 1 == files.size();
    SegmentReport seg;
    seg.path = JoinPath(options.dir, files[i].name);
    if (std::string why = Discontinuity(files[i], prev_path, prev, options.start_lsn); !why.empty()) {
      report->stray_files.push_back({seg.path, std::move(why)});
      return RefuseStrays(options.dir, report->stray_files);
    }
    KVD_ASSIGN_OR_RETURN(wal::SegmentData file, wal::ReadSegmentData(env, seg.path));
    report->bytes_read += file.bytes_read;
    const std::string& data = file.bytes;

    wal::SegmentScanOptions scan{.name_lsn = files[i].lsn, .start_lsn = options.start_lsn, .prev_lsn = prev,
                                 .prev_epoch = prev_epoch, .last_segment = last,
                                 .file_bytes = file.file_bytes, .preallocated_bytes = options.segment_size,
                                 .on_dropped = options.on_dropped_record};
    Status s = wal::ScanSegment(
        data, scan,
        [&](const WalRecord& rec) -> Status {
          report->last_lsn = rec.lsn;
          if (rec.lsn <= options.start_lsn) return Status::Ok();
          ++report->records_replayed;
          report->bytes_replayed += wal::RecordHeaderBytesFor(seg.format_version) + rec.payload.size();
          return options.apply ? options.apply(rec) : Status::Ok();
        },
        &seg);
    report->segments.push_back(seg);
    if (!s.ok()) return s.Annotate(seg.path);
    if (seg.last_good_lsn != 0) {
      prev = seg.last_good_lsn;
      prev_epoch = seg.last_epoch;
      prev_path = seg.path;
    }
    if (options.progress) options.progress(seg);
    if (seg.damage == DamageKind::kNone) continue;

    bool torn = seg.damage == DamageKind::kTornTail;
    if (options.mode == RecoveryMode::kAbsolute || (!torn && options.mode == RecoveryMode::kTolerateTail)) {
      return Refuse(seg, options.mode);
    }
    // Cut here (tolerate_tail: a torn tail of the last segment; point_in_time:
    // the first damage anywhere) and set every later segment aside.
    report->truncated_segment = seg.path;
    report->truncated_offset = seg.damage_offset;
    report->dropped_bytes = seg.dropped_bytes;
    for (size_t j = i + 1; j < files.size(); ++j) {
      KVD_ASSIGN_OR_RETURN(uint64_t size, env->FileSize(JoinPath(options.dir, files[j].name)));
      report->dropped_bytes += size;
    }
    if (options.dry_run) return Status::Ok();

    bool header_bad = seg.good_bytes == 0;  // nothing of this segment is usable
    Status cut = header_bad ? SetAside(env, seg.path, report) : CutSegment(env, options.dir, seg, data, report);
    if (header_bad && cut.ok()) report->broken_file = report->set_aside.back();
    for (size_t j = i + 1; j < files.size() && cut.ok(); ++j) {
      cut = SetAside(env, JoinPath(options.dir, files[j].name), report);
    }
    if (cut.ok()) cut = env->SyncDir(options.dir);
    if (!cut.ok()) return cut.Annotate("cutting the damaged WAL tail");
    report->truncated = true;
    return Status::Ok();
  }
  return Status::Ok();
}

}  // namespace kvd
