// Session: the ordering state of one client connection, without libuv and
// without a wire format.
//
// Bytes in (InputBuffer) -> the codec -> neutral Commands, in order -> the
// RequestHandler (the dispatcher) -> neutral Replies -> the codec -> bytes
// out, in request order. The rules below hold for every protocol.
//
// Ordering rule (docs/wire_protocol.md "Pipelining"): writes (PUT, DEL,
// BATCH) and FLUSH are submitted to the engine as soon as they are read, so
// they join the current commit group. Every other request (reads, STATUS,
// SNAPSHOT, CONFIG ...) is a barrier: it is evaluated only when every earlier
// request on this connection has completed, so a GET pipelined after a PUT
// sees that PUT, and never sees a later one. While a barrier waits, nothing
// after it is processed (the bytes stay in the input buffer).
//
// A range delete (DEL_RANGE) is a write to every key it covers: a GET of
// such a key waits for it like a GET of a key an earlier PUT wrote.
//
// One exception keeps pipelined GET/PUT mixes from costing an fdatasync per
// PUT: a GET whose key no earlier write still in the reply queue may touch is
// answered at once, into its own slot (RequestHandler::EvaluateAhead). It
// reads what it would read after those writes (they cannot change its key,
// and no later write has been submitted), and the requests after it go on.
//
// A broken request stream (a bad frame) gets an error reply (with the
// request id when it could be read) queued behind the earlier replies; then
// the session stops reading and the connection is closed once everything
// has been sent.
//
// Threading: the loop thread only. The connection (libuv glue) owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvd/status.h"
#include "net/peer.h"
#include "serve/codec.h"
#include "serve/command.h"
#include "serve/input_buffer.h"
#include "serve/reply_queue.h"
#include "serve/request_latency.h"

namespace kvd::daemon {

class Session;

// Implemented by the Dispatcher.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // PUT/DEL/BATCH/FLUSH: slot `seq` of s.replies() is completed now or when
  // the engine reports. A non-OK return is a malformed request: the session
  // answers it with that status and closes the connection.
  virtual Status Submit(Session& s, uint64_t seq, const Command& cmd) = 0;
  // Asked right before Submit: false, not yet (a conditional write waits
  // for writes it must decide against, Dispatcher::PendingValuesReady); the
  // request stays in the buffer, nothing after it is processed, and the
  // handler calls SessionReady when it may go on: it is decoded again.
  virtual bool ReadyToSubmit(Session& s, const Command& cmd) {
    (void)s;
    (void)cmd;
    return true;
  }
  // Barriers, called when s.replies() is empty: fill *reply and return
  // kReplied (the session encodes it at once, so its views need to live only
  // until then), or push a pending slot and return kQueued (SNAPSHOT), or
  // return kParked: not yet (a read waits for its minimum LSN); the request
  // stays in the buffer, nothing after it is processed, and the handler
  // calls SessionReady when it may go on: it is decoded and evaluated again.
  // Non-OK return as for Submit.
  enum class Evaluated : uint8_t { kReplied, kQueued, kParked };
  virtual Result<Evaluated> Evaluate(Session& s, const Command& cmd, Reply* reply) = 0;
  // A GET while s.replies() is not empty: if s.MayHavePendingWrite says no
  // for its key, push a slot, complete it with the reply and return true;
  // otherwise (or for a command with a problem) return false and the GET
  // waits as a barrier.
  virtual bool EvaluateAhead(Session& s, const Command& cmd) {
    (void)s;
    (void)cmd;
    return false;
  }
  // The connection with this session id is closed (whatever it held goes).
  virtual void SessionClosed(uint64_t session) { (void)session; }
  // A barrier's reply was just evaluated (kReplied): true when the handler
  // holds it instead (a read on a synchronous primary waiting for the sync
  // watermark, serve/read_holds.h): it pushed a slot, encoded the reply into
  // it, and completes it later. False: the session encodes it now.
  virtual bool HoldReply(Session& s, const Reply& reply) {
    (void)s;
    (void)reply;
    return false;
  }
};

class Session {
 public:
  struct Limits {
    uint64_t max_pending_reply_bytes = 8 * 1024 * 1024;
    // Where request latencies are recorded; nullptr: not measured (no
    // clock reads, no bookkeeping). Not owned; outlives the session.
    RequestLatency* latency = nullptr;
  };
  // codec: the connection's wire format; nullptr means the native protocol
  // with its default limits (tests).
  Session(uint64_t id, RequestHandler* handler, Limits limits, std::unique_ptr<Codec> codec = nullptr);

  uint64_t id() const { return id_; }
  InputBuffer& input() { return input_; }
  ReplyQueue& replies() { return replies_; }
  Codec& codec() { return *codec_; }

  // Drains completed replies and processes buffered requests until one
  // blocks, more bytes are needed, output is over its limit, or a bad frame.
  void Process();
  // The time of the read that just added bytes to input(): the start of the
  // latency of the requests decoded next (with latency measured). A request
  // that waited in the buffer behind a barrier while later bytes arrived is
  // timed from the latest read before it was decoded.
  void NoteRead(std::chrono::steady_clock::time_point at) { read_at_ = at; }

  // Output: bytes queued and not yet handed to the socket.
  bool HasOutput() const { return !out_.empty(); }
  // Moves the queued output into the "sending" buffer and returns it; it
  // stays valid until SendDone(). Only one send at a time.
  std::string_view BeginSend();
  // The send failed or was cancelled (its replies are not timed).
  void SendDone();
  // The whole send reached the socket at `at`: the replies in it are timed.
  void SendDoneAt(std::chrono::steady_clock::time_point at);
  bool sending() const { return sending_active_; }
  size_t sending_bytes() const { return sending_.size(); }
  // Bytes accepted from requests but not yet confirmed sent.
  uint64_t unsent_bytes() const { return out_.size() + sending_.size(); }
  // Reply bytes this connection holds: answered but waiting in order, or
  // encoded but not yet sent (what max_pending_reply_bytes bounds).
  uint64_t reply_bytes() const { return replies_.held_bytes() + unsent_bytes(); }

  // Whether the connection should keep reading from the socket.
  bool WantsRead() const;
  // A bad frame was seen: close once everything queued has been sent.
  bool close_requested() const { return close_after_flush_; }
  // Nothing left to send and no reply outstanding.
  bool Quiescent() const { return replies_.empty() && out_.empty() && !sending_active_; }
  // No request in progress: nothing pending and no complete request unprocessed.
  bool Idle() const;
  bool blocked() const { return blocked_; }

  // Writes submitted while replies are queued note their keys, so that a
  // GET can tell whether it may be answered ahead of them. Kept as hashes
  // until the queue drains: a collision or too many keys only makes a GET
  // wait, as every read did before.
  void NoteWriteKey(std::string_view key);
  // A range delete covers every key in r: a GET of any of them waits for it.
  void NoteWriteRange(const KeyRange& r);
  bool MayHavePendingWrite(std::string_view key) const;

  // Protocol-level failure on this connection (for tests and counters).
  uint64_t bad_frames() const { return bad_frames_; }
  // Why the request stream broke (the first protocol error), for the log.
  const std::string& stream_error() const { return stream_error_; }

  // Who the client is (set by the connection at accept; logs, CONFIG SET).
  void set_peer(Peer peer) { peer_ = std::move(peer); }
  const Peer& peer() const { return peer_; }

 private:
  // Queues an error reply for a broken request stream and stops processing.
  // timed: the request already has its latency entry (it was decoded).
  void FailStream(const Status& error, const RequestRef& ref, bool timed = false);
  // Moves the completed prefix of replies_ into out_ (and counts them for
  // the latency bookkeeping).
  void DrainReplies();
  // One reply encoded into out_.
  void Encoded(size_t n) {
    if (limits_.latency != nullptr) encoded_ += n;
  }
  void TimeRequest(Op op, bool counted) {
    if (limits_.latency != nullptr) timings_.push_back({read_at_, op, counted});
  }
  void UpdateOutputPause();
  // Replies answered ahead wait in the queue: they count against the same
  // limit as unsent output, or a slow reader could pile them up unbounded.
  bool CanAnswerAhead() const { return reply_bytes() < limits_.max_pending_reply_bytes; }
  // Nothing queued: no earlier write can be pending any more.
  void ForgetWriteKeysIfDrained() {
    if (replies_.empty()) {
      write_keys_.clear();
      write_ranges_.clear();
      write_keys_overflow_ = false;
    }
  }

  const uint64_t id_;
  RequestHandler* handler_;
  Limits limits_;
  std::unique_ptr<Codec> codec_;
  uint64_t consumed_requests_ = 0;  // the sequence number of the next request
  InputBuffer input_;
  // input_.size() when the codec last said "need more bytes", or kNotKnown.
  // Input only grows between reads and only Process consumes it, so the same
  // size means the same incomplete bytes: Process does not decode them again
  // (it runs up to three times per request: on read and per send round).
  static constexpr size_t kNotKnown = ~size_t{0};
  size_t incomplete_size_ = kNotKnown;
  ReplyQueue replies_;
  // The request being processed. A member, not a local of Process: Process
  // runs several times per request and a Command (with its Status) is not
  // free to build; the codec resets every field it decodes.
  Command cmd_;
  std::string out_;
  std::string sending_;
  bool sending_active_ = false;
  bool blocked_ = false;        // a barrier waits for earlier replies
  bool output_paused_ = false;  // unsent bytes passed the limit (resume below half)
  bool close_after_flush_ = false;
  uint64_t bad_frames_ = 0;
  std::string stream_error_;
  Peer peer_;
  std::vector<uint64_t> write_keys_;  // hashes of keys written since the queue was last empty
  struct OwnedRange {                 // copies: the request's bytes go once it is consumed
    bool prefix;
    std::string a, b;
  };
  std::vector<OwnedRange> write_ranges_;  // range deletes since the queue was last empty
  bool write_keys_overflow_ = false;  // more than the tracked limit: assume any key

  // Latency bookkeeping (only with limits_.latency). Every request decoded,
  // and the error reply of a broken stream, gets one reply, in request
  // order: timings_[timings_head_..] holds one entry per reply not yet
  // sent, oldest first (a vector used as a FIFO: cheaper than a deque).
  // The first sending_count_ are in sending_, the next encoded_ -
  // sending_count_ in out_, the rest not yet encoded.
  struct Timing {
    std::chrono::steady_clock::time_point read_at;
    Op op;
    bool counted;  // false: the reply to a broken frame (no operation)
  };
  std::chrono::steady_clock::time_point read_at_{};
  std::vector<Timing> timings_;
  size_t timings_head_ = 0;
  size_t encoded_ = 0;
  size_t sending_count_ = 0;
};

}  // namespace kvd::daemon
