"""Fast takeover (docs/cluster.md §3.5, ctest cluster_takeover): 3 etcd +
3 kvd with sync_replicas = 1 and ttl 5 s on loopback. Repeatedly kill -9
the primary: the published sync member fences the old epoch, deletes the
leader key and wins without waiting for the lease to expire. Prints p50 and
max of the time from the kill to the first acknowledged write on the new
primary over the rounds (KVD_TAKEOVER_ROUNDS, default 10) and asserts the
issue's goal (p50 <= 3 s, max <= 5 s); lease expiry alone takes 4.2-5.5 s.
Every acknowledged write survives every round."""

import json
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase  # noqa: E402
from etcd_cluster import EtcdCluster, etcd_available  # noqa: E402
from cluster_nodes import ClusterNodes, first_ack  # noqa: E402

ROUNDS = int(os.environ.get("KVD_TAKEOVER_ROUNDS", "10"))


@__import__("unittest").skipUnless(etcd_available(), "etcd is not installed (scripts/install-deps.sh)")
class ClusterTakeover(KvdTestCase):
    def setUp(self):
        super().setUp()
        self.etcd = EtcdCluster()
        self.etcd.start()

    def tearDown(self):
        self.etcd.stop()

    def sync_member(self, nodes, primary):
        epoch = nodes[primary].status()["epoch"]
        got = []

        def published():
            v, _ = nodes.etcd_get("/sync")
            v = json.loads(v) if v is not None else None
            if v is None or v["epoch"] != epoch or len(v["members"]) != 1:
                return False
            got[:] = v["members"]
            return True
        kvdtest.wait_until(published, what="the sync set of epoch %d" % epoch)
        return got[0]

    def test_kill_primary_rounds_take_over_before_the_lease_expires(self):
        nodes = ClusterNodes(self, self.etcd, ["a", "b", "c"], sync_replicas=1)
        acked = {}
        times = []
        p = nodes.wait_primary()
        for rnd in range(ROUNDS):
            member = self.sync_member(nodes, p)
            nodes.wait_streaming(p)
            with nodes[p].client() as c:
                for i in range(20):
                    key = b"r%02d:%03d" % (rnd, i)
                    c.put(key, b"v").check()
                    acked[key] = b"v"
            nodes[p].kill()
            killed_at = time.monotonic()
            others = [k for k in nodes.nodes if k != p]
            p2, _ = first_ack(nodes, others, b"first:%02d" % rnd, b"1")
            took = time.monotonic() - killed_at
            acked[b"first:%02d" % rnd] = b"1"
            times.append(took)
            self.assertEqual(p2, member, "round %d: the published sync member must win" % rnd)
            nodes[p].start()
            p = p2
        data = nodes.wait_converged(p)
        self.assertEqual([k for k, v in acked.items() if data.get(k) != v], [])
        p50, worst = statistics.median(times), max(times)
        print("\nkill -9 -> first acknowledged write on the new primary over %d rounds: p50 %.2f s, max %.2f s (%s)"
              % (len(times), p50, worst, ", ".join("%.2f" % t for t in times)))
        self.assertLessEqual(p50, 3.0)
        self.assertLessEqual(worst, 5.0)


if __name__ == "__main__":
    kvdtest.main(total_timeout=300)
