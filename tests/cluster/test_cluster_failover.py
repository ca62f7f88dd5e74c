"""The cluster coordination loop (docs/cluster.md §8, ctest cluster_failover):
3 etcd members + 3 kvd nodes with [cluster], all on loopback.

- exactly one primary forms by itself; the leader key names it, its epoch is
  the key's create revision; every node publishes its member key;
- a replica refuses a write with NotPrimary ending in
  " primary_address=<the primary's socket>";
- kill -9 of the primary: another node becomes primary (the time from the
  kill to the first acknowledged write is printed), the killed one restarted
  rejoins as a replica and every node holds the same data;
- SIGTERM of the primary resigns: the next one acknowledges within a second;
- a primary paused past its lease deadline does not acknowledge a write it
  received while paused."""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True
import kvdtest  # noqa: E402
import kvd_proto  # noqa: E402
from cluster_nodes import ClusterNodes, first_ack, NOT_PRIMARY, FENCED, EtcdTestCase  # noqa: E402

MEMBER_FIELDS = {"name", "address", "repl_address", "role", "epoch", "durable_lsn", "applied_lsn", "updated_ms"}


class ClusterFailover(EtcdTestCase):
    def test_forms_fails_over_rejoins_and_resigns(self):
        nodes = ClusterNodes(self, self.etcd, ["a", "b", "c"])
        p = nodes.wait_primary()
        nodes.wait_streaming(p)
        leader, epoch = nodes.etcd_get("/leader")
        self.assertEqual(leader, p)
        self.assertEqual(nodes[p].status()["epoch"], epoch)  # epoch = the leader key's create revision
        for name in "abc":
            kvdtest.wait_until(lambda: nodes.member(name) is not None
                               and nodes.member(name)["role"] == ("primary" if name == p else "replica"),
                               what="member key of " + name)
            m = nodes.member(name)
            self.assertEqual(set(m), MEMBER_FIELDS)
            self.assertEqual(m["address"], nodes[name].socket_path)
            self.assertEqual(m["repl_address"], nodes[name].config["replication"]["listen"])

        with nodes[p].client() as c:
            for i in range(300):
                c.put(b"k%04d" % i, b"v%d" % i).check()
        replica = next(k for k in "abc" if k != p)
        with nodes[replica].client() as c:
            r = c.put(b"x", b"y")
            self.assertEqual(r.status, NOT_PRIMARY)
            self.assertTrue(r.message.endswith(" primary_address=" + nodes[p].socket_path), r.message)
        nodes.wait_converged(p)

        # kill -9 of the primary: another node takes over by itself.
        nodes[p].kill()
        killed_at = time.monotonic()
        others = [k for k in "abc" if k != p]
        p2, _ = first_ack(nodes, others, b"after-kill", b"1")
        took = time.monotonic() - killed_at
        print("\nkill -9 of primary %s: %s acknowledged a write %.2f s later" % (p, p2, took))
        self.assertNotEqual(p2, p)
        self.assertLess(took, 10.0)  # lease expiry: ttl 5 s + etcd's expiry scan, plus slack for a busy machine
        self.assertGreater(nodes[p2].status()["epoch"], epoch)
        with nodes[p2].client() as c:
            for i in range(100):
                c.put(b"e2-%04d" % i, b"w%d" % i).check()

        # The old primary comes back as a replica of the new one.
        nodes[p].start()
        kvdtest.wait_until(lambda: nodes.role(p) == "replica", what=p + " back as a replica")
        nodes.wait_streaming(p2)
        data = nodes.wait_converged(p2)
        self.assertEqual(data[b"after-kill"], b"1")
        self.assertEqual(len([k for k in data if k.startswith(b"k")]), 300)

        # SIGTERM of the primary: it resigns, the next takes over at once.
        nodes[p2].kill(signal.SIGTERM, wait=False)
        term_at = time.monotonic()
        rest = [k for k in "abc" if k != p2]
        p3, _ = first_ack(nodes, rest, b"after-term", b"1")
        took = time.monotonic() - term_at
        print("SIGTERM of primary %s: %s acknowledged a write %.3f s later" % (p2, p3, took))
        self.assertEqual(nodes[p2].wait_exit(), 0)
        self.assertLess(took, 2.0)  # without the resignation it is the full ttl
        nodes.wait_streaming(p3)
        nodes.wait_converged(p3)

    def test_paused_primary_does_not_acknowledge_after_its_deadline(self):
        nodes = ClusterNodes(self, self.etcd, ["a", "b", "c"], ttl="2s")
        p = nodes.wait_primary()
        nodes.wait_streaming(p)
        c = nodes[p].client()
        c.put(b"before", b"1").check()
        os.kill(nodes[p].pid, signal.SIGSTOP)
        try:
            c.send(kvd_proto.OP_PUT, kvd_proto.put_payload(b"paused", b"1"))
            p2 = nodes.wait_primary(exclude=(p,), timeout=20)  # etcd gave the key to another node
        finally:
            os.kill(nodes[p].pid, signal.SIGCONT)
        r = c.recv()
        c.close()
        self.assertIn(r.status, (NOT_PRIMARY, FENCED), "a paused primary acknowledged after losing its lease")
        print("\nwrite sent to the paused primary %s answered: %s (%s); new primary %s" % (p, r.status_name,
                                                                                          r.message, p2))
        kvdtest.wait_until(lambda: nodes.role(p) == "replica", what=p + " rejoins as a replica")
        nodes.wait_streaming(p2)
        nodes.wait_converged(p2)


if __name__ == "__main__":
    kvdtest.main(total_timeout=300)
