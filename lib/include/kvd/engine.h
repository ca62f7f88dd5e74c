// Engine: recovery, the WAL, group commit and the State, as one object.
//
// The write path, in the order data flows:
//   Put/Del/Batch (owner thread) -> record appended to the pending buffer,
//   LSN assigned -> the committer thread writes the group (the commit
//   observer sees it) and fdatasyncs -> options.notify() -> the owner calls
//   Poll() -> the group is applied to the State (sync mode) and every write
//   now durable (and, with the acknowledgement gate on, covered by the
//   watermark) is reported to the sink.
//
// Threading: every method is called from one owner thread (the daemon's loop
// thread), except that options.notify and the CommitObserver are invoked on
// the committer thread. Only one commit (write + fdatasync) runs at a time;
// writes that arrive while it runs form the next group.
//
// Visibility (docs/durability.md): in sync mode a write is applied to the
// State only after the fdatasync covering it returned, so reads never see
// data that a crash could still take away. In batch and none mode writes are
// applied (and normally acknowledged) at once. The acknowledgement gate
// delays only acknowledgements, never visibility.
//
// Hooks for replication (all off by default; off, the write path does no
// extra work): a CommitObserver that sees every record once written, an
// acknowledgement gate on an external watermark, a retention floor for WAL
// segments, and a reversible write fence.
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
#include "kvd/log2_histogram.h"
#include "kvd/snapshot.h"
#include "kvd/state.h"
#include "kvd/status.h"
#include "kvd/types.h"
#include "kvd/wal.h"

namespace kvd {

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

// Sees every record the committer wrote to the WAL (replication streams
// them). All calls come from the committer thread, one at a time, never
// with an engine lock held.
//
// Guarantees: OnRecordsWritten is called for every record exactly once, in
// LSN order, with no gaps (first == the previous call's last + 1; the first
// call starts at the LSN after the one recovery ended at, Engine::last_lsn()
// right after Open), and only after WalWriter::Write of those bytes
// succeeded. A write that fails (ENOSPC, EIO) is never shown: after ENOSPC
// the engine hands the same LSNs to new writes, and those are then shown
// once. The LSNs shown are final while this process runs; a restart after a
// crash may reuse LSNs that were written but never made durable (a power
// cut), which is what epochs are for (docs/wal_format.md).
//
// What the callee may do: copy what it needs and return quickly (it delays
// the commit, and every write waiting for it). It must not block on the
// engine's owner thread and must not call any Engine method (wake its own
// thread, e.g. with a condition variable or uv_async_send, and let that use
// the Engine on the owner thread). The byte span is valid only during the
// call. No calls after Engine::Close returned.
class CommitObserver {
 public:
  virtual ~CommitObserver() = default;
  // Records first..last were written to the WAL (in the page cache; their
  // fdatasync, if the commit syncs, runs after this returns). `records` are
  // the framed records exactly as written: whole records, as WalRecord
  // readers (ForEachRecord, recovery) decode them.
  virtual void OnRecordsWritten(Lsn first, Lsn last, std::string_view records) = 0;
  // An fdatasync returned OK: every record shown so far, up to durable_lsn,
  // is durable locally. Not called for commits that do not sync (none mode)
  // nor when the sync failed (the engine then refuses writes for good).
  virtual void OnDurable(Lsn durable_lsn) { (void)durable_lsn; }
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
  // Sees each record once written (see CommitObserver). Not owned; must
  // outlive the engine (or its Close). nullptr: none, and no cost.
  CommitObserver* commit_observer = nullptr;
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

// What Engine::ResetToSnapshot did.
struct SnapshotResetReport {
  Lsn old_last_lsn = 0;                      // the log's end before the reset
  Lsn snapshot_lsn = 0;                      // the new state's LSN (last_lsn() after)
  uint64_t entries = 0;                      // keys in the new state
  std::vector<std::string> set_aside_files;  // the old WAL segments, where they are now
  std::vector<std::string> set_aside_snapshots;  // ResyncFromSnapshot: the old snapshots, where they are now
};

// The result of submitting a write.
struct WriteTicket {
  Lsn lsn = 0;
  // true: acknowledge now (batch/none mode within the bound); the write is
  // applied and `existed` is valid. false: wait for the sink's OnWriteDone.
  bool done = false;
  bool existed = false;
  uint64_t removed = 0;  // DeleteRange, when done: the keys it deleted
};

// Receives completions from Poll(), in LSN order.
class CompletionSink {
 public:
  virtual ~CompletionSink() = default;
  // A write whose ticket was not done has finished: durable and applied
  // (status OK, existed valid; with the acknowledgement gate on, also covered
  // by the watermark) or failed (status says why). A failed write was never
  // applied, except one the acknowledgement gate held (failed by
  // FailGatedWrites, a later refusal or Close): that one is durable locally
  // and applied, only its acknowledgement failed.
  virtual void OnWriteDone(Lsn lsn, const Status& status, bool existed) = 0;
  // A DeleteRange whose ticket was not done finished OK: applied (and
  // durable as above), deleting `removed` keys. A failed one is reported
  // through OnWriteDone like any write.
  virtual void OnDeleteRangeDone(Lsn lsn, const Status& status, uint64_t removed) {
    OnWriteDone(lsn, status, removed > 0);
  }
  // A RequestFlush finished: everything up to durable_lsn is durable (with
  // the gate on: and covered by the watermark; durable_lsn is then ack_lsn()).
  virtual void OnFlushDone(uint64_t token, const Status& status, Lsn durable_lsn) = 0;
};

struct EngineStats {
  Lsn last_lsn = 0, durable_lsn = 0, applied_lsn = 0;
  uint64_t groups = 0;            // commits that fdatasynced
  uint64_t syncs = 0;             // fdatasyncs that returned successfully (with or without new records)
  uint64_t grouped_records = 0;   // records they covered (mean group = grouped_records / groups)
  uint64_t sync_p50_us = 0, sync_p99_us = 0, sync_max_us = 0;
  uint64_t last_sync_us = 0;
  // Every successful fdatasync since Open (its duration, as the p50/p99
  // above) and the records each group that synced covered (as groups /
  // grouped_records), for metrics.
  SyncLatencyHistogram sync_latency_us;
  GroupSizeHistogram group_records;
  uint64_t pending_records = 0;   // appended, not yet durable
  // Batch/none: acknowledged and not yet durable (what a crash could take),
  // now, at most so far, and the longest one such record waited for its
  // fdatasync (measured when the sync returned).
  uint64_t ack_window = 0, ack_window_peak = 0, ack_window_age_peak_us = 0;
  WalStats wal;
  std::string write_refusal;      // empty while writes are accepted
  std::string no_space;           // last ENOSPC message while out of space, else empty
  std::string write_fence;        // "NotPrimary: ..." / "Fenced: ..." while fenced, else empty
  bool ack_gate = false;          // SetAckWatermarkRequired(true)
  Lsn ack_watermark = 0;          // the external watermark (kept while the gate is off)
  Lsn ack_lsn = 0;                // ack_lsn(): what replies may promise
  uint64_t gated_writes = 0;      // writes durable locally, held by the gate
  Lsn retention_floor = 0;        // 0: none
  uint64_t retained_wal_segments = 0;  // covered by a snapshot, kept for the floor
  uint64_t retained_wal_bytes = 0;     // their file sizes
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
  // Sizes are checked (kTooLarge). kWritesRefused after a failed fdatasync
  // (wins over everything else), the fence's code (kNotPrimary, kFenced)
  // while a write fence is set, kNoSpace while the disk is full. `durable`
  // demands an acknowledgement only after fdatasync, whatever the mode.
  virtual Result<WriteTicket> Put(std::string_view key, std::string_view value, bool durable) = 0;
  virtual Result<WriteTicket> Del(std::string_view key, bool durable) = 0;
  virtual Result<WriteTicket> Batch(std::span<const BatchOp> ops, bool durable) = 0;
  // Deletes every key in `range` as ONE record with one LSN (DEL_RANGE,
  // docs/wal_format.md §3.4): all of them or none across a crash. The keys
  // are those present when the record is applied (sync mode: once durable),
  // so the count comes with the completion: ticket.removed when done, else
  // sink.OnDeleteRangeDone. kInvalidArgument for a bound over the key limit.
  virtual Result<WriteTicket> DeleteRange(const KeyRange& range, bool durable) {
    (void)range;
    (void)durable;
    return Status::Unsupported("this engine has no range delete");
  }
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

  // A replica's install of a transferred snapshot (docs/replication.md
  // §4.6), called once the snapshot file is durable in the snapshot
  // directory under its final name: the state becomes the snapshot's, every
  // WAL segment is moved (renamed, never deleted) into set_aside_dir (both
  // directories fsynced), the epoch history becomes `history` without the
  // epochs that begin after the snapshot's LSN (saved durably), and a new
  // WAL begins at the snapshot's LSN + 1. The snapshot is loaded and
  // verified before anything changes: a bad file (kCorruption) leaves the
  // engine as it was. kBusy while records are pending, a commit or a
  // segment drop runs, or completions are unreported (Poll, then retry).
  // A failure after the old WAL was closed refuses writes for good
  // (write_refusal); a restart recovers from the installed snapshot, with or
  // without the old segments (recovery skips the records it covers).
  // Implemented in engine_reset.cc.
  virtual Status ResetToSnapshot(const std::string& snapshot_path, const EpochHistory& history,
                                 const std::string& set_aside_dir, SnapshotResetReport* report) {
    (void)snapshot_path;
    (void)history;
    (void)set_aside_dir;
    (void)report;
    return Status::Unsupported("this engine cannot reset to a snapshot");
  }
  // The same for a node whose own log diverged inside its snapshots (a
  // divergent tail that RewindTo cannot cut, docs/replication.md §5): the
  // snapshot is a verified, fsynced file *outside* its final name
  // (incoming_path, in the snapshot directory). Before it is renamed to its
  // final name, every WAL segment is moved into set_aside_dir (newest
  // first) and every snapshot file into the directory of the same name
  // inside the snapshot directory (newest first), all directories fsynced:
  // a crash at any step leaves the old state, an older prefix of it, an
  // empty node, or the new snapshot -- never the new snapshot under the
  // divergent records, nor a snapshot overwritten. Nothing is deleted.
  virtual Status ResyncFromSnapshot(const std::string& incoming_path, const EpochHistory& history,
                                    const std::string& set_aside_dir, SnapshotResetReport* report) {
    (void)incoming_path;
    (void)history;
    (void)set_aside_dir;
    (void)report;
    return Status::Unsupported("this engine cannot resync from a snapshot");
  }

  // A running node cuts its log after lsn and restarts its state from
  // snapshot + WAL up to lsn (a replica whose log diverged from its new
  // primary's after the fork point, docs/replication.md §5). Everything
  // appended is made durable first (completions go to sink); writes still
  // held by the acknowledgement gate then fail (kFenced). Every record after
  // lsn is set aside in set_aside_path (TruncateWalAfterToFile: one file,
  // never deleted, durable before the log is cut); the epoch history drops
  // the epochs that began after lsn; the state is what Engine::Open
  // recovers. Afterwards last_lsn() == durable_lsn() == applied_lsn() == lsn.
  // Nothing to cut (lsn >= last_lsn()): OK, no file. kInvalidArgument, with
  // nothing changed, when a snapshot covers an LSN after lsn (a full resync
  // is needed) or lsn + 1 is no longer in the WAL. A failure after the writer
  // stopped refuses writes for good (kWritesRefused): a restart recovers.
  // The caller makes sure no snapshot of the state is being written.
  virtual Result<WalTruncateReport> RewindTo(Lsn lsn, const std::string& set_aside_path, CompletionSink* sink) {
    (void)lsn;
    (void)set_aside_path;
    (void)sink;
    return Status::Unsupported("this engine cannot rewind its log");
  }

  // ---- driving --------------------------------------------------------------
  // Collects finished commits, applies, reports to sink, starts the next group.
  virtual void Poll(CompletionSink* sink) = 0;
  // Time-based policy (flush_interval); call at least every flush_interval/2.
  // `now` is the caller's reading of the same clock as options.env->Now(),
  // which the engine reads itself everywhere else (Put, Poll, ...).
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
  // The highest LSN a reply may promise as acknowledged: durable_lsn() with
  // the acknowledgement gate off, min(durable_lsn(), watermark) with it on.
  virtual Lsn ack_lsn() const { return durable_lsn(); }
  virtual EngineStats stats() const = 0;

  // ---- hooks for replication (owner thread) ----------------------------------
  // The defaults below are for test doubles; the real engine implements all.
  //
  // Acknowledgement gate. While required, a write completes (OnWriteDone OK)
  // only when both durable_lsn() and the watermark cover it, in every mode:
  // no write is acknowledged at once (ticket.done is false) and each waits
  // for a local fdatasync as a `durable` write does, so batch and none mode
  // keep only their visibility (applied at once) and their grouping. A FLUSH
  // completes when both cover everything appended before it and reports
  // ack_lsn(). Visibility is unchanged: sync mode still applies a write when
  // it is locally durable, so reads on this node may see a write that is not
  // yet acknowledged (as PostgreSQL with synchronous standbys shows a commit
  // locally before the standby confirmed it); docs/durability.md says why.
  // Turning the gate on makes writes already waiting wait for it as well;
  // turning it off releases them at the next Poll(). kUnsupported from an
  // engine that cannot gate.
  virtual Status SetAckWatermarkRequired(bool required) {
    return required ? Status::Unsupported("this engine has no acknowledgement gate") : Status::Ok();
  }
  // Raises the watermark (it never goes back; values above last_lsn() are
  // cut to it, since only records that exist can have been confirmed).
  // Writes it releases are reported by the next Poll(), which the owner
  // calls itself (no notify is sent).
  virtual void AdvanceAckWatermark(Lsn lsn) { (void)lsn; }
  // Fails, with `why`, every write and FLUSH held only by the gate now
  // (durable locally, above the watermark): reported by the next Poll(), in
  // LSN order after any the watermark released. Those writes are durable and
  // applied; only their acknowledgement fails (e.g. the replicas did not
  // confirm within sync_timeout). Writes still waiting for their local
  // fdatasync are not affected.
  void FailGatedWrites(const Status& why) { FailGatedWritesUpTo(why, UINT64_MAX); }
  // The same for those with LSN <= upto only (a write that waited its
  // sync_timeout fails; a younger one keeps waiting). A FLUSH fails when
  // its target is <= upto.
  virtual void FailGatedWritesUpTo(const Status& why, Lsn upto) {
    (void)why;
    (void)upto;
  }
  // Turns the gate off because this node stops being the primary: no
  // replica will confirm anything it wrote any more. Every write and FLUSH
  // waiting now that the watermark does not cover fails with `why` (not
  // OK, unlike SetAckWatermarkRequired(false)), once its local commit has
  // completed: one still waiting for its fdatasync fails when that returns.
  // Writes appended later (replicated records) are not gated.
  virtual void DropAckGate(const Status& why) { (void)why; }
  //
  // Retention floor: a consumer still needs every record with LSN >= floor,
  // so SnapshotInstalled keeps the WAL segments holding them even when the
  // snapshot covers them. 0 clears the floor. Raising it releases segments
  // kept only for it (deleted on the committer thread); lowering it cannot
  // bring back segments already deleted.
  virtual void SetRetentionFloor(Lsn floor) { (void)floor; }
  //
  // Reversible write fence, separate from the sticky refusal after a failed
  // fdatasync: while set, Put/Del/Batch fail with `why` (its code must be
  // kNotPrimary or kFenced, else kInvalidArgument and nothing changes).
  // Writes appended before stay in the log and complete as usual; FLUSH and
  // reads work. ClearWriteFence lifts it; a refusal stays. A kNotPrimary
  // fence (a replica) lets AppendReplicated through: it stops clients, not
  // the primary's records; kFenced stops AppendReplicated too.
  virtual Status SetWriteFence(Status why) {
    (void)why;
    return Status::Unsupported("this engine has no write fence");
  }
  virtual void ClearWriteFence() {}
  // OK while no fence is set.
  virtual Status write_fence() const { return Status::Ok(); }

  // ---- runtime configuration -----------------------------------------------
  virtual Status SetDurability(const DurabilityOptions& d) = 0;
  virtual DurabilityOptions durability() const = 0;

  // ---- snapshots -------------------------------------------------------------
  // The LSN a snapshot of state() taken now covers (= applied_lsn()).
  virtual Lsn SnapshotLsn() const = 0;
  // Called after a snapshot at lsn became durable (e.g. written by a forked
  // child): prunes older snapshots and deletes WAL segments it covers,
  // except those the retention floor keeps.
  virtual Status SnapshotInstalled(Lsn lsn) = 0;

  // Writes and fdatasyncs everything pending, stops the committer, closes the
  // WAL. Pending writes are reported to sink. Idempotent.
  virtual Status Close(CompletionSink* sink) = 0;
};

}  // namespace kvd
