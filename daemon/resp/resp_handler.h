// RespHandler: the RESP front end's RequestHandler. Commands that are
// native operations (GET, plain SET, MSET, SAVE, CONFIG SET, the
// connection's own commands) go to the shared Dispatcher unchanged, so they
// keep every rule of the native protocol (a write's reply leaves after its
// covering fdatasync in sync mode; replies in request order). What only
// Redis has is answered here:
//   - conditional writes (resp_writes.h), decided at submission against the
//     State plus the dispatcher's pending writes, then submitted through the
//     dispatcher as one record (or a FLUSH when nothing is written);
//   - reads over the State and STATUS (MGET, EXISTS, TYPE, DBSIZE, KEYS,
//     SCAN, INFO, LASTSAVE, CONFIG GET), rendered in RESP here;
//   - WAIT, from the replicas' durable LSNs (ReplicaAcks, resp_wait.h).
//
// Threading: the loop thread only.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "node/replica_acks.h"
#include "resp/resp_scan.h"
#include "resp/resp_wait.h"
#include "resp/resp_writes.h"
#include "serve/dispatcher.h"

namespace kvd::daemon {

class RespHandler : public RequestHandler {
 public:
  RespHandler(Dispatcher* dispatcher, DispatchHost* host) : dispatcher_(dispatcher), host_(host) {}

  Status Submit(Session& s, uint64_t seq, const Command& cmd) override;
  // A conditional write waits until the dispatcher knows every pending value.
  bool ReadyToSubmit(Session& s, const Command& cmd) override;
  Result<Evaluated> Evaluate(Session& s, const Command& cmd, Reply* reply) override;
  bool EvaluateAhead(Session& s, const Command& cmd) override { return dispatcher_->EvaluateAhead(s, cmd); }
  // The read barrier (serve/read_holds.h): RESP's own reads (EXISTS, MGET ...)
  // are held like the dispatcher's GET, SCAN and COUNT.
  bool HoldReply(Session& s, const Reply& reply) override;
  void SessionClosed(uint64_t session) override;

  // WAIT counts replicas through acks (not owned, outlives the handler);
  // without it WAIT answers 0 at once (no replication).
  void EnableWait(uv_loop_t* loop, ReplicaAcks* acks) { waits_ = std::make_unique<RespWaits>(loop, host_, acks); }
  void StopWait() { waits_.reset(); }

  size_t scan_cursors() const { return cursors_.size(); }

 private:
  void AnswerRead(const Command& cmd, std::string* out);
  void AnswerScan(const Command& cmd, std::string* out);
  void AnswerConfigGet(const Command& cmd, std::string* out);
  Evaluated EvaluateWait(Session& s, const Command& cmd, Reply* reply);
  // Submits to the dispatcher and notes the LSN of a write (for WAIT).
  Status SubmitNoting(Session& s, uint64_t seq, const Command& cmd);

  Dispatcher* dispatcher_;
  DispatchHost* host_;
  ScanCursors cursors_;
  WriteDecision decision_;
  ScanPage page_;
  std::string scratch_;
  std::unique_ptr<RespWaits> waits_;
  // Per connection: the engine's last LSN right after its last write was
  // submitted (>= that write's LSN), for WAIT.
  std::unordered_map<uint64_t, Lsn> last_write_;
};

}  // namespace kvd::daemon
