// The replication link's TLS ([replication] tls_cert, tls_key, tls_ca;
// docs/replication.md §2): the node's TlsContext, built once at start-up,
// and a TlsFilter per link — the server side on the primary's accepted
// connections (WalSender), the client side on the replica's (WalReceiver).
//
// Certificates are read at start-up only: a renewed certificate takes a
// restart (SIGHUP does not reload them).
#pragma once

#include <memory>

#include "config/config.h"
#include "net/tls_filter.h"

namespace kvd::daemon {

// nullptr when TLS is off. Errors name the file ("[replication] TLS:
// certificate /etc/kvd/p.crt: No such file or directory"); kvd --check-config
// and start-up report them before anything else is done.
Result<std::shared_ptr<TlsContext>> MakeReplicationTls(const ReplicationConfig& c);

// The filter for one link: a TlsFilter when `tls` is set, nullptr (plain,
// the Link's pass-through) when it is not.
Result<std::unique_ptr<StreamFilter>> MakeLinkFilter(const TlsContext* tls, TlsFilter::Side side);

}  // namespace kvd::daemon
