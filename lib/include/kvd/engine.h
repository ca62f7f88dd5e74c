// Engine: recovery, the WAL, group commit and the State, as one object.
//
// The write path, in the order data flows:
//   Put/Del/Batch (owner thread) -> record appended to the pending buffer,
//   LSN assigned -> the committer thread writes the group and fdatasyncs
//   -> options.notify() -> the owner calls Poll() -> the group is applied to
//   the State (sync mode) and every write now durable is reported to the sink.
//
// Threading: every method is called from one owner thread (the daemon's loop
// thread), except that options.notify is invoked on the committer thread.
// Only one commit (write + fdatasync) runs at a time; writes that arrive
// while it runs form the next group.
//
// Visibility (docs/durability.md): in sync mode a write is applied to the
// State only after the fdatasync covering it returned, so reads never see
// data that a crash could still take away. In batch and none mode writes are
// applied (and normally acknowledged) at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "kvd/env.h"
#include "kvd/epoch_history.h"
#include "kvd/snapshot.h"
#include "kvd/state.h"
#include "kvd/status.h"
#include "kvd/types.h"
#include "kvd/wal.h"

namespace kvd {

using Clock = std::chrono::steady_clock;

struct DurabilityOptions {
  DurabilityMode mode = DurabilityMode::kSync;
  // sync: the most records in one group. batch: fewer than batch_size
  // acknowledged records are ever not yet durable (1 = every write is synced
  // before it is acknowledged, as the original engine's SETBATCH 1).
  uint32_t batch_size = 1024;
  // batch: no acknowledged record stays not-durable longer than this.
  // none: buffered records are written (not synced) at least this often.
  std::chrono::microseconds flush_interval{10'000};
};

struct EngineOptions {
  Env* env = nullptr;  // nullptr = Env::Default()
  std::string wal_dir;
  std::string snapshot_dir;
  uint64_t segment_size = kDefaultSegmentSize;
  bool preallocate = true;
  RecoveryMode recovery_mode = RecoveryMode::kTolerateTail;
  DurabilityOptions durability;
  uint32_t max_key_bytes = kMaxKeyBytes;
  uint32_t max_value_bytes = kMaxValueBytes;
  // Invoked on the committer thread after each commit finishes; the owner
  // must then call Poll() on its own thread (the daemon: uv_async_send).
  // If empty, callers use WaitDurable/Poll themselves.
  std::function<void()> notify;
  // Progress of recovery (segment done), for sd_notify.
  std::function<void(const SegmentReport&)> recovery_progress;
  // Non-fatal oddities worth a log line (fallocate unsupported, ...).
  std::function<void(std::string_view)> on_warning;
};

struct RecoveryReport {
  std::string snapshot_path;     // empty: none used
  Lsn snapshot_lsn = 0;
  uint64_t snapshot_entries = 0;
  std::vector<std::string> snapshot_failures;  // newer snapshots rejected, with why
  WalRecoveryReport wal;
  EpochHistory epochs;           // as opened (after any rebuild or clamp)
  // The epoch history file was missing and was rebuilt from the records
  // recovery read (docs/wal_format.md §8.3).
  bool epoch_history_rebuilt = false;
  Lsn last_lsn = 0;              // next write gets last_lsn + 1
  uint64_t keys = 0;
  uint64_t digest = 0;
  std::chrono::microseconds duration{0};
};

// The result of submitting a write.
struct WriteTicket {
  Lsn lsn = 0;
  // true: acknowledge now (batch/none mode within the bound); the write is
  // applied and `existed` is valid. false: wait for the sink's OnWriteDone.
  bool done = false;
  bool existed = false;
};

// Receives completions from Poll(), in LSN order.
class CompletionSink {
 public:
  virtual ~CompletionSink() = default;
  // A write whose ticket was not done has finished: durable and applied
  // (status OK, existed valid) or failed (status says why; never applied).
  virtual void OnWriteDone(Lsn lsn, const Status& status, bool existed) = 0;
  // A RequestFlush finished: everything up to durable_lsn is durable.
  virtual void OnFlushDone(uint64_t token, const Status& status, Lsn durable_lsn) = 0;
};

struct EngineStats {
  Lsn last_lsn = 0, durable_lsn = 0, applied_lsn = 0;
  uint64_t groups = 0;            // commits that fdatasynced
  uint64_t grouped_records = 0;   // records they covered (mean group = grouped_records / groups)
  uint64_t sync_p50_us = 0, sync_p99_us = 0, sync_max_us = 0;
  uint64_t last_sync_us = 0;
  uint64_t pending_records = 0;   // appended, not yet durable
  WalStats wal;
  std::string write_refusal;      // empty while writes are accepted
  std::string no_space;           // last ENOSPC message while out of space, else empty
};

class Engine {
 public:
  // Locks nothing (the daemon locks the data directory), recovers
  // (newest valid snapshot, then WAL replay per recovery_mode), opens the WAL
  // writer and starts the committer thread. *report is filled even on failure
  // as far as recovery got.
  static Result<std::unique_ptr<Engine>> Open(EngineOptions options, RecoveryReport* report);
  // Offline (no engine open on these directories): cuts a divergent tail
  // after lsn (e.g. the fork point with a new primary), setting the records
  // aside in set_aside_dir (TruncateWalAfter in kvd/wal.h), and drops the
  // epochs that began after lsn from the epoch history. kInvalidArgument if
  // a snapshot covers an LSN after lsn (its state includes the tail: a full
  // resync is needed instead). Safe to run again after a crash.
  static Status TruncateAfter(EngineOptions options, Lsn lsn, const std::string& set_aside_dir,
                              WalTruncateReport* report = nullptr);
  virtual ~Engine() = default;

  // ---- writes -------------------------------------------------------------
  // Sizes are checked (kTooLarge). kWritesRefused after a failed fdatasync,
  // kNoSpace while the disk is full. `durable` demands an acknowledgement
  // only after fdatasync, whatever the mode.
  virtual Result<WriteTicket> Put(std::string_view key, std::string_view value, bool durable) = 0;
  virtual Result<WriteTicket> Del(std::string_view key, bool durable) = 0;
  virtual Result<WriteTicket> Batch(std::span<const BatchOp> ops, bool durable) = 0;
  // Everything appended so far becomes durable; sink.OnFlushDone(token) then.
  virtual void RequestFlush(uint64_t token) = 0;

  // ---- epochs and replication ----------------------------------------------
  // New records are written in current_epoch(); epoch_history() says which
  // epoch owns which LSNs (kvd/epoch_history.h, docs/wal_format.md §8).
  virtual Epoch current_epoch() const { return kFirstEpoch; }
  virtual EpochHistory epoch_history() const { return EpochHistory::Initial(); }
  // Durably records (epoch history file replaced and fsynced before it
  // returns, on this thread) that records from last_lsn() + 1 on belong to
  // `epoch`. kInvalidArgument unless epoch > current_epoch(); on any error
  // the current epoch is unchanged.
  virtual Status BeginEpoch(Epoch epoch) {
    (void)epoch;
    return Status::Unsupported("this engine has no epochs");
  }
  // A replica's apply path: `records` are whole WAL v2 records exactly as
  // another node encoded them (header, LSN, epoch, CRC). All of them are
  // verified before any is appended: every CRC (kCorruption), LSNs exactly
  // last_lsn() + 1, +2, ... (kInvalidArgument), epochs non-decreasing and
  // never below current_epoch() (kInvalidArgument), payloads that decode
  // (kCorruption). A record in a newer epoch first begins it (BeginEpoch).
  // They are then written through the same group commit as Put and applied
  // with ApplyRecord, like recovery. Each record completes like a write
  // that asked for durability (sink.OnWriteDone(lsn) once durable and
  // applied); the ticket is the last record's. Errors after verification
  // (disk full, writes refused, a failed epoch history write) may leave the
  // records before the failing one appended: last_lsn() tells how far.
  virtual Result<WriteTicket> AppendReplicated(std::span<const std::byte> records) {
    (void)records;
    return Status::Unsupported("this engine cannot append replicated records");
  }

  // ---- driving --------------------------------------------------------------
  // Collects finished commits, applies, reports to sink, starts the next group.
  virtual void Poll(CompletionSink* sink) = 0;
  // Time-based policy (flush_interval); call at least every flush_interval/2.
  virtual void Tick(Clock::time_point now, CompletionSink* sink) = 0;
  // Deferred commit start, for an owner that submits many writes per turn
  // (the daemon's loop): while on, Put/Del/Batch and Poll do not start a
  // commit; the owner calls StartCommits() after it has submitted everything
  // it read this turn. Otherwise the first write read after a commit finished
  // starts a group of one and the rest of that turn's writes wait a whole
  // extra fdatasync. Default off (library users and tests). The defaults
  // below do nothing, for engines that start commits at once anyway.
  virtual void SetDeferredCommitStart(bool on) { (void)on; }
  virtual void StartCommits() {}
  // Blocks until durable_lsn() >= lsn or writes fail (for library users and
  // tests without an event loop); reports completions to sink (may be null).
  virtual Status WaitDurable(Lsn lsn, CompletionSink* sink) = 0;

  // ---- reads and state ------------------------------------------------------
  virtual const State& state() const = 0;
  virtual Lsn last_lsn() const = 0;     // last assigned
  virtual Lsn durable_lsn() const = 0;  // last covered by a successful fdatasync
  virtual Lsn applied_lsn() const = 0;  // last applied to state()
  // OK while writes are accepted; the sticky reason after a failed fdatasync.
  virtual Status write_refusal() const = 0;
  virtual EngineStats stats() const = 0;

  // ---- runtime configuration -----------------------------------------------
  virtual Status SetDurability(const DurabilityOptions& d) = 0;
  virtual DurabilityOptions durability() const = 0;

  // ---- snapshots -------------------------------------------------------------
  // The LSN a snapshot of state() taken now covers (= applied_lsn()).
  virtual Lsn SnapshotLsn() const = 0;
  // Called after a snapshot at lsn became durable (e.g. written by a forked
  // child): prunes older snapshots and deletes WAL segments it covers.
  virtual Status SnapshotInstalled(Lsn lsn) = 0;

  // Writes and fdatasyncs everything pending, stops the committer, closes the
  // WAL. Pending writes are reported to sink. Idempotent.
  virtual Status Close(CompletionSink* sink) = 0;
};

}  // namespace kvd
