// The protocol-neutral request and reply passed between a codec and the
// serving core (Session, Dispatcher). A codec (serve/codec.h) decodes bytes
// into a Command and encodes a Reply into bytes; nothing between them knows
// which protocol the client speaks.
//
// Lifetime: every view (key, value, batch, scan bounds, reply text) points
// into the connection's input buffer, the codec's scratch, the engine's
// State or the dispatcher's scratch. A Command is valid until the next
// Decode on its codec; a Reply until it has been encoded, which the session
// does at once. Nothing is copied per request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "kvd/status.h"
#include "kvd/types.h"

namespace kvd::daemon {

// What kvd can do, whatever a protocol calls it (a RESP MSET is a kBatch).
enum class Op : uint8_t {
  kPing,
  kGet,
  kPut,
  kDel,
  kBatch,
  kScan,
  kCount,
  kFlush,
  kSnapshot,
  kStatus,
  kConfigGet,
  kConfigSet,
  kDelRange,     // a prefix or [a, b): one record, one LSN
  kBackupBegin,  // a snapshot to stream to the client (docs/backup.md)
  kBackupRead,
  kBackupEnd,
  kPromote,    // become the primary (docs/replication.md §7)
  kReplicate,  // follow another primary
};
inline constexpr size_t kOpCount = 18;

// Lower-case name ("get", "config_set"): STATUS reports counters by it.
std::string_view OpName(Op op);
// Writes and FLUSH: submitted to the engine as soon as they are read.
inline bool IsSubmittedAtOnce(Op op) {
  return op == Op::kPut || op == Op::kDel || op == Op::kBatch || op == Op::kDelRange || op == Op::kFlush;
}

// What a reply needs from its request. id: the protocol's request id (the
// native client's own, echoed; a protocol without ids uses the session's
// sequence number). tag: the codec's own note, returned untouched with the
// reply (the native codec keeps the wire opcode there, so it can echo even
// an opcode it does not know; RESP can keep which command shape to answer).
struct RequestRef {
  uint64_t id = 0;
  Op op = Op::kPing;
  uint16_t tag = 0;
};

struct ScanSpec {
  bool prefix = true;     // prefix scan of a; else the range [a, b)
  uint32_t limit = 0;     // 0: the server default
  std::string_view a;     // prefix, or range start
  std::string_view b;     // range end (exclusive), empty = unbounded
  std::string_view after; // continuation: only keys > after
};

struct Command {
  RequestRef ref;
  bool durable = false;           // acknowledge only once durable, in any mode
  // GET, SCAN, COUNT: answer only once the engine applied this LSN (waiting
  // at most [replication] min_lsn_wait); 0 = at once (read-your-writes).
  Lsn min_lsn = 0;
  std::string_view key;           // GET, PUT, DEL; the prefix of COUNT; the CONFIG key name
  std::string_view value;         // PUT; the value text of CONFIG SET
  std::span<const BatchOp> batch; // BATCH
  ScanSpec scan;                  // SCAN
  // A protocol's own arguments for its own handler (RESP: the arguments
  // after the command name); the native codec leaves it empty.
  std::span<const std::string_view> args;
  KeyRange range;                 // DEL_RANGE
  uint64_t backup_id = 0;         // BACKUP_READ, BACKUP_END
  uint64_t offset = 0;            // BACKUP_READ
  uint32_t max_bytes = 0;         // BACKUP_READ
  bool force = false;             // PROMOTE
  uint64_t epoch = 0;             // PROMOTE (0: the node picks); REPLICATE's address is in key
  // The arguments did not decode. fatal: the request stream is broken (the
  // connection is closed after the error reply, as for a bad frame);
  // otherwise only this request fails (a key or value over its limit).
  Status problem;
  bool fatal = false;
};

// A SCAN's answer: views into the State, in key order.
struct ScanResult {
  std::vector<std::pair<std::string_view, std::string_view>> items;
  bool more = false;  // call again with after = the last key
};

struct Reply {
  RequestRef ref;
  Code code = Code::kOk;
  Lsn durable_lsn = 0;  // at reply time; never decreases along a connection
  Lsn lsn = 0;          // the write's LSN, the snapshot's, or FLUSH's durable LSN
  // For an error: the message. Otherwise: GET's value, STATUS's and CONFIG
  // GET's JSON text, DEL_RANGE's and BACKUP_BEGIN's encoded payload, a
  // BACKUP_READ chunk; empty for the rest.
  std::string_view text;
  uint64_t count = 0;                // COUNT
  const ScanResult* scan = nullptr;  // SCAN
};

}  // namespace kvd::daemon
