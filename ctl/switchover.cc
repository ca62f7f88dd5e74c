#include "switchover.h"

#include <algorithm>
#include <ostream>
#include <thread>

#include "cluster_view.h"
#include "exit_codes.h"
#include "format.h"

namespace kvctl {
namespace {

using Clock = std::chrono::steady_clock;

int Refuse(std::ostream& err, const std::string& why) {
  err << "kvctl switchover: " << why << "\n";
  return kExitUsage;
}

int Fail(std::ostream& err, const std::string& why) {
  err << "kvctl switchover: " << why << "\n";
  return kExitServer;
}

// Why the view does not allow a switchover to `to`, or "" when it does.
std::string CheckRequest(const ClusterView& v, const std::string& to) {
  if (!v.leader) return "no primary holds " + v.prefix + "/leader: nothing to hand over (election under way?)";
  if (*v.leader == to) return EscapeForLine(to) + " is already the primary (epoch " + std::to_string(v.epoch) + ")";
  if (v.switchover) {
    return "a switchover is already requested: " + EscapeForLine(v.switchover->from) + " -> " +
           EscapeForLine(v.switchover->to) + " (it expires with its lease)";
  }
  const ClusterMember* m = v.Member(to);
  if (m == nullptr) {
    std::string names;
    for (const auto& x : v.members) names += (names.empty() ? "" : ", ") + EscapeForLine(x.name);
    return EscapeForLine(to) + " is not a live member (members: " + (names.empty() ? "none" : names) + ")";
  }
  // A target outside the published sync set is fine: the primary makes it
  // the member (once it has every write) before it resigns (§3.6).
  return "";
}

}  // namespace

int64_t SwitchoverLeaseTtl(std::chrono::milliseconds timeout) {
  const int64_t wait_s = std::chrono::ceil<std::chrono::seconds>(timeout).count();
  return std::max<int64_t>(10, wait_s + 2);
}

int CmdSwitchover(EtcdGateway& gw, const SwitchoverOptions& o, std::ostream& out, std::ostream& err) {
  const std::string base = o.prefix + "/";
  auto range = gw.Range(base, etcd::PrefixEnd(base));
  if (!range.has_value()) return Fail(err, range.error().message());
  const ClusterView view = BuildClusterView(o.prefix, *range);
  if (std::string why = CheckRequest(view, o.to); !why.empty()) return Refuse(err, why);
  const std::string from = *view.leader;
  const int64_t epoch = view.epoch;

  auto lease = gw.LeaseGrant(SwitchoverLeaseTtl(o.timeout));
  if (!lease.has_value()) return Fail(err, lease.error().message());
  const std::string leader_key = base + "leader";
  const std::string switchover_key = base + "switchover";
  const auto started = Clock::now();
  auto txn = gw.Txn(
      {{switchover_key, etcd::Compare::kCreateRevision, 0, ""},
       {leader_key, etcd::Compare::kCreateRevision, epoch, ""},
       {leader_key, etcd::Compare::kValue, 0, from}},
      {{etcd::TxnOp::kPut, switchover_key, SwitchoverJson({from, o.to}), *lease}},
      {{etcd::TxnOp::kRange, leader_key, "", 0}, {etcd::TxnOp::kRange, switchover_key, "", 0}});
  if (!txn.has_value()) {
    (void)gw.LeaseRevoke(*lease);  // if the put did happen, this withdraws it
    return Fail(err, txn.error().message());
  }
  if (!txn->succeeded) {
    (void)gw.LeaseRevoke(*lease);
    if (txn->ranges.size() == 2 && !txn->ranges[1].kvs.empty()) {
      return Refuse(err, "another switchover was requested meanwhile: " + txn->ranges[1].kvs[0].value);
    }
    return Refuse(err, "the primary changed meanwhile (it was " + EscapeForLine(from) + " in epoch " +
                           std::to_string(epoch) + "); look at kvctl cluster status and retry");
  }

  // Wait for the daemons: the leader key names `to` in a newer epoch.
  const auto deadline = started + o.timeout;
  std::string last_error;
  while (true) {
    auto leader = gw.Range(leader_key);
    if (leader.has_value()) {
      last_error.clear();
      if (!leader->kvs.empty() && leader->kvs[0].value == o.to && leader->kvs[0].create_revision > epoch) {
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
        (void)gw.LeaseRevoke(*lease);  // the request is done; free the key for the next one
        out << "OK from=" << EscapeForLine(from) << " to=" << EscapeForLine(o.to)
            << " epoch=" << leader->kvs[0].create_revision << " took_ms=" << took.count() << "\n";
        return kExitOk;
      }
    } else {
      last_error = leader.error().message();  // etcd may be electing: keep trying until the deadline
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::min<Clock::duration>(o.poll, deadline - Clock::now()));
  }
  const kvd::Status revoked = gw.LeaseRevoke(*lease);
  std::string why = "no new primary " + EscapeForLine(o.to) + " within " +
                    std::to_string(o.timeout.count()) + " ms; ";
  why += revoked.ok() ? "the request was withdrawn" : "withdrawing the request failed (" + revoked.message() +
                                                          "; it expires with its lease)";
  why += ", but a handover already under way may still complete: check kvctl cluster status";
  if (!last_error.empty()) why += " (last etcd error: " + last_error + ")";
  return Fail(err, why);
}

}  // namespace kvctl
