// `kvctl switchover --to NODE`: a planned handover of the primary role
// (docs/cluster.md "kvctl").
//
// kvctl only asks; the daemons hand over. It puts <prefix>/switchover =
// {"from": <current leader>, "to": NODE} on a short lease, in a txn that
// succeeds only if no switchover key exists and the leader key still names
// `from` with the epoch kvctl read. Then it polls the leader key until it
// names NODE with a larger create revision (a new epoch) and prints the
// time taken. On timeout it revokes its lease (deleting the request) and
// fails; the handover may still be under way, so it says to check status.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "etcd_gateway.h"

namespace kvctl {

struct SwitchoverOptions {
  std::string prefix;
  std::string to;
  std::chrono::milliseconds timeout{10000};  // the whole wait for the new leader
  std::chrono::milliseconds poll{20};        // leader key re-read interval
};

// The lease TTL the request is put on (whole seconds, at least 10 s and
// longer than the wait, so it cannot vanish while kvctl still waits).
int64_t SwitchoverLeaseTtl(std::chrono::milliseconds timeout);

// Prints "OK from=A to=B epoch=E took_ms=N" on out. Exit codes: 2 when the
// request is refused as given (NODE unknown, already primary, not in the
// sync set, another switchover pending, no leader); 3 on etcd errors or
// timeout.
int CmdSwitchover(EtcdGateway& gw, const SwitchoverOptions& o, std::ostream& out, std::ostream& err);

}  // namespace kvctl
