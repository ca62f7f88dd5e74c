"""Fast takeover (docs/cluster.md §3.5, ctest cluster_takeover): 3 etcd +
3 kvd with sync_replicas = 1 and ttl 5 s on loopback. Repeatedly kill -9
the primary: the published sync member fences the old epoch, deletes the
leader key and wins without waiting for the lease to expire. Prints p50 and
max of the time from the kill to the first acknowledged write on the new
primary over the rounds (KVD_TAKEOVER_ROUNDS, default 10) and asserts the
issue's goal (p50 <= 3 s, max <= 5 s); lease expiry alone takes 4.2-5.5 s.
Every acknowledged write survives every round. A primary whose sync member
stops answering refuses reads within a second (the read lease). A takeover
that etcd refuses lifts the member's fence; one whose answer is lost keeps
it, and the primary it then fences resigns its key (--fault-cluster)."""

import os
import signal
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True
import kvdtest  # noqa: E402
from cluster_nodes import ClusterNodes, first_ack, FENCED, EtcdTestCase, published_sync_members  # noqa: E402

ROUNDS = int(os.environ.get("KVD_TAKEOVER_ROUNDS", "10"))


class ClusterTakeover(EtcdTestCase):
    def test_kill_primary_rounds_take_over_before_the_lease_expires(self):
        nodes = ClusterNodes(self, self.etcd, ["a", "b", "c"], sync_replicas=1)
        acked = {}
        times = []
        p = nodes.wait_primary()
        for rnd in range(ROUNDS):
            member = published_sync_members(nodes, p)[0]
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

    def test_primary_refuses_reads_without_its_members_read_lease(self):
        nodes = ClusterNodes(self, self.etcd, ["a", "b", "c"], sync_replicas=1)
        p = nodes.wait_primary()
        member = published_sync_members(nodes, p)[0]
        nodes.wait_streaming(p)
        with nodes[p].client() as c:
            c.put(b"k", b"v").check()
            self.assertEqual(c.get(b"k").payload, b"v")
            # The member stops: it sends no ACK, so the primary's read lease
            # (its newest echoed heartbeat + 800 ms) runs out.
            os.kill(nodes[member].pid, signal.SIGSTOP)
            try:
                stopped_at = time.monotonic()
                refused = []

                def read_refused():
                    r = c.get(b"k")
                    if r.status == FENCED:
                        refused.append(r.message)
                        return True
                    self.assertEqual(r.payload, b"v")
                    return False
                kvdtest.wait_until(read_refused, timeout=5, what="a read refused for want of the read lease")
                waited = time.monotonic() - stopped_at
                self.assertIn("read lease", refused[0])
                # The server refuses at echo + 0.8 s, before the member's promise
                # (1 s after it last heard the primary) ends; 0.2 s for this poll.
                self.assertLess(waited, 1.2)
                print("\nreads refused %.2f s after the sync member stopped: %s" % (waited, refused[0]))
            finally:
                os.kill(nodes[member].pid, signal.SIGCONT)
            kvdtest.wait_until(lambda: c.get(b"k").status == 0, what="reads served again")

    def stop_primary_through_a_takeover(self, fault, logged):
        """3 nodes with sync_replicas = 1 on --fault-cluster `fault` (test
        builds). The primary is stopped, well inside its 5 s lease, until its
        member logs `logged` about its takeover, then resumed. Returns the
        nodes, the primary, its member, its epoch and the primary's log
        offset from before the stop."""
        if fault.encode() not in subprocess.run([kvdtest.binary("KVD_BIN"), "--help"], capture_output=True).stdout:
            self.skipTest("kvd built without KVD_FAULT_INJECTION: no --fault-cluster " + fault)
        nodes = ClusterNodes(self, self.etcd, ["a", "b", "c"], sync_replicas=1, extra_args=["--fault-cluster", fault])
        p = nodes.wait_primary()
        member = published_sync_members(nodes, p)[0]
        nodes.wait_streaming(p)
        epoch = nodes[p].status()["epoch"]
        self.assertEqual(nodes.etcd_get("/leader"), (p, epoch))
        with nodes[p].client() as c:
            c.put(b"before", b"1").check()
        since_member, since_p = nodes[member].log_offset(), nodes[p].log_offset()
        nodes[p].kill(signal.SIGSTOP)
        try:
            text = nodes[member].wait_for_log(lambda t: logged in t, since=since_member, timeout=4,
                                              what="the takeover's outcome")
        finally:
            nodes[p].kill(signal.SIGCONT)
        self.assertIn("fenced its epoch %d" % epoch, text)
        self.assertEqual(nodes.etcd_get("/leader"), (p, epoch), "the takeover deleted nothing")
        return nodes, p, member, epoch, since_p

    def test_refused_takeover_lifts_its_fence_and_the_primary_keeps_its_member(self):
        """etcd refuses the takeover's delete by its compare (as when the sync
        set changed meanwhile) while the silent primary still holds its
        leader key. The member lifts its fence of that epoch: once the primary
        is heard again it streams from it and its ACKs count. A fence kept
        would refuse the primary for good, and the member's HELLO (newer
        epoch) would fence the primary itself."""
        nodes, p, member, epoch, _ = self.stop_primary_through_a_takeover(
            "takeover-compare-fails", "the takeover's delete did not apply")

        def acknowledged():
            try:
                with nodes[p].client(timeout=2) as c:
                    return c.put(b"after", b"2").status == 0
            except (OSError, ConnectionError):
                return False
        kvdtest.wait_until(acknowledged, timeout=15, what="a write acknowledged by %s with its member" % p)
        nodes.wait_streaming(p, timeout=15)
        self.assertEqual(nodes[p].status()["epoch"], epoch, "no failover happened")
        self.assertEqual(nodes.etcd_get("/leader"), (p, epoch))
        self.assertEqual(published_sync_members(nodes, p), [member])
        data = nodes.wait_converged(p, timeout=15)
        self.assertEqual((data.get(b"before"), data.get(b"after")), (b"1", b"2"))
        self.assertIn("lifted this node's fence of epoch %d" % epoch, nodes[member].log_text())

    def test_fenced_primary_that_keeps_its_key_resigns_it(self):
        """The same refusal, but its answer is lost: the member cannot tell
        whether its delete applied and keeps its fence. The resumed primary,
        still holding the leader key, is fenced by the member's newer epoch;
        it resigns the key, and the member is elected. Without that the key
        stays with a node that takes no writes, and nobody acknowledges
        anything."""
        nodes, p, member, epoch, since_p = self.stop_primary_through_a_takeover(
            "takeover-answer-lost", "the takeover's delete may not have applied")
        winner, took = first_ack(nodes, [member], b"after", b"2", timeout=30)
        leader, new_epoch = nodes.etcd_get("/leader")
        self.assertEqual(leader, member)
        self.assertGreater(new_epoch, epoch)
        self.assertIn("still holds the leader key of epoch %d while fenced: resigning it" % epoch,
                      nodes[p].log_text(since_p))
        print("\nfenced primary %s resigned; %s acknowledged %.2f s after %s resumed" % (p, member, took, p))
        nodes.wait_streaming(member)
        data = nodes.wait_converged(member)
        self.assertEqual((data.get(b"before"), data.get(b"after")), (b"1", b"2"))

if __name__ == "__main__":
    kvdtest.main(total_timeout=300)
