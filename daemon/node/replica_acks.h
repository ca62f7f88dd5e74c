// ReplicaAcks: the read-only view of replication that a front end needs to
// answer RESP's WAIT (docs/resp.md): how many replicas have made a given LSN
// durable, and a signal when that may have changed. Replication implements
// it; the RESP front end depends on this interface only, never on repl/.
//
// Threading: loop thread only.
#pragma once

#include <cstdint>
#include <functional>

#include "kvd/types.h"

namespace kvd::daemon {

class ReplicaAcks {
 public:
  virtual ~ReplicaAcks() = default;
  // Connected replicas whose durable LSN (reported after their fdatasync)
  // is >= lsn. 0 when this node has no replicas.
  virtual uint32_t CountDurable(Lsn lsn) = 0;
  // Whether this node follows a primary (WAIT is refused there, as Redis does).
  virtual bool IsReplica() const = 0;
  // fn runs on the loop whenever a replica's durable LSN may have changed
  // (ACK, connect, disconnect). One listener; replaces the previous one.
  virtual void SetOnAcksChanged(std::function<void()> fn) = 0;
};

}  // namespace kvd::daemon
