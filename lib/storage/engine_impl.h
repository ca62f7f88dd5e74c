// EngineImpl: the Engine behind kvd/engine.h. Internal.
//
// Bookkeeping, all on the owner thread (the committer thread only sees
// CommitJobs and hands back CommitResults):
//
//   LSNs:   applied_lsn_ <= last_lsn_, durable_lsn_ <= written_lsn_ <= last_lsn_.
//           applied and durable are independent: sync mode applies a group
//           only once it is durable; batch/none apply at append time.
//   pending_  groups of framed records appended and not yet handed to the
//             committer, oldest first (LSN-contiguous). At most one commit
//             group is in flight (commit_running_); the next one gathers
//             while it runs.
//   waiters_  writes whose ticket was not done, in LSN order: reported
//             through the CompletionSink once applied (and durable when
//             needs_durable). A batch-mode write that waits only for the
//             bound (needs_room) completes once durable or as soon as the
//             AckWindow has room for it, whichever comes first; while one
//             waits, later writes wait behind it (acknowledgements stay in
//             LSN order and the window's LSNs increase).
//   flushes_  RequestFlush tokens: done when a sync started after the
//             request completed and durable_lsn_ >= target (and, gated,
//             ack_watermark_ >= target).
//
// Hooks (engine_hooks.cc): the acknowledgement gate adds "lsn <=
// ack_watermark_" to a waiter's completion while ack_gate_ is on; the
// waiters it holds are a prefix of waiters_ (LSN order), so FailGatedWrites
// only records how far that prefix reached (gate_fail_upto_). DropAckGate
// turns the gate off but keeps gating the waiters up to gate_fail_upto_
// (every one waiting then), which fail once durable. The write fence
// is one more reason in CheckWritable. The retention floor lowers the bound
// of the segment drop that SnapshotInstalled submits.
//
// Apply rule: a write is applied at append time iff the mode is not sync and
// every older write is applied; otherwise when its group's commit completes
// (records with lsn > applied_lsn_ of that group's buffer).
#pragma once

#include <algorithm>
#include <deque>
#include <memory>
#include <string>

#include "kvd/engine.h"
#include "storage/committer.h"
#include "storage/group_commit.h"

namespace kvd {

class EngineImpl final : public Engine {
 public:
  EngineImpl(EngineOptions options, Env* env);
  ~EngineImpl() override;

  // Called by Engine::Open once recovery found `last_lsn` and wal_ is open.
  void Start(Lsn last_lsn);
  State* mutable_state() { return &state_; }
  void set_wal(std::unique_ptr<WalWriter> wal) { wal_ = std::move(wal); }
  void set_epoch_history(EpochHistory h) {
    epochs_ = std::move(h);
    epoch_ = epochs_.current();
  }

  Result<WriteTicket> Put(std::string_view key, std::string_view value, bool durable) override;
  Result<WriteTicket> Del(std::string_view key, bool durable) override;
  Result<WriteTicket> Batch(std::span<const BatchOp> ops, bool durable) override;
  Result<WriteTicket> DeleteRange(const KeyRange& range, bool durable) override;
  void RequestFlush(uint64_t token) override;

  Epoch current_epoch() const override { return epoch_; }
  EpochHistory epoch_history() const override { return epochs_; }
  Status BeginEpoch(Epoch epoch) override;
  Result<WriteTicket> AppendReplicated(std::span<const std::byte> records) override;
  Status ResetToSnapshot(const std::string& snapshot_path, const EpochHistory& history,
                         const std::string& set_aside_dir, SnapshotResetReport* report) override;
  Status ResyncFromSnapshot(const std::string& incoming_path, const EpochHistory& history,
                            const std::string& set_aside_dir, SnapshotResetReport* report) override;
  Result<WalTruncateReport> RewindTo(Lsn lsn, const std::string& set_aside_path, CompletionSink* sink) override;

  void Poll(CompletionSink* sink) override;
  void SetDeferredCommitStart(bool on) override { defer_start_ = on; }
  void StartCommits() override;
  void Tick(Clock::time_point now, CompletionSink* sink) override;
  Status WaitDurable(Lsn lsn, CompletionSink* sink) override;

  const State& state() const override { return state_; }
  Lsn last_lsn() const override { return last_lsn_; }
  Lsn durable_lsn() const override { return durable_lsn_; }
  Lsn applied_lsn() const override { return applied_lsn_; }
  Status write_refusal() const override { return refusal_; }
  Lsn ack_lsn() const override { return ack_gate_ ? std::min(durable_lsn_, ack_watermark_) : durable_lsn_; }
  EngineStats stats() const override;

  Status SetAckWatermarkRequired(bool required) override;
  void AdvanceAckWatermark(Lsn lsn) override;
  void FailGatedWritesUpTo(const Status& why, Lsn upto) override;
  void DropAckGate(const Status& why) override;
  void SetRetentionFloor(Lsn floor) override;
  Status SetWriteFence(Status why) override;
  void ClearWriteFence() override { fence_ = Status::Ok(); }
  Status write_fence() const override { return fence_; }

  Status SetDurability(const DurabilityOptions& d) override;
  DurabilityOptions durability() const override { return dur_; }

  Lsn SnapshotLsn() const override { return applied_lsn_; }
  Status SnapshotInstalled(Lsn lsn) override;

  Status Close(CompletionSink* sink) override;

 private:
  // ResetToSnapshot (resync false) and ResyncFromSnapshot (true); engine_reset.cc.
  Status ResetTo(const std::string& snapshot_path, const EpochHistory& history, const std::string& set_aside_dir,
                 bool resync, SnapshotResetReport* report);
  struct Group {
    std::string buf;
    Lsn first = 0, last = 0;
    uint64_t count = 0;
    bool has_waiter = false;  // a record in it waits for an fdatasync
    bool closed = false;      // no more appends (cap reached or options changed)
    Clock::time_point oldest{};
  };
  struct Waiter {
    Lsn lsn;
    bool needs_durable;
    bool needs_room = false;  // batch: acknowledge once HasRoom, even before durable
    bool existed = false;
    bool range = false;    // a DEL_RANGE: completes through OnDeleteRangeDone
    uint64_t removed = 0;  // its count, once applied
  };
  struct Flush {
    uint64_t token;
    Lsn target;
    uint64_t after_syncs;  // syncs_started_ when requested
    Status gate_failure;   // set by FailGatedWrites: report this instead of waiting
  };

  Status CheckWritable(bool replicated = false) const;
  Group& GroupForAppend();
  // apply_now() applies the write to the State and returns how many keys it
  // affected as the completion reports it: existed (0/1), or for a range
  // delete (range = true) the number of keys deleted.
  template <typename Encode, typename ApplyNow>
  Result<WriteTicket> Append(bool durable, Encode encode, ApplyNow apply_now, bool range = false,
                             bool replicated = false);

  bool SyncWanted() const;
  void MaybeStartCommit(Clock::time_point now);
  void StartCommit(bool sync);
  void CollectResults(CompletionSink* sink);
  void HandleCommit(CommitResult r, CompletionSink* sink);
  void HandleNoSpace(CommitJob job, const Status& status, CompletionSink* sink);
  void Refuse(const Status& cause, std::string_view what, CompletionSink* sink);
  void ApplyGroup(std::string_view records);
  void Report(CompletionSink* sink);
  // A room waiter is outstanding: new writes must wait behind it.
  bool RoomWaiterQueued() const { return !waiters_.empty() && waiters_.front().lsn <= last_room_waiter_; }
  void PushAcked(Lsn lsn, Clock::time_point now) {
    acked_.Push(lsn, now, /*coalesce=*/dur_.mode == DurabilityMode::kNone);
    ack_window_peak_ = std::max(ack_window_peak_, acked_.count());
  }
  bool FlushSynced(const Flush& f) const { return syncs_done_ > f.after_syncs && durable_lsn_ >= f.target; }
  // Retention (engine_hooks.cc): the highest LSN whose segments may go.
  Lsn DropBound() const;
  void SubmitDrop();
  void OnDropDone(const CommitResult& r);
  // Drives commits until pred() holds, writes are refused, or (ENOSPC) a
  // retry failed; returns why it stopped early.
  template <typename Pred>
  Status DriveUntil(Pred pred, CompletionSink* sink);
  // Everything appended is durable and nothing runs on the committer thread
  // (no commit, no segment drop): for RewindTo.
  Status DriveUntilIdle(CompletionSink* sink);
  void Warn(std::string_view msg) const;
  // Before a local write: the history may place epochs after the next LSN
  // (begun for records that a crash or ENOSPC then took away); our own new
  // records belong to the current epoch, so those entries move back to the
  // next LSN, durably, first. A replica's records need no such move: they
  // carry their epochs (AppendReplicated checks them against the history).
  Status ClampEpochHistory() {
    return last_lsn_ + 1 >= epochs_.entries().back().first_lsn ? Status::Ok() : ClampEpochHistoryNow();
  }
  Status ClampEpochHistoryNow();

  EngineOptions opts_;
  Env* const env_;
  DurabilityOptions dur_;
  State state_;
  std::unique_ptr<WalWriter> wal_;
  std::unique_ptr<Committer> committer_;  // owns the thread using wal_

  std::deque<Group> pending_;
  std::string spare_buf_;  // an emptied group buffer, kept for its capacity
  uint64_t pending_records_ = 0, pending_bytes_ = 0;
  bool commit_running_ = false;
  bool defer_start_ = false;  // SetDeferredCommitStart: Append/Poll leave starting to StartCommits
  uint64_t inflight_sync_seq_ = 0;  // of the running commit, 0 if it does not sync

  Lsn last_lsn_ = 0, written_lsn_ = 0, durable_lsn_ = 0, applied_lsn_ = 0;
  AckWindow acked_;                  // acknowledged before durable (at append or on room)
  Lsn last_room_waiter_ = 0;         // newest waiter appended with needs_room
  uint64_t ack_window_peak_ = 0;     // most records acked_ ever held
  Clock::duration ack_age_peak_{};   // longest a record stayed in acked_ (seen at its sync)
  std::deque<Waiter> waiters_;
  std::deque<Flush> flushes_;
  std::deque<std::pair<uint64_t, Status>> failed_flushes_;  // reported at the next Poll
  uint64_t syncs_started_ = 0, syncs_done_ = 0;  // sequence numbers of sync commits
  Lsn sync_cover_started_ = 0;       // written_lsn covered by the last sync started
  Lsn want_sync_upto_ = 0;           // someone waits for durability up to here
  bool want_fresh_sync_ = false;     // a FLUSH asked for an fdatasync not yet started

  EpochHistory epochs_;              // as on disk; never empty once opened
  Epoch epoch_ = kFirstEpoch;        // = epochs_.current(): new records get it

  Status refusal_;                   // sticky kWritesRefused
  std::string no_space_;             // last ENOSPC, until a write succeeds
  bool no_space_hold_ = false;       // an acknowledged group waits for a retry (Tick)

  // Acknowledgement gate (SetAckWatermarkRequired).
  bool ack_gate_ = false;
  Lsn ack_watermark_ = 0;            // <= last_lsn_
  Lsn gate_fail_upto_ = 0;           // FailGatedWritesUpTo, DropAckGate: gated waiters up to here fail...
  Status gate_fail_status_;          // ...with this, at the next Report

  Status fence_;                     // SetWriteFence: kNotPrimary / kFenced, else OK

  // Retention: segments up to DropBound() may be deleted.
  Lsn snapshot_lsn_ = 0;             // newest SnapshotInstalled
  Lsn retention_floor_ = 0;          // 0: none
  uint64_t drops_running_ = 0;       // kDropSegments jobs not yet collected
  RetainedWal retained_;             // as the last drop found it

  uint64_t groups_ = 0, grouped_records_ = 0;
  GroupSizeHistogram group_sizes_;   // records per synced group, as grouped_records_
  WalStats wal_stats_;
  bool closed_ = false;
  Status close_status_;
};

}  // namespace kvd
