// The write-ahead log: record framing, the segment writer and recovery.
// docs/wal_format.md is the normative description of the bytes on disk.
//
// Record, format v2 (all little-endian; v1 lacked flags and epoch):
//   u32 masked_crc32c   of everything after the length (LevelDB's mask)
//   u32 payload_length
//   u8  type            1 PUT, 2 DEL, 3 BATCH, 4 DEL_RANGE; 0x80.. may be skipped by a
//                       reader that does not know them, 0x01..0x7f may not
//   u8  flags           bits 0-3 must be understood, bits 4-7 may be ignored
//   u64 lsn
//   u64 epoch
//   payload
// A record is self-describing: LSN and epoch are under its CRC, so it can be
// shipped to another node as it is on disk.
// A segment file wal-<20-digit first LSN>.log starts with a 32-byte header
// (magic, version, first LSN, header CRC) and is preallocated; the zeroed,
// never-written rest reads as its end. The writer writes v2 segments;
// recovery reads v1 and v2.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvd/env.h"
#include "kvd/state.h"
#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd {

enum class RecordType : uint8_t { kPut = 1, kDel = 2, kBatch = 3, kDelRange = 4 };
// The highest must-understand type this reader knows.
inline constexpr uint8_t kLastKnownRecordType = 4;

// Known types; a type >= kFirstSkippableType that a reader does not know is
// verified (CRC, LSN, epoch) and then skipped: it changes no key.
inline constexpr uint8_t kFirstSkippableType = 0x80;
// Record flags: a set bit in kMustUnderstandFlags that the reader does not
// know makes the record unreadable (corruption); the other bits are ignored.
inline constexpr uint8_t kMustUnderstandFlags = 0x0f;
inline constexpr uint8_t kKnownRecordFlags = 0x00;

inline constexpr size_t kRecordHeaderBytes = 26;    // format v2, what the writer writes
inline constexpr size_t kRecordHeaderBytesV1 = 17;  // format v1 (read only)
inline constexpr size_t kSegmentHeaderBytes = 32;
inline constexpr uint64_t kDefaultSegmentSize = 64ull * 1024 * 1024;

struct WalRecord {
  RecordType type;
  Lsn lsn;
  std::string_view payload;
  Epoch epoch = kFirstEpoch;  // v1 records: kFirstEpoch
  uint8_t flags = 0;
  // The whole record as framed (header + payload), when read from a v2
  // buffer or segment: what replication ships. Empty for v1 records.
  std::string_view encoded = {};
};

// Appends one framed v2 record to *buf. Callers validate sizes first.
void AppendPutRecord(std::string* buf, Lsn lsn, Epoch epoch, std::string_view key, std::string_view value);
void AppendDelRecord(std::string* buf, Lsn lsn, Epoch epoch, std::string_view key);
void AppendBatchRecord(std::string* buf, Lsn lsn, Epoch epoch, std::span<const BatchOp> ops);
// A range delete: one record, one LSN, whatever number of keys it removes.
void AppendDelRangeRecord(std::string* buf, Lsn lsn, Epoch epoch, const KeyRange& range);
// Decodes a DEL_RANGE payload (views into it); kCorruption if it does not.
Result<KeyRange> DecodeDelRangePayload(const WalRecord& rec);

// Walks a buffer of whole framed v2 records (as produced by Append*Record)
// without verifying CRCs: for the live path, which made the buffer itself.
// fn returns false to stop.
void ForEachRecord(std::string_view buf, const std::function<bool(const WalRecord&)>& fn);

// Parses and verifies a buffer of whole framed v2 records that came from
// elsewhere (another node's WAL): every header must fit, every CRC verify,
// every type and must-understand flag be known or skippable. fn sees each
// record in order; the first failure is kCorruption naming the offset.
Status ForEachVerifiedRecord(std::string_view buf, const std::function<Status(const WalRecord&)>& fn);

// Applies one record to state, deterministically: recovery, the live path
// and a replica's apply all go through here. For PUT/DEL, *existed tells
// whether the key was present before (BATCH: whether its first op's key was;
// DEL_RANGE: whether any key was). *removed, when given, is the number of
// keys a DEL_RANGE deleted (PUT/DEL/BATCH: 0). A skippable type (>= kFirstSkippableType) changes nothing. kCorruption if
// the payload does not decode (never from our own buffers).
Status ApplyRecord(State* state, const WalRecord& rec, bool* existed = nullptr, uint64_t* removed = nullptr);
// Whether ApplyRecord would accept rec, without applying it.
Status CheckRecordPayload(const WalRecord& rec);

std::string SegmentFileName(Lsn first_lsn);
std::optional<Lsn> ParseSegmentFileName(std::string_view name);

// ---- recovery --------------------------------------------------------------

enum class DamageKind : uint8_t {
  kNone,
  kTornTail,    // bad bytes at the end of the last segment, nothing valid after
  kCorruption,  // a bad record followed by valid ones, a bad segment header
                // before the last segment, or a gap / reordering of LSNs
};
std::string_view ToString(DamageKind k);

struct SegmentReport {
  std::string path;
  Lsn first_lsn = 0;        // from the header (or the name if the header is bad)
  uint32_t format_version = 0;  // from a verified header (0: unknown)
  Epoch last_epoch = 0;     // epoch of the last good record (0 if none)
  Lsn last_good_lsn = 0;    // 0 if no good record
  uint64_t good_records = 0;
  uint64_t good_bytes = 0;  // offset just past the last good record
  uint64_t file_bytes = 0;
  DamageKind damage = DamageKind::kNone;
  uint64_t damage_offset = 0;
  std::string damage_reason;    // "crc mismatch", "length past end", "lsn gap 41 -> 43", ...
  uint64_t dropped_bytes = 0;   // non-zero bytes from damage_offset to the end of data
  uint64_t dropped_records = 0; // valid-looking records found after the damage
  Lsn dropped_first_lsn = 0;    // their LSNs (0: none)
  Lsn dropped_last_lsn = 0;
};

// A file in the WAL directory named like a segment that is not one of this
// log's segments (docs/wal_format.md §6): recovery refuses to start, in
// every mode, until it is moved away; it is never read as part of the log.
struct StrayFile {
  std::string path;
  std::string reason;
  bool operator==(const StrayFile&) const = default;
};

struct WalRecoveryReport {
  std::vector<SegmentReport> segments;
  std::vector<StrayFile> stray_files;  // non-empty: recovery refused
  Lsn last_lsn = 0;              // last record replayed (or skipped as covered)
  uint64_t records_replayed = 0; // records with LSN > the start LSN that were applied
  uint64_t bytes_replayed = 0;
  bool truncated = false;        // a torn tail was cut (not in a dry run)
  std::string truncated_segment;
  uint64_t truncated_offset = 0;
  uint64_t dropped_bytes = 0;
  std::string broken_file;       // where the dropped bytes were kept
  std::vector<std::string> set_aside;  // point_in_time: later segments renamed *.broken
  uint64_t bytes_read = 0;       // from segment files (the zero region is skipped, not read)
  bool data_lost() const { return dropped_bytes > 0 || !set_aside.empty(); }
};

struct WalRecoveryOptions {
  std::string dir;
  RecoveryMode mode = RecoveryMode::kTolerateTail;
  // Records with LSN <= start_lsn are covered by the snapshot: checked, not applied.
  Lsn start_lsn = 0;
  // Examine only: change nothing on disk (kvd --check-data).
  bool dry_run = false;
  // Called for each good record with LSN > start_lsn, in LSN order.
  std::function<Status(const WalRecord&)> apply;
  // Progress, called after each segment (for sd_notify STATUS/EXTEND_TIMEOUT).
  std::function<void(const SegmentReport&)> progress;
  // The writer's segment_size (0: unknown). A segment whose header says it
  // was preallocated (fallocate worked), shorter than this, whose last record
  // runs past the end of the file was shrunk: a crash does not do that, so
  // it is corruption, not a torn tail. Without the header flag (an older
  // writer, or a file system without fallocate) such a tail stays a torn one.
  uint64_t segment_size = 0;
  // Called for each valid record found after the damage in the damaged
  // segment, in order (what a cut there drops; kvd --check-data counts it).
  std::function<void(const WalRecord&)> on_dropped_record;
};

// Scans every segment in order and replays it. Damage handling per mode:
// tolerate_tail cuts a torn tail (the bad bytes are copied to
// <segment>.broken, the segment truncated and fsynced) and refuses
// corruption; absolute refuses both; point_in_time stops at the first damage,
// cuts there and renames every later segment to *.broken.
// A refusal is kCorruption whose message names file, offset, reason and the
// recovery_mode that would accept it; the report is still filled.
// Stray files (StrayFile) are refused in every mode before anything is read
// or changed, and so is a segment whose first LSN does not continue the log
// before it (a gap or an overlap between segments no snapshot covers): they
// are listed in report->stray_files by name.
Status RecoverWal(Env* env, const WalRecoveryOptions& options, WalRecoveryReport* report);

// Cuts the log after `lsn`, for a divergent tail, offline (no writer open).
// The whole log must verify (recover it first). The records after `lsn` are
// set aside, never deleted: copied into set_aside_dir (created if missing)
// as WAL segments of their own format version (the cut part of a segment as
// wal-<lsn + 1>.log with its own header, later segments whole), fsynced with
// their directory; then the WAL segment holding lsn + 1 is truncated (or
// removed if it starts there) and later ones removed, last first, and the
// directory fsynced. A crash in between leaves a shorter log and the copies.
// kInvalidArgument if the records up to lsn are not all in the WAL (a
// snapshot deleted their segments) or a set-aside file already exists.
struct WalTruncateReport {
  Lsn last_lsn_before = 0;
  uint64_t records_set_aside = 0;
  std::vector<std::string> set_aside_files;
};
Status TruncateWalAfter(Env* env, const std::string& wal_dir, Lsn lsn, const std::string& set_aside_dir,
                        WalTruncateReport* report);
// The same cut, with every record after lsn set aside in ONE file,
// set_aside_path (created exclusively: kAlreadyExists-like failure if it is
// there): a segment header for lsn + 1, then the records exactly as they
// were, so `kvd --salvage` and the WAL readers read it like a segment. A
// replica cutting a divergent tail names it wal/diverged-<first>-<last>.broken
// (docs/replication.md §5). Same order as above: the copy is durable (file
// and directory) before the log changes.
Status TruncateWalAfterToFile(Env* env, const std::string& wal_dir, Lsn lsn, const std::string& set_aside_path,
                              WalTruncateReport* report);

// ---- the writer --------------------------------------------------------------

struct WalWriterOptions {
  std::string dir;
  uint64_t segment_size = kDefaultSegmentSize;
  // fallocate each new segment (falls back to growing the file on
  // kUnsupported, logged once through on_warning).
  bool preallocate = true;
  std::function<void(std::string_view)> on_warning;
};

struct WalStats {
  uint64_t segments = 0;
  uint64_t bytes = 0;  // bytes of records in all live segments
  std::string active_segment;
  uint64_t zeroed_ahead = 0;  // written (and synced) zeros after the last record
  // Bytes of records written since the writer opened; only grows (dropped
  // segments do not lower it). What "the WAL grew by" is measured in.
  uint64_t appended_bytes = 0;
};

// Appends framed records to segments. Owned by one thread at a time (the
// committer's). Invariants: the bytes on disk in the active segment are whole
// records followed by zeros; a failed Write leaves the file as it was before
// the call (a partial write is cut back).
class WalWriter {
 public:
  // Opens for appending after RecoverWal: continues the last segment at its
  // good end if it has room, else creates a segment starting at next_lsn.
  static Result<std::unique_ptr<WalWriter>> Open(Env* env, WalWriterOptions options,
                                                 const WalRecoveryReport& recovered, Lsn next_lsn);
  virtual ~WalWriter() = default;

  // Writes whole records (first..last, consecutive LSNs) and rolls to a new
  // segment when the next record does not fit. Rolling fdatasyncs the old
  // segment first, and creating a segment fsyncs it and its directory, so a
  // torn tail can only ever be in the last segment.
  // Errors: kNoSpace (nothing of this call remains; retrying later is safe),
  // kIOError (the file may be damaged: callers stop writing).
  virtual Status Write(std::string_view records, Lsn first, Lsn last) = 0;
  // fdatasync of the active segment. A failure is final (never retry).
  virtual Status Sync() = 0;
  // Housekeeping for an idle moment, kept off the commit path: writes and
  // fdatasyncs zeros ahead of the next record when fewer than a few hundred
  // KiB are left, so that later fdatasyncs overwrite initialised blocks and
  // need no journal commit. Skipping it costs only speed. A failure is
  // final like Sync's: later calls report it.
  virtual Status ZeroFillAhead() { return Status::Ok(); }
  // Deletes segments whose records all have LSN <= lsn; never the active one.
  virtual Status DropSegmentsUpTo(Lsn lsn, int* dropped) = 0;
  virtual WalStats stats() const = 0;
  // Syncs and closes; the active segment is trimmed to its data.
  virtual Status Close() = 0;
};

}  // namespace kvd
