// TruncateWalAfter: cutting a divergent tail off the log, offline, with the
// cut records set aside as WAL segments (docs/wal_format.md §8.4).
#include "kvd/wal.h"
#include "storage/wal_coding.h"

namespace kvd {
namespace {

Status WriteAside(Env* env, const std::string& path, std::string_view data) {
  KVD_ASSIGN_OR_RETURN(auto f, env->NewWritableFile(path, OpenMode::kCreateExclusive));
  KVD_RETURN_IF_ERROR(f->WriteAt(0, AsBytes(data)));
  KVD_RETURN_IF_ERROR(f->SyncAll());
  return f->Close();
}

// Where the cut falls: the verified scan of the log, the segment holding
// lsn + 1, that segment's bytes and the offset of record lsn + 1 in it.
struct CutPlan {
  WalRecoveryReport rep;
  size_t seg = 0;
  std::string data;
  size_t at = 0;
};

// false in *cut: nothing after lsn (report->last_lsn_before is set).
Status PlanCut(Env* env, const std::string& wal_dir, Lsn lsn, WalTruncateReport* report, CutPlan* plan, bool* cut) {
  *report = WalTruncateReport{};
  *cut = false;
  WalRecoveryOptions o;
  o.dir = wal_dir;
  o.mode = RecoveryMode::kAbsolute;
  o.dry_run = true;
  // The log may start later than LSN 1 (a snapshot deleted older segments).
  KVD_ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(wal_dir));
  Lsn first = 0;
  for (const std::string& n : names) {
    if (auto l = ParseSegmentFileName(n); l && (first == 0 || *l < first)) first = *l;
  }
  o.start_lsn = first > 0 ? first - 1 : 0;
  WalRecoveryReport& rep = plan->rep;
  KVD_RETURN_IF_ERROR(RecoverWal(env, o, &rep).Annotate("the WAL must verify before its tail is cut"));
  report->last_lsn_before = rep.last_lsn;
  if (lsn >= rep.last_lsn) return Status::Ok();  // nothing after lsn

  // The segment holding lsn + 1 and where that record starts.
  size_t seg = 0;
  while (seg < rep.segments.size() &&
         (rep.segments[seg].good_records == 0 || rep.segments[seg].last_good_lsn <= lsn)) {
    ++seg;
  }
  if (seg == rep.segments.size() || rep.segments[seg].first_lsn > lsn + 1) {
    return Status::InvalidArgument("LSN " + std::to_string(lsn + 1) +
                                   " is not in the WAL (a snapshot covers it): cannot cut there");
  }
  const SegmentReport& c = rep.segments[seg];
  KVD_ASSIGN_OR_RETURN(plan->data, env->ReadFileToString(c.path));
  const size_t hdr = wal::RecordHeaderBytesFor(c.format_version);
  size_t at = kSegmentHeaderBytes;
  for (;;) {
    const wal::RecordHeader h = wal::ParseRecordHeader(plan->data.data() + at, c.format_version);
    if (h.lsn == lsn + 1) break;
    at += hdr + h.length;  // whole records up to good_bytes: the scan verified them
  }
  plan->seg = seg;
  plan->at = at;
  *cut = true;
  return Status::Ok();
}

// The cut itself, once the copies are durable: from the end backwards, so
// the log stays a prefix.
Status CutLog(Env* env, const std::string& wal_dir, const CutPlan& plan) {
  const auto& segs = plan.rep.segments;
  for (size_t j = segs.size(); j-- > plan.seg + 1;) KVD_RETURN_IF_ERROR(env->RemoveFile(segs[j].path));
  const SegmentReport& cut = segs[plan.seg];
  if (plan.at == kSegmentHeaderBytes) {
    KVD_RETURN_IF_ERROR(env->RemoveFile(cut.path));
  } else {
    KVD_ASSIGN_OR_RETURN(auto f, env->NewWritableFile(cut.path, OpenMode::kExisting));
    KVD_RETURN_IF_ERROR(f->Truncate(plan.at));
    KVD_RETURN_IF_ERROR(f->SyncAll());
    KVD_RETURN_IF_ERROR(f->Close());
  }
  return env->SyncDir(wal_dir);
}

}  // namespace

Status TruncateWalAfter(Env* env, const std::string& wal_dir, Lsn lsn, const std::string& set_aside_dir,
                        WalTruncateReport* report) {
  CutPlan plan;
  bool cut_needed = false;
  KVD_RETURN_IF_ERROR(PlanCut(env, wal_dir, lsn, report, &plan, &cut_needed));
  if (!cut_needed) return Status::Ok();
  const auto& segs = plan.rep.segments;
  const SegmentReport& cut = segs[plan.seg];

  // 1. Copies first, durable before anything in the WAL changes.
  KVD_RETURN_IF_ERROR(env->CreateDirs(set_aside_dir));
  const std::string first_name = SegmentFileName(lsn + 1);
  std::string part = wal::EncodeSegmentHeader(lsn + 1, cut.format_version);
  part.append(plan.data, plan.at, cut.good_bytes - plan.at);
  KVD_RETURN_IF_ERROR(WriteAside(env, JoinPath(set_aside_dir, first_name), part));
  report->set_aside_files.push_back(JoinPath(set_aside_dir, first_name));
  report->records_set_aside = cut.last_good_lsn - lsn;
  for (size_t j = plan.seg + 1; j < segs.size(); ++j) {
    const SegmentReport& s = segs[j];
    KVD_ASSIGN_OR_RETURN(std::string whole, env->ReadFileToString(s.path));
    const std::string to = JoinPath(set_aside_dir, SegmentFileName(s.first_lsn));
    KVD_RETURN_IF_ERROR(WriteAside(env, to, std::string_view(whole).substr(0, s.good_bytes)));
    report->set_aside_files.push_back(to);
    report->records_set_aside += s.good_records;
  }
  KVD_RETURN_IF_ERROR(env->SyncDir(set_aside_dir));

  // 2. Then the cut.
  return CutLog(env, wal_dir, plan);
}

Status TruncateWalAfterToFile(Env* env, const std::string& wal_dir, Lsn lsn, const std::string& set_aside_path,
                              WalTruncateReport* report) {
  CutPlan plan;
  bool cut_needed = false;
  KVD_RETURN_IF_ERROR(PlanCut(env, wal_dir, lsn, report, &plan, &cut_needed));
  if (!cut_needed) return Status::Ok();
  const auto& segs = plan.rep.segments;
  const SegmentReport& cut = segs[plan.seg];

  // 1. One file: a segment header for lsn + 1, then every record after lsn,
  // durable (file and directory) before anything in the WAL changes.
  std::string out = wal::EncodeSegmentHeader(lsn + 1, cut.format_version);
  out.append(plan.data, plan.at, cut.good_bytes - plan.at);
  report->records_set_aside = cut.last_good_lsn - lsn;
  for (size_t j = plan.seg + 1; j < segs.size(); ++j) {
    const SegmentReport& s = segs[j];
    if (s.format_version != cut.format_version) {
      return Status::InvalidArgument("the tail after LSN " + std::to_string(lsn) +
                                     " spans WAL format versions: cannot set it aside as one file");
    }
    KVD_ASSIGN_OR_RETURN(std::string whole, env->ReadFileToString(s.path));
    out.append(whole, kSegmentHeaderBytes, s.good_bytes - kSegmentHeaderBytes);
    report->records_set_aside += s.good_records;
  }
  KVD_RETURN_IF_ERROR(WriteAside(env, set_aside_path, out));
  report->set_aside_files.push_back(set_aside_path);
  KVD_RETURN_IF_ERROR(env->SyncDir(DirName(set_aside_path)));

  // 2. Then the cut.
  return CutLog(env, wal_dir, plan);
}

}  // namespace kvd
