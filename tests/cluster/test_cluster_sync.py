"""The strict synchronous set (docs/cluster.md §3.2, ctest cluster_sync):
3 etcd + 3 kvd with sync_replicas = 1 on loopback.

The primary publishes <prefix>/sync with exactly one member; kill -9 of the
primary under concurrent writers (a ledger of acknowledged writes): the
published member becomes primary, the non-member never does, and no
acknowledged write is lost. The old primary rejoins, a full set is
published for the new epoch, the data converge."""

import json
import sys
import threading
import time

sys.dont_write_bytecode = True
import kvdtest  # noqa: E402
from cluster_nodes import ClusterNodes, Ledger, EtcdTestCase  # noqa: E402


class ClusterSync(EtcdTestCase):
    def sync_value(self, nodes):
        v, _ = nodes.etcd_get("/sync")
        return json.loads(v) if v is not None else None

    def wait_sync(self, nodes, primary):
        epoch = nodes[primary].status()["epoch"]
        got = []

        def published():
            v = self.sync_value(nodes)
            if v is None or v["epoch"] != epoch:
                return False
            got[:] = [v]
            return True
        kvdtest.wait_until(published, what="the sync set of epoch %d" % epoch)
        v = got[0]
        self.assertEqual(v["sync_replicas"], 1)
        self.assertEqual(len(v["members"]), 1, v)
        self.assertNotIn(primary, v["members"])
        return v["members"][0]

    def test_kill_primary_under_writers_loses_no_acknowledged_write(self):
        nodes = ClusterNodes(self, self.etcd, ["a", "b", "c"], sync_replicas=1)
        p = nodes.wait_primary()
        member = self.wait_sync(nodes, p)
        outsider = next(k for k in "abc" if k not in (p, member))
        nodes.wait_streaming(p)

        # Watch the outsider's role the whole time: it must never be primary.
        seen_outsider_primary = []
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                if nodes.role(outsider) == "primary":
                    seen_outsider_primary.append(time.monotonic())
                time.sleep(0.05)
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            ledger = Ledger(nodes[p]).start()
            try:
                kvdtest.wait_until(lambda: ledger.count() > 300, what="load")
                nodes[p].kill()  # kill -9 under concurrent writers
                killed_at = time.monotonic()
            finally:
                ledger.join()
            p2 = nodes.wait_primary(exclude=(p,), timeout=30)
            took = time.monotonic() - killed_at
            self.assertEqual(p2, member, "the published sync member must win")
            with nodes[p2].client() as c:
                data = dict(c.scan_all())
            lost = ledger.lost(data)
            print("\nkill -9 of %s under 4 writers: %d acknowledged, %d lost; %s primary %.2f s later"
                  % (p, len(ledger.acked), len(lost), p2, took))
            self.assertEqual(lost, [])
            self.assertGreater(len(ledger.acked), 300)

            # The old primary rejoins; the new primary publishes a full set
            # for its epoch and writes are acknowledged again.
            nodes[p].start()
            new_member = self.wait_sync(nodes, p2)
            self.assertIn(new_member, (p, outsider))
            with nodes[p2].client() as c:
                for i in range(50):
                    c.put(b"after:%03d" % i, b"x").check()
            nodes.wait_streaming(p2)
            nodes.wait_converged(p2)
        finally:
            stop.set()
            watcher.join()
        self.assertEqual(seen_outsider_primary, [], "a replica outside the sync set became primary")


if __name__ == "__main__":
    kvdtest.main(total_timeout=300)
