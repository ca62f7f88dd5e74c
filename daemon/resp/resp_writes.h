// The writes whose effect or answer depends on a key's current value: SETNX,
// SET NX|XX|GET, GETDEL, DEL (answers how many existed) and MSETNX.
//
// Atomicity: the RESP handler decides one of these when it is submitted, on
// the loop thread, against the State plus every write submitted before it
// and not yet applied (serve/pending_writes.h), from any client, and submits
// the resulting write at once. So decisions happen in LSN order, exactly as
// the engine applies the writes: no other write can come between the check
// and the write. A decision that writes nothing but read a pending value
// waits for a FLUSH before it answers, so a reply never reveals data that a
// crash could still take away (sync mode).
//
// DecideWrite is a pure function of (command, lookup), tested against a
// model in tests/daemon/resp_codec_test.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvd/types.h"
#include "resp/resp_commands.h"

namespace kvd::daemon {

struct WriteDecision {
  std::vector<BatchOp> ops;  // to write as one record; views into args
  std::string reply;         // the RESP answer, sent once `ops` (or a FLUSH) is durable
  bool read_pending = false; // a value it read is not yet applied
};

// The current value of key (nullopt: absent); sets *pending when that value
// comes from a write not yet applied.
using ValueLookup = std::function<std::optional<std::string_view>(std::string_view key, bool* pending)>;

// args: the command's arguments after its name (already checked by the
// codec); tag: its RespTag (SET's flags, the reply's protocol).
void DecideWrite(RespCmd id, uint16_t tag, std::span<const std::string_view> args, const ValueLookup& lookup,
                 WriteDecision* d);

}  // namespace kvd::daemon
