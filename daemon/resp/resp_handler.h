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
//     SCAN, INFO, LASTSAVE, CONFIG GET), rendered in RESP here.
//
// Threading: the loop thread only.
#pragma once

#include <string>

#include "resp/resp_scan.h"
#include "resp/resp_writes.h"
#include "serve/dispatcher.h"

namespace kvd::daemon {

class RespHandler : public RequestHandler {
 public:
  // The dispatcher must track pending values (Dispatcher::TrackPendingValues).
  RespHandler(Dispatcher* dispatcher, DispatchHost* host) : dispatcher_(dispatcher), host_(host) {}

  Status Submit(Session& s, uint64_t seq, const Command& cmd) override;
  Result<Evaluated> Evaluate(Session& s, const Command& cmd, Reply* reply) override;
  bool EvaluateAhead(Session& s, const Command& cmd) override { return dispatcher_->EvaluateAhead(s, cmd); }

  size_t scan_cursors() const { return cursors_.size(); }

 private:
  void AnswerRead(const Command& cmd, std::string* out);
  void AnswerScan(const Command& cmd, std::string* out);
  void AnswerConfigGet(const Command& cmd, std::string* out);

  Dispatcher* dispatcher_;
  DispatchHost* host_;
  ScanCursors cursors_;
  WriteDecision decision_;
  ScanPage page_;
  std::string scratch_;
};

}  // namespace kvd::daemon
