// Dispatcher: neutral Command -> engine call -> neutral Reply, and engine
// completions -> reply slots. It knows no wire format: the session's codec
// decoded the command and encodes the reply.
//
// Writes are submitted in LSN order and the engine reports them in LSN
// order, so pending writes wait in one FIFO keyed by LSN. A pending entry
// names its session by id, never by pointer: a client that disconnected with
// writes in flight is simply not found when its completion arrives, and the
// reply is dropped (the write itself still completes in the engine).
//
// BACKUP_BEGIN waits like SNAPSHOT and is answered with the installed
// snapshot held open for the client (BackupFiles); BACKUP_READ and
// BACKUP_END are answered at once (docs/backup.md).
//
// SNAPSHOT semantics: the reply's LSN always covers every write the client
// saw acknowledged before sending SNAPSHOT (it is a barrier on its own
// connection; the waiter records the engine's applied LSN). A request that
// arrives while a snapshot runs waits for it; if that snapshot covers the
// waiter it is answered with its LSN, otherwise a fresh snapshot starts as
// soon as the running one finishes. A failed snapshot fails every waiter.
//
// Read-your-writes: a GET, SCAN or COUNT with a minimum LSN the engine has
// not applied yet is parked (LsnWaits) instead of answered: its session
// blocks, and WakeParkedReads, called once per loop turn and at the earliest
// deadline, lets it run again once the LSN is applied, or when
// min_lsn_wait has passed: then it fails with kTimedOut.
//
// Read barrier (synchronous replication, docs/replication.md §6): on a
// primary with sync_replicas >= 1 a read (GET, SCAN, COUNT, RESP reads) is
// evaluated at once, but its reply is held (ReadHolds) until the engine's
// ack_lsn covers the applied LSN it saw, or fails after sync_timeout with the
// sync gate's error (dispatcher_holds.cc).
//
// Threading: the loop thread only (Poll/Tick call the sink there).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvd/engine.h"
#include "node/backup_files.h"
#include "serve/command.h"
#include "serve/lsn_waits.h"
#include "serve/pending_writes.h"
#include "serve/read_holds.h"
#include "serve/read_ops.h"
#include "serve/server_stats.h"
#include "serve/session.h"

namespace kvd::daemon {

// How the dispatcher reaches sessions and the rest of the server.
class DispatchHost {
 public:
  virtual ~DispatchHost() = default;
  // nullptr when the session is gone.
  virtual Session* FindSession(uint64_t id) = 0;
  // A slot of s completed: process and flush it soon (never re-entrantly).
  virtual void SessionReady(Session* s) = 0;
  virtual std::string StatusJson() = 0;
  // JSON object text {name: value} for one key or all (empty name).
  virtual Result<std::string> ConfigGetJson(std::string_view name) = 0;
  // who: the client that asked (its session's peer), for the log.
  virtual Status ConfigSet(std::string_view name, std::string_view value, const Peer& who) = 0;
  // Start a snapshot unless one is running; OnSnapshotDone follows.
  virtual void RequestSnapshot() = 0;
  // A write failed (ENOSPC, refused ...): for logging state transitions.
  virtual void OnWriteError(const Status& status) = 0;
  // PROMOTE / REPLICATE (docs/replication.md §7): role changes, answered
  // at once. Promote returns the epoch begun.
  virtual Result<Epoch> Promote(bool force, Epoch epoch) {
    (void)force;
    (void)epoch;
    return Status::Unsupported("this server cannot change roles");
  }
  virtual Status Replicate(std::string_view primary) {
    (void)primary;
    return Status::Unsupported("this server cannot change roles");
  }
  // Whether this node may answer as the primary now: asked before a write
  // is acknowledged (write) and before a read is answered. OK, or why not
  // (a cluster node past its leader lease's deadline: kFenced).
  virtual Status PrimaryGate(bool write) {
    (void)write;
    return Status::Ok();
  }
  // The read barrier: sync_timeout while reads must wait for the sync
  // watermark (a primary with sync_replicas >= 1), nullopt otherwise.
  virtual std::optional<std::chrono::milliseconds> ReadBarrier() { return std::nullopt; }
  // Why a read held for sync_timeout fails (the sync gate's error).
  virtual Status ReadBarrierFailure() {
    return Status::IOError("the synchronous replicas did not confirm the writes this read saw within sync_timeout");
  }
};

class Dispatcher : public RequestHandler, public CompletionSink {
 public:
  // Key and value sizes are checked where they are decoded (the codec).
  struct Limits {
    size_t max_scan_reply_bytes = 4 * 1024 * 1024;
    // Where snapshots are written: BACKUP_BEGIN opens the one it waited for.
    std::string snapshot_dir;
    // How long a read with a minimum LSN waits for it ([replication]
    // min_lsn_wait); 0: fail at once when it is not applied.
    std::chrono::milliseconds min_lsn_wait{1000};
    // Pending values are kept from a conditional write on until this many
    // writes passed without one (PendingValuesReady).
    uint64_t untrack_pending_after_writes = 1u << 20;
  };
  Dispatcher(Engine* engine, DispatchHost* host, Limits limits, ServerCounters* counters)
      : engine_(engine), host_(host), limits_(limits), counters_(counters) {}

  // The engine is created after the dispatcher (its notify needs the loop).
  void set_engine(Engine* engine) { engine_ = engine; }
  Engine* engine() const { return engine_; }

  // The values of writes not yet applied (PendingWrites), for a front end's
  // conditional writes, which decide against the State plus these
  // (dispatcher_pending.cc). Keeping them copies every write's key and value
  // (a quarter of a RESP SET's instructions), so they are kept only from a
  // conditional write on, until Limits::untrack_pending_after_writes writes
  // pass without one.
  // Call PendingValuesReady right before deciding: true, decide now (every
  // write not yet applied is in pending_values()); false, not yet: writes
  // submitted before tracking began are still pending, and s is made ready
  // (SessionReady) once they completed. Its session must then block.
  bool PendingValuesReady(Session& s);
  const PendingWrites& pending_values() const { return pending_; }
  bool tracking_pending_values() const { return pending_tracked_; }

  // RequestHandler
  Status Submit(Session& s, uint64_t seq, const Command& cmd) override;
  Result<Evaluated> Evaluate(Session& s, const Command& cmd, Reply* reply) override;
  bool EvaluateAhead(Session& s, const Command& cmd) override;
  bool HoldReply(Session& s, const Reply& reply) override;
  void SessionClosed(uint64_t session) override {
    backups_.DropSession(session);
    lsn_waits_.Remove(session);
  }

  // CompletionSink
  void OnWriteDone(Lsn lsn, const Status& status, bool existed) override;
  void OnDeleteRangeDone(Lsn lsn, const Status& status, uint64_t removed) override;
  void OnFlushDone(uint64_t token, const Status& status, Lsn durable_lsn) override;

  // The snapshot started by RequestSnapshot finished (lsn valid when ok).
  // Waiters it covers are answered; if some need newer data, another
  // snapshot is requested.
  void OnSnapshotDone(const Status& status, Lsn lsn);

  // After Engine::Close: new writes, flushes and snapshots get kShuttingDown;
  // every waiter still pending is answered with it.
  void BeginShutdown();

  size_t pending_writes() const { return writes_.size(); }
  size_t pending_flushes() const { return flushes_.size(); }
  size_t snapshot_waiters() const { return snapshot_waiters_.size(); }
  size_t open_backups() const { return backups_.open_count(); }

  // Parked reads whose LSN is now applied or whose deadline passed: their
  // sessions are made ready (SessionReady) to evaluate them again.
  void WakeParkedReads(std::chrono::steady_clock::time_point now);
  // When WakeParkedReads must run next at the latest (nullopt: nothing parked).
  // Parked reads and held read replies alike.
  std::optional<std::chrono::steady_clock::time_point> NextParkedDeadline() const {
    auto a = lsn_waits_.NextDeadline();
    auto b = holds_.NextDeadline();
    if (a && b) return std::min(*a, *b);
    return a ? a : b;
  }
  size_t parked_reads() const { return lsn_waits_.size(); }

  // The read barrier (dispatcher_holds.cc). HoldRead: holds a read's
  // evaluated reply if the sync watermark does not cover what it saw (true:
  // held, the session must not encode it); RESP reads come here directly.
  bool HoldRead(Session& s, const Reply& reply);
  // Completes the held replies the watermark now covers and fails those
  // past sync_timeout (prepare phase, every loop turn while any are held).
  void ReleaseHeldReads(std::chrono::steady_clock::time_point now);
  size_t held_reads() const { return holds_.size(); }
  // Shutdown has begun: reads waiting for their LSN are answered
  // ShuttingDown now (woken), and no read is parked any more, so draining
  // does not wait for min_lsn_wait.
  void EndParkedReads();

 private:
  struct Waiter {
    uint64_t session = 0;
    uint64_t seq = 0;
    Lsn lsn = 0;  // writes: the write's LSN; snapshots: the LSN it must cover
    Op op = Op::kPing;
  };
  struct FlushWaiter {
    uint64_t token = 0;
    uint64_t session = 0;
    uint64_t seq = 0;
  };

  Status SubmitWrite(Session& s, uint64_t seq, const Command& cmd);
  // dispatcher_pending.cc: a write was submitted (lsn not yet applied) /
  // completed (applied or failed).
  void NotePending(const Command& cmd, Lsn lsn);
  void PendingDone(Lsn lsn);
  bool UntrackedWritesPending() const;
  // A snapshot at lsn covers backup waiter w: open it and answer.
  void AnswerBackup(const Waiter& w, Lsn lsn);
  Evaluated EvaluateBackup(Session& s, const Command& cmd, Reply* reply);
  // kFlagMinLsn: true while the read must wait (it is parked); false once
  // its LSN is applied or its wait is over (the entry is gone then).
  bool ParkForLsn(Session& s, const Command& cmd);
  // Woken parked reads: their sessions are made ready, or forgotten if gone.
  void ReadyOrForget(const std::vector<uint64_t>& sessions);
  void Complete(uint64_t session, uint64_t seq, Code code, Lsn lsn, std::string_view message = {});
  // When a read evaluated now must have its reply held: its deadline;
  // nullopt when it may be answered at once.
  std::optional<std::chrono::steady_clock::time_point> ReadHoldDeadline() const;
  // Fails every held reply with kShuttingDown.
  void FailHeldReads();
  void CountOp(Op op);
  void CountReply(Code code);

  Engine* engine_;
  DispatchHost* host_;
  Limits limits_;
  ServerCounters* counters_;
  std::deque<Waiter> writes_;  // LSN order
  std::deque<FlushWaiter> flushes_;
  std::vector<Waiter> snapshot_waiters_;
  BackupFiles backups_;
  LsnWaits lsn_waits_;
  ReadHolds holds_;
  std::string scratch_;  // reused reply text (STATUS, CONFIG GET, a backup chunk)
  ScanResult scan_;      // reused SCAN items
  PendingWrites pending_;
  // dispatcher_pending.cc: pending_ holds every write submitted after
  // untracked_upto_ and not yet completed while pending_tracked_.
  bool pending_tracked_ = false;
  Lsn untracked_upto_ = 0;
  uint64_t writes_since_decided_ = 0;
  std::vector<uint64_t> pending_value_waiters_;  // sessions blocked in PendingValuesReady
  uint64_t next_flush_token_ = 1;
  bool shutting_down_ = false;
  bool parking_closed_ = false;  // EndParkedReads
};

}  // namespace kvd::daemon
