// kvctl's side of etcd's v3 JSON gateway: request bodies and reply parsing.
//
// The gateway speaks the protobuf messages as JSON: bytes fields are base64,
// int64 fields are JSON strings, zero values are left out (a failed txn has
// no "succeeded"). Errors come back with a non-200 status and
// {"error", "code" (a gRPC code), "message"}. This is kvctl's own small copy:
// the daemon's etcd code (daemon/cluster/) drives libcurl multi on its loop
// and is not linked into kvctl.
//
// Pure functions, no I/O; nothing throws; a malformed reply is kCorruption.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvd/status.h"

namespace kvctl::etcd {

std::string Base64Encode(std::string_view bytes);
kvd::Result<std::string> Base64Decode(std::string_view text);

// The range_end that makes a range cover every key starting with prefix
// (etcd's "prefix + 1": the last byte below 0xff incremented, the rest cut).
std::string PrefixEnd(std::string_view prefix);

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

struct RangeResult {
  int64_t revision = 0;  // the store revision the range was read at
  std::vector<KeyValue> kvs;
};

// A txn's comparisons and branches, as kvctl needs them.
struct Compare {
  enum Target { kCreateRevision, kValue };
  std::string key;
  Target target = kCreateRevision;
  int64_t create_revision = 0;  // kCreateRevision: must equal this
  std::string value;            // kValue: must equal this
};
struct TxnOp {
  enum Kind { kPut, kRange };
  Kind kind = kRange;
  std::string key;
  std::string value;  // kPut
  int64_t lease = 0;  // kPut
};
struct TxnResult {
  bool succeeded = false;
  // Every range response of the branch that ran, in order.
  std::vector<RangeResult> ranges;
};

// /v3/maintenance/status of one member.
struct MemberStatus {
  std::string member_id;  // decimal, as etcd prints it (uint64: kept as text)
  std::string leader_id;
  uint64_t raft_term = 0;
  int64_t db_size = 0;
  std::string version;
};

std::string RangeRequest(std::string_view key, std::string_view range_end);
std::string TxnRequest(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                       const std::vector<TxnOp>& failure);
std::string LeaseGrantRequest(int64_t ttl_seconds);
std::string LeaseIdRequest(int64_t id);

// A non-200 reply as a Status carrying etcd's message (kBusy for gRPC
// Unavailable: another member may answer), else OK.
kvd::Status CheckReply(long http_status, std::string_view body);
kvd::Result<RangeResult> ParseRange(std::string_view body);
kvd::Result<TxnResult> ParseTxn(std::string_view body);
kvd::Result<int64_t> ParseLeaseGrant(std::string_view body);  // the lease ID
kvd::Result<MemberStatus> ParseMemberStatus(std::string_view body);

}  // namespace kvctl::etcd
