// Faults the cluster tests inject into a real kvd: kvd's --fault-cluster
// option, which only test builds (KVD_FAULT_INJECTION) have. Set once in
// main() before the loop runs; read on the loop thread.
#pragma once

namespace kvd::daemon {

struct ClusterFaults {
  // The takeover's delete carries one more compare, which never holds: etcd
  // answers as when the sync set changed between the check and the delete
  // (a race with the primary replacing this member), and the key stays.
  bool takeover_compare_fails = false;
  // The same refused delete, but its answer is dropped: the coordinator
  // sees an error, cannot tell whether the delete applied, and keeps its
  // fence although the primary keeps its key.
  bool takeover_answer_lost = false;
};

ClusterFaults& TestClusterFaults();

}  // namespace kvd::daemon
