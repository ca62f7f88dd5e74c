"""Replica sets, first slice (docs/replication.md): a primary streams its WAL
to replicas over loopback TCP; replicas apply it through the engine's own
apply path, serve reads and refuse writes naming the primary.

Convergence is checked independently of kvd's own counters: full scans of
every node are compared key by key."""

import json
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, TIMEOUT  # noqa: E402
import kvd_proto  # noqa: E402

CONVERGE_TIMEOUT = 60
NOT_PRIMARY = 12  # kvd::Code::kNotPrimary


def full_scan(server):
    with server.client() as c:
        return dict(c.scan_all())


def repl_status(server):
    return server.status()["replication"]


class ReplicaSet(KvdTestCase):
    def primary(self, **storage):
        p = self.server(replication={"name": "p", "listen": "127.0.0.1:0"}, storage=storage)
        port = repl_status(p)["port"]
        self.assertGreater(port, 0)
        return p, port

    def replica(self, name, port, start=True):
        return self.server(start=start,
                           replication={"name": name, "role": "replica", "primary": "127.0.0.1:%d" % port})

    def wait_converged(self, primary, replicas):
        """Waits until every replica applied the primary's last LSN, then
        compares full scans (an independent check of the data itself)."""
        last = primary.status()["last_lsn"]
        for r in replicas:
            kvdtest.wait_until(lambda: r.status()["applied_lsn"] >= last, timeout=CONVERGE_TIMEOUT,
                               what="replica %s to apply LSN %d" % (r.dir, last))
        expected = full_scan(primary)
        for r in replicas:
            got = full_scan(r)
            self.assertEqual(len(got), len(expected))
            self.assertEqual(got, expected)
        return expected

    def test_two_replicas_converge_after_10k_writes(self):
        p, port = self.primary()
        r1, r2 = self.replica("r1", port), self.replica("r2", port)
        for r in (r1, r2):
            kvdtest.wait_until(lambda: repl_status(r)["receiver"]["state"] == "streaming", what="streaming")
        res = p.kvctl("bench", "--clients", "8", "--key-space", "10000", "--requests", "2000", "--prefill",
                      "--keep", "--no-progress", timeout=120)
        self.assertEqual(res.rc, 0, res.err)
        data = self.wait_converged(p, [r1, r2])
        self.assertEqual(len(data), 10000)
        self.assertIn(b"bench:000000009999", data)
        # The primary's STATUS lists both replicas, streaming, with LSNs that caught up.
        st = p.status()
        reps = {x["name"]: x for x in st["replication"]["replicas"]}
        self.assertEqual(sorted(reps), ["r1", "r2"])
        kvdtest.wait_until(lambda: all(x["durable_lsn"] == p.status()["last_lsn"]
                                       for x in p.status()["replication"]["replicas"]),
                           what="replicas' ACKs to reach the last LSN")
        for x in p.status()["replication"]["replicas"]:
            self.assertEqual(x["state"], "streaming")
            self.assertEqual(x["lag_bytes"], 0)
            self.assertEqual(x["sent_lsn"], st["last_lsn"])
        rs = r1.status()
        self.assertEqual(rs["role"], "replica")
        self.assertEqual(rs["replication"]["primary"], "127.0.0.1:%d" % port)
        self.assertIn("NotPrimary", rs["write_fence"])
        # kvctl status shows the replication section in both forms.
        out = p.kvctl("status")
        self.assertEqual(out.rc, 0, out.err)
        self.assertIn("  replicas[r1].state: streaming\n", out.out)
        self.assertIn("  replicas[r2].durable_lsn: %d\n" % st["last_lsn"], out.out)
        js = p.kvctl("status", "--json")
        self.assertEqual(js.rc, 0, js.err)
        self.assertEqual(sorted(x["name"] for x in json.loads(js.out)["replication"]["replicas"]), ["r1", "r2"])
        rout = r1.kvctl("status")
        self.assertIn("  role: replica\n", rout.out)
        self.assertIn("  receiver.state: streaming\n", rout.out)

    def test_write_to_a_replica_is_refused_naming_the_primary(self):
        p, port = self.primary()
        r = self.replica("r1", port)
        res = r.kvctl("put", "k", "v")
        self.assertEqual(res.rc, 3)
        self.assertIn("127.0.0.1:%d" % port, res.err)
        with r.client() as c:
            reply = c.put(b"k", b"v")
            self.assertEqual(reply.status, NOT_PRIMARY)
            self.assertIn(b"127.0.0.1:%d" % port, reply.payload)
        # Reads are served: a write on the primary shows up on the replica.
        self.assertEqual(p.kvctl("put", "k", "from-primary").rc, 0)
        kvdtest.wait_until(lambda: r.kvctl("get", "k").out == "from-primary\n", what="replicated key")
        self.assertEqual(r.kvctl("count").rc, 0)
        self.assertEqual(r.kvctl("scan").out, "k\tfrom-primary\n")

    def test_killed_replica_catches_up_from_retained_wal(self):
        # Small segments and snapshots under load: without the retention
        # floor the snapshot would delete the WAL the replica still needs.
        p, port = self.primary(segment_size="256KiB")
        r = self.replica("r1", port)
        kvdtest.wait_until(lambda: repl_status(r)["receiver"]["state"] == "streaming", what="streaming")
        stop = threading.Event()
        written = [0]
        errors = []

        def writer():
            try:
                with p.client() as c:
                    i = 0
                    while not stop.is_set():
                        c.put(b"load:%08d" % i, (b"v%d-" % i) * 1024).check()
                        i += 1
                        written[0] = i
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        t = threading.Thread(target=writer)
        t.start()
        try:
            kvdtest.wait_until(lambda: written[0] > 500, what="load")
            r.kill()
            at_kill = written[0]
            # More than the primary's in-memory cache of recent WAL (4 MiB):
            # the replica must come back through the segments on disk.
            kvdtest.wait_until(lambda: written[0] > at_kill + 1000, timeout=120, what="writes after the kill")
            self.assertEqual(p.kvctl("snapshot").rc, 0)
            # The snapshot covers segments the absent replica still needs: they
            # are kept (the drop runs on the committer thread: await its result).
            kvdtest.wait_until(lambda: p.status()["wal"]["retained_segments"] > 0, what="retained segments")
            self.assertGreater(p.status()["wal"]["retention_floor"], 0)
            mark = p.log_offset()
            r.start()
            p.wait_for_log(lambda line: "replica r1" in line and "catching up from the WAL on disk" in line,
                           since=mark)
            kvdtest.wait_until(lambda: written[0] > at_kill + 1500, timeout=120, what="writes after the restart")
        finally:
            stop.set()
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(self.wait_converged(p, [r])), written[0])

    def test_garbage_on_the_replication_port_is_refused_and_clients_are_unaffected(self):
        p, port = self.primary()
        r = self.replica("r1", port)
        mark = p.log_offset()
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(b"GET key HTTP/1.1\r\nHost: x\r\n\r\n" * 4)
            got = b""
            while True:  # an ERROR frame, then the primary closes
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        self.assertIn(b"bad frame", got)
        p.wait_for_log(lambda line: "disconnected" in line and "out of range" in line, since=mark)
        # A frame with a bad CRC.
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(b"\x0d\x00\x00\x00\x05" + b"\x01" + b"\x00" * 7 + b"\xde\xad\xbe\xef")
            got = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        self.assertIn(b"CRC mismatch", got)
        # Clients and the real replica are unaffected.
        self.assertEqual(p.kvctl("put", "after", "garbage").rc, 0)
        self.assertEqual(p.kvctl("get", "after").out, "garbage\n")
        self.wait_converged(p, [r])
        self.assertEqual(repl_status(r)["receiver"]["state"], "streaming")

    def test_a_primary_that_sends_garbage_is_refused_and_the_replica_keeps_serving(self):
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(4)
        port = lsock.getsockname()[1]
        r = self.replica("r1", port)
        self.assertEqual(r.kvctl("count").out, "0\n")
        lsock.settimeout(TIMEOUT)
        conn, _ = lsock.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            hello = conn.recv(65536)
            self.assertEqual(hello[4], 1)  # HELLO
            mark = r.log_offset()
            conn.sendall(b"\xff" * 64)
            r.wait_for_log(lambda line: "link to the primary" in line and "bad frame" in line, since=mark)
        # It reconnects (with backoff) and still serves reads; nothing was applied.
        conn2, _ = lsock.accept()
        conn2.close()
        lsock.close()
        self.assertEqual(r.kvctl("count").out, "0\n")
        self.assertEqual(r.status()["last_lsn"], 0)


if __name__ == "__main__":
    kvdtest.main()
