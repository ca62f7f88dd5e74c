#include "repl/repl_tls.h"

namespace kvd::daemon {

Result<std::shared_ptr<TlsContext>> MakeReplicationTls(const ReplicationConfig& c) {
  if (!c.enabled() || !c.tls()) return std::shared_ptr<TlsContext>();
  auto ctx = TlsContext::Create({c.tls_cert, c.tls_key, c.tls_ca});
  if (!ctx) return Status::InvalidArgument("[replication] TLS: " + ctx.error().message());
  return ctx;
}

Result<std::unique_ptr<StreamFilter>> MakeLinkFilter(const TlsContext* tls, TlsFilter::Side side) {
  if (tls == nullptr) return std::unique_ptr<StreamFilter>();
  KVD_ASSIGN_OR_RETURN(std::unique_ptr<TlsFilter> f, TlsFilter::Create(*tls, side));
  return std::unique_ptr<StreamFilter>(std::move(f));
}

}  // namespace kvd::daemon
