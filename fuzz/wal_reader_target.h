// Fuzz target logic for the WAL reader (lib/storage/wal_reader.cc,
// wal_recovery.cc): the input is the bytes of one WAL segment file, replayed
// through RecoverWal on an in-memory Env (fuzz/mem_env.h):
//   1. as the only (last) segment: dry run in tolerate_tail and
//      point_in_time, then a real tolerate_tail recovery that cuts a torn
//      tail, then a second dry run over what the cut left;
//   2. as a segment followed by a valid one-record segment (so damage in it
//      is mid-log corruption), dry run in tolerate_tail and point_in_time.
// Shared by fuzz/wal_reader_fuzz.cc and tests/storage/storage_fuzz_regression_test.cc.
//
// Invariants: never crashes; a refusal or an undecodable record is
// kCorruption; reported offsets and byte counts lie within the file; applied
// records have strictly increasing LSNs above start_lsn and a dry run changes
// no byte; a torn tail is only ever reported in the last segment; a cut keeps
// the dropped bytes in the .broken file, and recovering again after the cut
// finds no damage and replays exactly the same records.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "fuzz/mem_env.h"
#include "kvd/state.h"
#include "kvd/wal.h"
#include "storage/wal_coding.h"

namespace kvd::fuzz {

inline constexpr char kWalFuzzDir[] = "/wal";

struct WalFuzzRun {
  Status status;
  WalRecoveryReport report;
  std::vector<Lsn> applied;
  uint64_t digest = 0;
};

inline WalFuzzRun RecoverForFuzz(MemEnv* env, RecoveryMode mode, bool dry_run, Lsn start_lsn) {
  WalFuzzRun run;
  State state;
  WalRecoveryOptions o;
  o.dir = kWalFuzzDir;
  o.mode = mode;
  o.dry_run = dry_run;
  o.start_lsn = start_lsn;
  o.apply = [&](const WalRecord& rec) {
    KVD_FUZZ_CHECK(rec.lsn > start_lsn);
    KVD_FUZZ_CHECK(run.applied.empty() || rec.lsn > run.applied.back());
    run.applied.push_back(rec.lsn);
    return ApplyRecord(&state, rec);
  };
  const auto before = env->files();
  size_t segment_files = 0;
  for (const auto& [p, d] : before) segment_files += ParseSegmentFileName(p.substr(p.rfind('/') + 1)) ? 1 : 0;
  run.status = RecoverWal(env, o, &run.report);
  run.digest = state.Digest();
  KVD_FUZZ_CHECK(run.status.ok() || run.status.code() == Code::kCorruption);
  if (dry_run) KVD_FUZZ_CHECK(env->files() == before);
  const WalRecoveryReport& r = run.report;
  for (size_t i = 0; i < r.segments.size(); ++i) {
    const SegmentReport& s = r.segments[i];
    const bool last = i + 1 == segment_files;
    KVD_FUZZ_CHECK(s.good_bytes <= s.file_bytes);
    KVD_FUZZ_CHECK(s.damage_offset <= s.file_bytes);
    KVD_FUZZ_CHECK(s.dropped_bytes <= s.file_bytes - s.damage_offset);
    if (s.damage == DamageKind::kNone) KVD_FUZZ_CHECK(s.dropped_bytes == 0 && s.dropped_records == 0);
    if (s.damage != DamageKind::kNone) KVD_FUZZ_CHECK(s.good_bytes <= s.damage_offset);
    if (s.damage == DamageKind::kTornTail) KVD_FUZZ_CHECK(last);
    if (s.good_records > 0) KVD_FUZZ_CHECK(s.last_good_lsn >= s.first_lsn);
  }
  if (!run.applied.empty()) KVD_FUZZ_CHECK(run.applied.back() <= r.last_lsn);
  KVD_FUZZ_CHECK(r.records_replayed == run.applied.size() || !run.status.ok());
  return run;
}

inline int WalReaderTarget(const uint8_t* data, size_t size) {
  if (size > (1u << 20)) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  // Name the file after the LSN its header claims, so valid seeds are valid.
  Lsn first = 1;
  if (size >= 24) first = wal::GetFixed64(bytes.data() + 16);
  if (first == 0 || first > (Lsn{1} << 62)) first = 1;
  const std::string path = JoinPath(kWalFuzzDir, SegmentFileName(first));
  const Lsn start_lsn = first - 1;

  // 1. The only segment: a torn tail is possible.
  {
    MemEnv env;
    env.files()[path] = bytes;
    WalFuzzRun tolerate = RecoverForFuzz(&env, RecoveryMode::kTolerateTail, true, start_lsn);
    WalFuzzRun pit = RecoverForFuzz(&env, RecoveryMode::kPointInTime, true, start_lsn);
    if (tolerate.status.ok()) {
      // Whatever tolerate_tail accepts, point_in_time accepts the same way.
      KVD_FUZZ_CHECK(pit.status.ok() && pit.applied == tolerate.applied && pit.digest == tolerate.digest);
    }
    WalFuzzRun cut = RecoverForFuzz(&env, RecoveryMode::kTolerateTail, false, start_lsn);
    KVD_FUZZ_CHECK(cut.status.ok() == tolerate.status.ok());
    if (cut.status.ok()) {
      KVD_FUZZ_CHECK(cut.applied == tolerate.applied && cut.digest == tolerate.digest);
      if (cut.report.truncated && !cut.report.broken_file.empty()) {
        KVD_FUZZ_CHECK(env.FileExists(cut.report.broken_file));
        const SegmentReport& s = cut.report.segments.back();
        if (cut.report.set_aside.empty()) {
          KVD_FUZZ_CHECK(env.files()[cut.report.broken_file] == bytes.substr(s.damage_offset, s.dropped_bytes));
          KVD_FUZZ_CHECK(env.files()[path] == bytes.substr(0, s.damage_offset));
        }
      }
      // Recovering again changes nothing and finds no damage.
      WalFuzzRun again = RecoverForFuzz(&env, RecoveryMode::kAbsolute, true, start_lsn);
      KVD_FUZZ_CHECK(again.status.ok());
      KVD_FUZZ_CHECK(again.applied == cut.applied && again.digest == cut.digest);
    }
  }

  // 2. Followed by a valid segment: damage here is mid-log corruption.
  {
    MemEnv env;
    env.files()[path] = bytes;
    WalFuzzRun probe = RecoverForFuzz(&env, RecoveryMode::kPointInTime, true, start_lsn);
    const Lsn next = std::max(probe.report.last_lsn, first) + 1;
    std::string tail = wal::EncodeSegmentHeader(next);
    AppendPutRecord(&tail, next, kFirstEpoch, "k", "v");
    env.files()[JoinPath(kWalFuzzDir, SegmentFileName(next))] = tail;
    WalFuzzRun tolerate = RecoverForFuzz(&env, RecoveryMode::kTolerateTail, true, start_lsn);
    WalFuzzRun pit = RecoverForFuzz(&env, RecoveryMode::kPointInTime, true, start_lsn);
    KVD_FUZZ_CHECK(pit.status.ok() || pit.status.code() == Code::kCorruption);
    if (tolerate.status.ok()) KVD_FUZZ_CHECK(pit.status.ok() && pit.applied == tolerate.applied);
  }
  return 0;
}

}  // namespace kvd::fuzz
