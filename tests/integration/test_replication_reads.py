"""Read-your-writes and replication lag in ms (docs/replication.md sections
4.4 and 6) against real kvd processes on loopback.

A read may carry a minimum LSN (kFlagMinLsn; kvctl get/scan/count
--min-lsn): a node answers it once it has applied that LSN, or fails with
TimedOut after [replication] min_lsn_wait. To hold a replica behind on
purpose, its link to the primary runs through a fault proxy that can stall."""

import json
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase  # noqa: E402
import kvd_proto  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402


def repl_status(server):
    return server.status()["replication"]


class ReadYourWrites(KvdTestCase):
    def primary(self, min_lsn_wait="1s"):
        p = self.server(replication={"name": "p", "listen": "127.0.0.1:0", "min_lsn_wait": min_lsn_wait})
        return p, repl_status(p)["port"]

    def proxied_replica(self, port, min_lsn_wait="1s"):
        proxy = FaultProxy(port)
        self.addCleanup(proxy.close)
        r = self.server(replication={"name": "r1", "role": "replica", "primary": "127.0.0.1:%d" % proxy.port,
                                     "min_lsn_wait": min_lsn_wait})
        kvdtest.wait_until(lambda: repl_status(r)["receiver"]["state"] == "streaming", what="streaming")
        return r, proxy

    def test_primary_answers_min_lsn_reads_at_once_and_times_out_past_its_last_lsn(self):
        p, _ = self.primary(min_lsn_wait="300ms")
        with p.client() as c:
            lsn = c.put(b"k", b"v1").check().lsn
            self.assertGreater(lsn, 0)
            r = c.get(b"k", min_lsn=lsn)
            self.assertEqual((r.status, r.payload), (kvd_proto.OK, b"v1"))
            self.assertEqual(c.count(b"", min_lsn=lsn).check().value, 1)
            self.assertEqual(c.scan(prefix=b"k", min_lsn=lsn).check().items, [(b"k", b"v1")])
            # An LSN nobody wrote yet: the bounded wait, then TimedOut with both LSNs.
            t0 = time.monotonic()
            r = c.get(b"k", min_lsn=lsn + 1000)
            waited = time.monotonic() - t0
            self.assertEqual(r.status, kvd_proto.TIMED_OUT, r)
            self.assertIn("minimum LSN %d not applied within 300 ms" % (lsn + 1000), r.message)
            self.assertGreaterEqual(waited, 0.29)
            # The connection goes on.
            self.assertEqual(c.get(b"k").payload, b"v1")
            # The flag on a write is a protocol error: the connection is closed.
            bad = c.call(kvd_proto.OP_PUT, b"\0" * 8 + kvd_proto.put_payload(b"k", b"x"), kvd_proto.FLAG_MIN_LSN)
            self.assertEqual(bad.status, kvd_proto.INVALID_ARGUMENT)
        self.assertEqual(p.kvctl("get", "k").out, "v1\n")
        res = p.kvctl("get", "--min-lsn", str(lsn), "k")
        self.assertEqual((res.rc, res.out), (0, "v1\n"), res.err)
        res = p.kvctl("count", "--min-lsn", str(lsn + 1000))
        self.assertEqual(res.rc, 3)
        self.assertIn("minimum LSN %d not applied within 300 ms" % (lsn + 1000), res.err)

    def test_replica_read_waits_for_its_lsn_while_the_link_stalls_then_answers(self):
        p, port = self.primary()
        r, proxy = self.proxied_replica(port, min_lsn_wait="20s")
        with p.client() as pc:
            pc.put(b"k", b"old").check()
        kvdtest.wait_until(lambda: r.kvctl("get", "k").out == "old\n", what="the first value on the replica")
        proxy.stall()
        with p.client() as pc:
            lsn = pc.put(b"k", b"new").check().lsn
        # Without a minimum LSN the stalled replica still serves the old value.
        self.assertEqual(r.kvctl("get", "k").out, "old\n")
        got = {}

        def read():
            with r.client() as rc:
                got["reply"] = rc.get(b"k", min_lsn=lsn)

        t = threading.Thread(target=read)
        t.start()
        kvdtest.wait_until(lambda: r.status()["min_lsn_reads"]["parked"] == 1 or "reply" in got,
                           what="the GET to be parked")
        self.assertNotIn("reply", got)  # parked: the LSN is not here yet
        self.assertEqual(r.status()["min_lsn_reads"]["waited"], 1)
        # Other clients are served meanwhile: the wait does not hold the loop.
        self.assertEqual(r.kvctl("count").out, "1\n")
        proxy.resume()
        t.join(30)
        self.assertFalse(t.is_alive())
        self.assertEqual((got["reply"].status, got["reply"].payload), (kvd_proto.OK, b"new"))
        res = r.kvctl("scan", "--min-lsn", str(lsn))
        self.assertEqual((res.rc, res.out), (0, "k\tnew\n"), res.err)

    def test_replica_read_times_out_while_the_link_stalls(self):
        p, port = self.primary()
        r, proxy = self.proxied_replica(port, min_lsn_wait="400ms")
        proxy.stall()
        with p.client() as pc:
            lsn = pc.put(b"k", b"v").check().lsn
        res = r.kvctl("get", "--min-lsn", str(lsn), "k")
        self.assertEqual(res.rc, 3, res.out)
        self.assertIn("minimum LSN %d not applied within 400 ms" % lsn, res.err)
        proxy.resume()
        res = r.kvctl("get", "--min-lsn", str(lsn), "k")
        self.assertEqual((res.rc, res.out), (0, "v\n"), res.err)

    def test_shutdown_answers_a_parked_read_at_once(self):
        p, _ = self.primary(min_lsn_wait="30s")
        got = {}

        def read():
            with p.client() as c:
                got["reply"] = c.get(b"k", min_lsn=1000)

        t = threading.Thread(target=read)
        t.start()
        kvdtest.wait_until(lambda: p.status()["min_lsn_reads"]["parked"] == 1, what="the GET to be parked")
        t0 = time.monotonic()
        p.stop()  # SIGTERM: the drain must not wait the 30 s out
        t.join(20)
        self.assertFalse(t.is_alive())
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(got["reply"].status, kvd_proto.SHUTTING_DOWN, got["reply"])


class LagMs(KvdTestCase):
    def test_lag_ms_grows_while_the_link_stalls_and_returns_to_0(self):
        p = self.server(replication={"name": "p", "listen": "127.0.0.1:0"})
        proxy = FaultProxy(repl_status(p)["port"])
        self.addCleanup(proxy.close)
        r = self.server(replication={"name": "r1", "role": "replica", "primary": "127.0.0.1:%d" % proxy.port})
        kvdtest.wait_until(lambda: repl_status(r)["receiver"]["state"] == "streaming", what="streaming")
        with p.client() as pc:
            pc.put(b"a", b"1").check()
        last = p.status()["last_lsn"]

        def replica_entry():
            reps = repl_status(p)["replicas"]
            return reps[0] if reps else None

        kvdtest.wait_until(lambda: replica_entry() and replica_entry()["durable_lsn"] == last, what="ACK")
        self.assertEqual(replica_entry()["lag_ms"], 0)  # caught up
        self.assertEqual(repl_status(r)["receiver"]["lag_ms"], 0)
        proxy.stall()
        t0 = time.monotonic()
        with p.client() as pc:
            pc.put(b"b", b"2").check()
        # The primary's figure is the age of the newest echo: it grows with the stall.
        kvdtest.wait_until(lambda: replica_entry()["lag_ms"] >= 600, what="lag_ms to pass 600")
        self.assertLessEqual(replica_entry()["lag_ms"], (time.monotonic() - t0) * 1000 + 400)
        self.assertGreater(replica_entry()["lag_bytes"], 0)
        # The replica hears nothing: its last_heard_ms grows.
        kvdtest.wait_until(lambda: repl_status(r)["receiver"]["last_heard_ms"] >= 500, what="last_heard_ms")
        out = p.kvctl("status")
        self.assertRegex(out.out, r"  replicas\[r1\]\.lag_ms: [1-9][0-9]*\n")
        proxy.resume()
        kvdtest.wait_until(lambda: replica_entry()["lag_ms"] == 0, what="lag_ms back to 0")
        js = json.loads(p.kvctl("status", "--json").out)
        self.assertEqual(js["replication"]["replicas"][0]["lag_ms"], 0)
        rs = json.loads(r.kvctl("status", "--json").out)["replication"]["receiver"]
        self.assertEqual(rs["lag_ms"], 0)
        self.assertIn("  receiver.lag_ms: 0\n", r.kvctl("status").out)


if __name__ == "__main__":
    kvdtest.main()
