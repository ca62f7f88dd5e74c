// Values the etcd v3 API returns, as kvd's etcd client hands them out.
// Keys and values are raw bytes (std::string); revisions and lease ids are
// etcd's int64s. Field meanings: etcd's api/etcdserverpb/rpc.proto and
// api/mvccpb/kv.proto.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvd::daemon {

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // revision of the put that created the key
  int64_t mod_revision = 0;     // revision of its last change
  int64_t version = 0;          // changes since creation (1 after the create)
  int64_t lease = 0;            // the lease it is attached to, 0 for none
};

struct EtcdRange {
  int64_t revision = 0;  // the store's revision when the range was read
  std::vector<EtcdKeyValue> kvs;
  int64_t count = 0;     // matching keys (may exceed kvs.size() with a limit)
};

// One comparison of a transaction: `target(key) op operand`.
struct EtcdCompare {
  enum class Target { kVersion, kCreate, kMod, kValue, kLease };
  enum class Op { kEqual, kGreater, kLess, kNotEqual };
  std::string key;
  Target target = Target::kCreate;
  Op op = Op::kEqual;
  int64_t number = 0;  // for every target but kValue
  std::string value;   // for kValue
};

// One operation of a transaction branch.
struct EtcdOp {
  enum class Kind { kPut, kRange, kDelete };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;      // kPut
  int64_t lease = 0;      // kPut: attach to this lease (0: none)
  std::string range_end;  // kRange/kDelete: empty for the single key

  static EtcdOp Put(std::string k, std::string v, int64_t lease_id = 0) {
    return {Kind::kPut, std::move(k), std::move(v), lease_id, {}};
  }
  static EtcdOp Get(std::string k, std::string end = {}) { return {Kind::kRange, std::move(k), {}, 0, std::move(end)}; }
  static EtcdOp Delete(std::string k, std::string end = {}) {
    return {Kind::kDelete, std::move(k), {}, 0, std::move(end)};
  }
};

struct EtcdTxnRequest {
  std::vector<EtcdCompare> compare;
  std::vector<EtcdOp> success;
  std::vector<EtcdOp> failure;
};

struct EtcdTxnResult {
  bool succeeded = false;
  int64_t revision = 0;            // after the txn (the revision of its writes, if any)
  std::vector<EtcdRange> ranges;   // one per kRange op of the branch that ran, in order
};

struct EtcdLease {
  int64_t id = 0;
  int64_t ttl_seconds = 0;  // 0 from a keepalive: the lease no longer exists
};

struct EtcdWatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  EtcdKeyValue kv;  // for kDelete: key and mod_revision only
};

struct EtcdWatchBatch {
  int64_t revision = 0;  // the store's revision when etcd sent the batch
  std::vector<EtcdWatchEvent> events;
};

struct EtcdMemberStatus {
  uint64_t member_id = 0;  // the member that answered
  uint64_t leader = 0;     // its idea of the raft leader (0: none)
  uint64_t raft_term = 0;
  int64_t revision = 0;
};

// The end of the key range holding every key that starts with `prefix`
// (etcd's "prefix + 1": last byte incremented, trailing 0xff dropped).
std::string EtcdPrefixEnd(std::string prefix);

}  // namespace kvd::daemon
