"""Planned switchover handled by the daemons (docs/cluster.md §3.6, ctest
cluster_switchover): 3 etcd + 3 kvd with sync_replicas = 1 on loopback.
The test plays kvctl's part: it puts <prefix>/switchover = {"from","to"}
on a short lease. The target is the replica outside the sync set (the
harder case: it must be published first). Without writes the target
acknowledges a write in under 1 s; with writers running no acknowledged
write is lost; a switchover to a node that cannot catch up (stopped) is
aborted: the key is deleted and the primary takes writes again."""

import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
import kvdtest  # noqa: E402
from etcd_cluster import gateway, b64  # noqa: E402
from cluster_nodes import ClusterNodes, Ledger, first_ack, EtcdTestCase, published_sync_members  # noqa: E402


class ClusterSwitchover(EtcdTestCase):
    def put_switchover(self, nodes, frm, to):
        ep = self.etcd.endpoints()[0]
        lease = gateway(ep, "/v3/lease/grant", {"TTL": 10})["ID"]
        gateway(ep, "/v3/kv/put", {"key": b64(nodes.prefix + "/switchover"),
                                   "value": b64(json.dumps({"from": frm, "to": to})), "lease": lease})


    def test_switchover_fast_without_writes_lossless_with_writers_and_aborted_when_stuck(self):
        nodes = ClusterNodes(self, self.etcd, ["a", "b", "c"], sync_replicas=1)
        p = nodes.wait_primary()
        member = published_sync_members(nodes, p)[0]
        outsider = next(k for k in "abc" if k not in (p, member))
        nodes.wait_streaming(p)
        with nodes[p].client() as c:
            c.put(b"before", b"1").check()

        # 1. No writes: to the outsider.
        started = time.monotonic()
        self.put_switchover(nodes, p, outsider)
        got, _ = first_ack(nodes, [outsider], b"after-switchover", b"1")
        took = time.monotonic() - started
        print("\nswitchover %s -> %s without writes: first acknowledged write on %s after %.3f s"
              % (p, outsider, got, took))
        self.assertLess(took, 1.0)
        kvdtest.wait_until(lambda: nodes.etcd_get("/switchover")[0] is None, what="the switchover key deleted")
        kvdtest.wait_until(lambda: nodes.role(p) == "replica", what=p + " a replica")
        self.assertEqual(nodes.etcd_get("/leader")[0], outsider)
        old, p = p, outsider
        nodes.wait_streaming(p)
        # The old primary, now a replica, holds nothing for replicas' ACKs:
        # what it replicates is not gated, and a FLUSH there completes.
        with nodes[p].client() as c:
            c.put(b"after-stepping-down", b"1").check()
        with nodes[old].client() as c:
            kvdtest.wait_until(lambda: c.get(b"after-stepping-down").ok, what="the write replicated to " + old)
            c.flush().check()
        self.assertNotIn("ack_gate", nodes[old].status())

        # 2. With writers: nothing acknowledged is lost.
        target = next(k for k in "abc" if k != p)
        ledger = Ledger(nodes[p]).start()
        try:
            kvdtest.wait_until(lambda: ledger.count() > 200, what="load")
            self.put_switchover(nodes, p, target)
            kvdtest.wait_until(lambda: nodes.etcd_get("/leader")[0] == target, what="the switchover to " + target)
        finally:
            ledger.join()
        p = nodes.wait_primary()
        self.assertEqual(p, target)
        with nodes[p].client() as c:
            data = dict(c.scan_all())
        self.assertEqual(ledger.lost(data), [])
        print("switchover under 4 writers: %d acknowledged, 0 lost" % len(ledger.acked))
        nodes.wait_streaming(p)

        # 3. A target that cannot catch up (stopped): aborted after 5 s, the
        # key deleted, the primary takes writes again.
        member = published_sync_members(nodes, p)[0]
        stuck = next(k for k in "abc" if k not in (p, member))
        os.kill(nodes[stuck].pid, signal.SIGSTOP)
        try:
            with nodes[p].client() as c:  # acknowledged through the member; the stuck node falls behind
                for i in range(20):
                    c.put(b"behind:%02d" % i, b"1").check()
            self.put_switchover(nodes, p, stuck)
            kvdtest.wait_until(lambda: nodes.etcd_get("/switchover")[0] is None, timeout=15,
                               what="the aborted switchover's key deleted")
            self.assertEqual(nodes.etcd_get("/leader")[0], p)
            with nodes[p].client() as c:
                c.put(b"after-abort", b"1").check()  # the fence is lifted
        finally:
            os.kill(nodes[stuck].pid, signal.SIGCONT)
        nodes.wait_converged(p)


if __name__ == "__main__":
    kvdtest.main(total_timeout=300)
