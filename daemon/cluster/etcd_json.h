// Encoding of etcd v3 gateway requests and decoding of its replies.
//
// The gateway (grpc-gateway in etcd 3.4, under /v3/) speaks the protobuf
// messages as JSON: bytes fields are base64, int64/uint64 fields are JSON
// strings, fields at their zero value are left out (a failed txn has no
// "succeeded", a vanished lease no "TTL"). Errors come back with a non-200
// status and {"error": ..., "code": <grpc code>, "message": ...}.
//
// Pure functions, no I/O: unit-tested in tests/daemon/etcd_json_test.cc.
// Nothing here throws; malformed replies are kCorruption.
#pragma once

#include <string>
#include <string_view>

#include "cluster/etcd_types.h"
#include "kvd/status.h"

namespace kvd::daemon::etcd_json {

std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

// Request bodies.
std::string RangeRequest(std::string_view key, std::string_view range_end);
std::string PutRequest(std::string_view key, std::string_view value, int64_t lease);
std::string DeleteRequest(std::string_view key, std::string_view range_end);
std::string TxnRequest(const EtcdTxnRequest& txn);
std::string LeaseGrantRequest(int64_t ttl_seconds);
std::string LeaseIdRequest(int64_t id);  // keepalive and revoke
std::string WatchCreateRequest(std::string_view key, std::string_view range_end, int64_t start_revision);

// Replies. `http_status` and `body` as received; a non-200 reply is turned
// into a Status carrying etcd's message (kBusy for Unavailable, so callers
// may try another member; kInvalidArgument for etcd's "bad request" family).
Status CheckReply(long http_status, std::string_view body);
Result<EtcdRange> ParseRange(std::string_view body);
Result<int64_t> ParseRevision(std::string_view body);  // put / delete: header.revision
Result<EtcdTxnResult> ParseTxn(std::string_view body);
Result<EtcdLease> ParseLease(std::string_view body);   // grant, and keepalive's {"result": ...}
Result<EtcdMemberStatus> ParseMemberStatus(std::string_view body);

// One line of the watch stream: {"result": {...}} or {"error": {...}}.
// A created/progress notice decodes as a batch without events. A watch
// etcd canceled (its start revision was compacted) says so in `canceled` and
// `compact_revision`: the caller re-reads and watches from a newer revision.
struct WatchLine {
  EtcdWatchBatch batch;
  int64_t compact_revision = 0;  // > 0: the start revision was compacted
  bool canceled = false;
};
Result<WatchLine> ParseWatchLine(std::string_view line);

}  // namespace kvd::daemon::etcd_json
