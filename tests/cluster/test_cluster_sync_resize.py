"""sync_replicas changed by SIGHUP under [cluster] (docs/cluster.md §3.2,
ctest cluster_sync_resize): 3 etcd + 3 kvd on loopback, starting with
sync_replicas = 1.

Growing to 2: the primary publishes both replicas (sync_replicas 2 in the
key) and its gate requires both: with one member stopped a write is not
acknowledged. Shrinking back to 1: the published set has exactly one
member again, the gate requires one and counts only it: with the other
replica stopped writes are acknowledged, with the member stopped they are
not. Then kill -9 of the primary under writers: the published member wins
and no acknowledged write is lost."""

import signal
import sys
import time

sys.dont_write_bytecode = True
import kvdtest  # noqa: E402
from cluster_nodes import ClusterNodes, Ledger, EtcdTestCase, published_set, read_all  # noqa: E402


def gate(node):
    return node.status()["replication"]["sync"]


class ClusterSyncResize(EtcdTestCase):
    def set_sync(self, nodes, n):
        """sync_replicas = n (and sync_timeout 1 s) on every node, by SIGHUP."""
        for node in nodes.running().values():
            node.config["replication"]["sync_replicas"] = n
            node.config["replication"]["sync_timeout"] = "1s"
            node.write_config(**node.config)
            node.reload()

    def assert_put(self, node, key, acknowledged):
        with node.client(timeout=10) as c:
            r = c.put(key, b"x")
        if acknowledged:
            self.assertEqual(r.status, 0, r)
        else:
            self.assertNotEqual(r.status, 0, "%r was acknowledged" % key)

    def test_sighup_grows_and_shrinks_the_published_set(self):
        nodes = ClusterNodes(self, self.etcd, ["a", "b", "c"], sync_replicas=1)
        p = nodes.wait_primary()
        [first] = published_set(nodes, p, 1)
        nodes.wait_streaming(p)
        replicas = sorted(k for k in nodes.nodes if k != p)

        # Grow: both replicas published, the gate requires and counts both.
        self.set_sync(nodes, 2)
        self.assertEqual(published_set(nodes, p, 2), replicas)
        kvdtest.wait_until(lambda: gate(nodes[p])["sync_replicas"] == 2, what="the gate at 2")
        self.assert_put(nodes[p], b"grown", True)
        self.assertEqual(sorted(gate(nodes[p])["counting"]), replicas)
        for stopped in replicas:
            nodes[stopped].kill(signal.SIGSTOP)
            try:
                self.assert_put(nodes[p], b"without:" + stopped.encode(), False)
            finally:
                nodes[stopped].kill(signal.SIGCONT)
            kvdtest.wait_until(lambda: len(gate(nodes[p])["counting"]) == 2, what="both members counted again")
        self.assert_put(nodes[p], b"both-back", True)

        # Shrink: exactly one member published, required and counted.
        self.set_sync(nodes, 1)
        [member] = published_set(nodes, p, 1)
        outsider = next(k for k in replicas if k != member)
        kvdtest.wait_until(lambda: gate(nodes[p])["sync_replicas"] == 1, what="the gate at 1")
        self.assert_put(nodes[p], b"shrunk", True)
        self.assertEqual(gate(nodes[p])["counting"], [member])
        nodes[outsider].kill(signal.SIGSTOP)
        try:
            self.assert_put(nodes[p], b"without-outsider", True)
        finally:
            nodes[outsider].kill(signal.SIGCONT)
        nodes[member].kill(signal.SIGSTOP)
        try:
            self.assert_put(nodes[p], b"without-member", False)
        finally:
            nodes[member].kill(signal.SIGCONT)
        print("\nsync set of %s: [%s] -> %s -> [%s]" % (p, first, replicas, member))

        # The shrunk set decides the failover: kill -9 under writers.
        nodes.wait_streaming(p)
        kvdtest.wait_until(lambda: gate(nodes[p])["counting"] == [member], what="the member counted again")
        ledger = Ledger(nodes[p]).start()
        try:
            kvdtest.wait_until(lambda: ledger.count() > 100, what="load")
            nodes[p].kill()
            killed_at = time.monotonic()
        finally:
            ledger.join()
        p2 = nodes.wait_primary(exclude=(p,), timeout=30)
        self.assertEqual(p2, member, "the published member must win")
        print("kill -9 of %s: %s primary %.2f s later" % (p, p2, time.monotonic() - killed_at))
        nodes[p].start()
        published_set(nodes, p2, 1)
        nodes.wait_streaming(p2)
        read_all(nodes[p2])  # its read lease exists
        data = nodes.wait_converged(p2)
        self.assertEqual(ledger.lost(data), [])
        for key in (b"grown", b"both-back", b"shrunk", b"without-outsider"):
            self.assertIn(key, data)


if __name__ == "__main__":
    kvdtest.main(total_timeout=300)
