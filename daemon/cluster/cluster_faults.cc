#include "cluster/cluster_faults.h"

namespace kvd::daemon {

ClusterFaults& TestClusterFaults() {
  static ClusterFaults faults;  // all off: only --fault-cluster (test builds) sets one
  return faults;
}

}  // namespace kvd::daemon
