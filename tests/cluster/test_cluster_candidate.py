"""Candidate choice by durable LSN (docs/cluster.md §3.2, ctest
cluster_candidate): 3 etcd + 3 kvd with sync_replicas = 2 on loopback, so
both replicas are in the published sync set and both may be promoted.

Each round: of the two members, the one that wins ties (the smaller name)
is killed -9 under writers; the primary goes on appending (the writes wait
in the sync gate, never acknowledged) and the other member makes them
durable, so its durable LSN is now higher. Then the primary is killed -9
and the lagging member restarted at once: both are live candidates, and
the one with the higher durable LSN must become primary. Every
acknowledged write (a ledger) is read back from the new primary.
KVD_CANDIDATE_ROUNDS rounds (default 3).

A member that is stopped (SIGSTOP) when the primary is killed is waited
for only until its member key is gone: the other member becomes primary."""

import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
import kvdtest  # noqa: E402
from cluster_nodes import ClusterNodes, Ledger, EtcdTestCase, published_set, read_all  # noqa: E402

ROUNDS = int(os.environ.get("KVD_CANDIDATE_ROUNDS", "3"))


class ClusterCandidate(EtcdTestCase):
    def test_highest_durable_lsn_among_members_wins(self):
        nodes = ClusterNodes(self, self.etcd, ["a", "b", "c"], sync_replicas=2)
        p = nodes.wait_primary()
        acked = {}
        for rnd in range(ROUNDS):
            members = published_set(nodes, p, 2)
            self.assertNotIn(p, members)
            behind, ahead = members  # `behind` wins a tie on the name
            nodes.wait_streaming(p)
            ledger = Ledger(nodes[p], tag=b"r%d-" % rnd).start()
            try:
                kvdtest.wait_until(lambda: ledger.count() > 100, what="load")
                nodes[behind].kill()
                # `behind` is dead: nothing appended from now on is on it.
                killed_lsn = nodes[p].status()["last_lsn"]

                def unacknowledged():
                    try:
                        with nodes[p].client(timeout=20) as c:
                            c.put(b"unacked:%02d" % rnd, b"x")
                    except (OSError, ConnectionError):
                        pass
                extra = threading.Thread(target=unacknowledged)
                extra.start()
                kvdtest.wait_until(lambda: nodes[ahead].status()["durable_lsn"] > killed_lsn,
                                   what="%s durable past LSN %d" % (ahead, killed_lsn))
                ahead_lsn = nodes[ahead].status()["durable_lsn"]
                nodes[p].kill()
                killed_at = time.monotonic()
            finally:
                ledger.join()
            extra.join()
            nodes[behind].start()
            behind_lsn = nodes[behind].status()["durable_lsn"]
            self.assertLessEqual(behind_lsn, killed_lsn)
            p2 = nodes.wait_primary(exclude=(p,), timeout=30)
            took = time.monotonic() - killed_at
            print("\nround %d: %s killed at LSN <= %d, %s durable at %d; kill -9 of %s -> %s primary %.2f s later"
                  % (rnd, behind, killed_lsn, ahead, ahead_lsn, p, p2, took))
            self.assertEqual(p2, ahead, "round %d: the member with the higher durable LSN (%s: %d, %s: %d) must win"
                             % (rnd, ahead, ahead_lsn, behind, behind_lsn))
            acked.update(ledger.acked)
            # Reads on the new primary need both sync members (the read
            # barrier): the old primary rejoins first.
            nodes[p].start()
            p = p2
            published_set(nodes, p, 2)
            data = read_all(nodes[p])
            self.assertEqual([k for k, v in acked.items() if data.get(k) != v], [])
        published_set(nodes, p, 2)
        data = nodes.wait_converged(p)
        self.assertEqual([k for k, v in acked.items() if data.get(k) != v], [])
        self.assertGreater(len(acked), 100 * ROUNDS)

    def test_a_silent_member_is_not_waited_for_beyond_its_key(self):
        """The wait for the other members' fresh LSNs is bounded: a member
        that is stopped (its key stays until its lease ends, never updated)
        holds the other back at most until its key is gone."""
        nodes = ClusterNodes(self, self.etcd, ["a", "b", "c"], sync_replicas=2)
        p = nodes.wait_primary()
        silent, other = published_set(nodes, p, 2)
        nodes.wait_streaming(p)
        acked = {}
        with nodes[p].client() as c:
            for i in range(20):
                c.put(b"k%02d" % i, b"v").check()
                acked[b"k%02d" % i] = b"v"
        nodes[silent].kill(signal.SIGSTOP)
        try:
            nodes[p].kill()
            killed_at = time.monotonic()
            p2 = nodes.wait_primary(exclude=(p, silent), timeout=20)
            took = time.monotonic() - killed_at
            self.assertEqual(p2, other)
            self.assertIsNone(nodes.member(silent), "%s's member key outlived its lease" % silent)
        finally:
            nodes[silent].kill(signal.SIGCONT)
        print("\n%s stopped, kill -9 of %s: %s primary %.2f s later (after %s's member key expired)"
              % (silent, p, p2, took, silent))
        nodes[p].start()
        published_set(nodes, p2, 2)
        data = read_all(nodes[p2])
        self.assertEqual([k for k, v in acked.items() if data.get(k) != v], [])


if __name__ == "__main__":
    kvdtest.main(total_timeout=300)
