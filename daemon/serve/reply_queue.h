// ReplyQueue: one connection's replies, in request order.
//
// Every request that cannot be answered at once (a write waiting for its
// fdatasync, FLUSH, SNAPSHOT, an error queued behind pending writes) takes a
// slot. Slots complete in any order; Drain() encodes only the completed
// prefix (through the connection's codec), so replies leave strictly in
// request order. Sequence numbers are
// never reused, so a late completion for a slot that is gone is detected.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "kvd/status.h"
#include "kvd/types.h"
#include "serve/codec.h"

namespace kvd::daemon {

class ReplyQueue {
 public:
  // Appends a pending slot; returns its sequence number.
  uint64_t Push(const RequestRef& ref);
  // Completes a pending slot. `message` is the error text for a failure (or
  // the payload of a success, rarely used). False if seq is unknown or done.
  bool Complete(uint64_t seq, Code status, Lsn durable_lsn, Lsn lsn, std::string_view message = {});
  // Sets the text a pending slot replies with when it completes OK (or
  // NotFound) without a message of its own: a handler that decides a
  // request's answer before its write is durable (RESP's SETNX, GETDEL)
  // keeps the answer here until the write's completion releases it.
  void SetPayload(uint64_t seq, std::string_view payload);
  // Sets the reply of a pending slot already encoded by the connection's
  // codec: a read evaluated now whose reply waits for the sync watermark
  // (serve/read_holds.h). Completing it OK without a message sends these
  // bytes; completing it with an error message sends the error instead.
  void SetEncoded(uint64_t seq, std::string bytes);
  // Encodes the completed slots at the front into *out with codec and
  // removes them.
  // Returns the number of replies encoded. The durable_lsn sent never
  // decreases along a connection's replies (a GET answered ahead of earlier
  // writes was built with an older one; the newer is just as true).
  size_t Drain(Codec& codec, std::string* out);

  bool empty() const { return slots_.empty(); }
  // Payload and message bytes held in slots (completed, not yet drained).
  uint64_t held_bytes() const { return held_bytes_; }
  size_t size() const { return slots_.size(); }
  uint64_t next_seq() const { return base_seq_ + slots_.size(); }

 private:
  struct Slot {
    RequestRef ref;
    bool done = false;
    Code status = Code::kOk;
    Lsn durable_lsn = 0;
    Lsn lsn = 0;
    std::string message;
    bool encoded = false;  // message holds the encoded reply (SetEncoded)
  };
  std::deque<Slot> slots_;
  uint64_t base_seq_ = 0;  // seq of slots_.front()
  Lsn sent_durable_ = 0;   // highest durable_lsn drained so far
  uint64_t held_bytes_ = 0;
};

}  // namespace kvd::daemon
