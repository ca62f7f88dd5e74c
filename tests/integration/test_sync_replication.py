"""Synchronous replication (docs/replication.md §6): with sync_replicas = N
the primary acknowledges a write only once N replicas report it durable,
that is after their fdatasync. A replica's fdatasync is held through the
fault env (`--fault-env stall-sync-file=PATH`: while PATH exists every
fdatasync waits), so the test sees the record arrive on the replica
(written LSN) while its durable LSN stays behind and the primary's write
waits; it fails after sync_timeout, and goes through once the stall is
released. With fewer replicas than required writes fail naming how many
there are; reads go on. SIGHUP applies sync_replicas at run time.

Convergence is checked by comparing full scans of every node."""

import os
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, Code  # noqa: E402

CONVERGE_TIMEOUT = 60


def fault_env_supported():
    p = subprocess.run([kvdtest.binary("KVD_BIN"), "--help"], capture_output=True, timeout=30)
    return b"stall-sync-file" in p.stdout


def repl(server):
    return server.status()["replication"]


def full_scan(server):
    with server.client() as c:
        return dict(c.scan_all())


class AsyncPut:
    """One PUT on its own connection and thread: the reply (or its absence)
    is observed while the test inspects the nodes."""

    def __init__(self, server, key, value):
        self.reply = None
        self.error = None
        self.done = threading.Event()
        self.started = time.monotonic()
        self.elapsed = None
        self.client = server.client(timeout=60)
        self.thread = threading.Thread(target=self._run, args=(key, value))
        self.thread.start()

    def _run(self, key, value):
        try:
            self.reply = self.client.put(key, value)
        except Exception as e:  # noqa: BLE001 (reported by the test)
            self.error = e
        self.elapsed = time.monotonic() - self.started
        self.done.set()

    def wait(self, timeout=30):
        self.thread.join(timeout)
        assert self.done.is_set(), "no reply within %ds" % timeout
        self.client.close()
        if self.error is not None:
            raise self.error
        return self.reply


class SyncReplication(KvdTestCase):
    def setUp(self):
        super().setUp()
        if not fault_env_supported():
            print("SKIP: %s has no --fault-env stall-sync-file=PATH (configure with -DKVD_FAULT_INJECTION=ON)"
                  % kvdtest.binary("KVD_BIN"))
            self.skipTest("kvd built without KVD_FAULT_INJECTION")

    def primary(self, sync_replicas, sync_timeout):
        p = self.server(replication={"name": "p", "listen": "127.0.0.1:0", "sync_replicas": sync_replicas,
                                     "sync_timeout": sync_timeout})
        return p, repl(p)["port"]

    def replica(self, name, port, stall_file=None):
        args = ["--fault-env", "stall-sync-file=" + stall_file] if stall_file else []
        r = self.server(start=False, replication={"name": name, "role": "replica",
                                                  "primary": "127.0.0.1:%d" % port})
        r.extra_args = args
        r.start()
        return r

    def wait_connected(self, p, n):
        kvdtest.wait_until(lambda: repl(p)["sync"]["connected"] == n, what="%d replicas connected" % n)

    def wait_converged(self, p, replicas):
        last = p.status()["last_lsn"]
        for r in replicas:
            kvdtest.wait_until(lambda: r.status()["applied_lsn"] >= last, timeout=CONVERGE_TIMEOUT,
                               what="replica %s to apply LSN %d" % (r.dir, last))
        expected = full_scan(p)
        for r in replicas:
            self.assertEqual(full_scan(r), expected)
        return expected

    def test_sync1_waits_for_the_replicas_fdatasync_fails_after_sync_timeout_and_proceeds_once_released(self):
        p, port = self.primary(1, "2500ms")
        stalls = [os.path.join(self.tmp, "stall-r1"), os.path.join(self.tmp, "stall-r2")]
        r1, r2 = self.replica("r1", port, stalls[0]), self.replica("r2", port, stalls[1])
        self.wait_connected(p, 2)
        with p.client() as c:
            c.put(b"k0", b"before").check()
        sync = repl(p)["sync"]
        self.assertEqual(sync["sync_replicas"], 1)
        self.assertEqual(sync["state"], "ok")
        self.assertGreaterEqual(sync["watermark"], p.status()["last_lsn"])
        self.assertEqual(len(sync["counting"]), 1)
        self.assertIn(sync["counting"][0], ("r1", "r2"))

        # Both replicas' fdatasyncs held: the write reaches them, is durable on
        # the primary, and is not acknowledged.
        for s in stalls:
            open(s, "w").close()
        before = p.status()["last_lsn"]
        w1 = AsyncPut(p, b"k1", b"stalled")
        kvdtest.wait_until(lambda: p.status()["durable_lsn"] > before, what="the write durable on the primary")
        lsn = p.status()["last_lsn"]
        for r in (r1, r2):
            kvdtest.wait_until(lambda: r.status()["last_lsn"] >= lsn, what="the record written on the replica")
            self.assertLess(r.status()["durable_lsn"], lsn)  # its fdatasync is held
        st = p.status()
        self.assertEqual(st["replication"]["sync"]["gated_writes"], 1)
        self.assertLess(st["replication"]["sync"]["watermark"], lsn)
        self.assertEqual(len(st["replication"]["replicas"]), 2)
        for x in st["replication"]["replicas"]:
            self.assertLess(x["durable_lsn"], lsn)
        self.assertFalse(w1.done.is_set())
        # Reads go on meanwhile, on the primary and on the replicas.
        with p.client() as c:
            self.assertEqual(c.get(b"k0").payload, b"before")
        self.assertEqual(r1.kvctl("get", "k0").out, "before\n")
        reply = w1.wait()
        self.assertEqual(reply.status, Code.IO_ERROR, reply)
        self.assertIn(b"did not confirm the write within sync_timeout", reply.payload)
        self.assertGreaterEqual(w1.elapsed, 2.4)
        self.assertEqual(repl(p)["sync"]["timeouts"], 1)

        # A second write waits too; releasing the stall lets it through.
        before = p.status()["last_lsn"]
        w2 = AsyncPut(p, b"k2", b"released")
        kvdtest.wait_until(lambda: r1.status()["last_lsn"] > before, what="the second record on r1")
        self.assertFalse(w2.done.is_set())
        for s in stalls:
            os.unlink(s)
        reply = w2.wait()
        self.assertEqual(reply.status, Code.OK, reply)
        self.assertLess(w2.elapsed, 2.5)

        # Load with every write synchronous, then the same data on every node.
        res = p.kvctl("bench", "--clients", "8", "--key-space", "2000", "--requests", "2000", "--prefill",
                      "--keep", "--no-progress", timeout=120)
        self.assertEqual(res.rc, 0, res.err)
        data = self.wait_converged(p, [r1, r2])
        self.assertEqual(data[b"k2"], b"released")
        self.assertEqual(data[b"k1"], b"stalled")  # durable everywhere, though its acknowledgement failed
        self.assertIn(b"bench:000000001999", data)

    def test_sync2_with_a_replica_gone_writes_fail_reads_go_on_and_sighup_changes_n(self):
        p, port = self.primary(2, "1s")
        r1, r2 = self.replica("r1", port), self.replica("r2", port)
        self.wait_connected(p, 2)
        with p.client() as c:
            c.put(b"a", b"1").check()
        sync = repl(p)["sync"]
        self.assertEqual(sorted(sync["counting"]), ["r1", "r2"])
        self.assertGreaterEqual(sync["watermark"], p.status()["last_lsn"])

        r2.kill()
        self.wait_connected(p, 1)
        self.assertEqual(repl(p)["sync"]["state"], "too_few_replicas")
        w = AsyncPut(p, b"b", b"2")
        reply = w.wait()
        self.assertEqual(reply.status, Code.IO_ERROR, reply)
        self.assertEqual(reply.payload, b"not enough synchronous replicas (have 1 of 2)")
        self.assertGreaterEqual(w.elapsed, 0.95)
        # kvctl reports the same, and reads go on.
        res = p.kvctl("put", "c", "3")
        self.assertNotEqual(res.rc, 0)
        self.assertIn("not enough synchronous replicas (have 1 of 2)", res.err)
        self.assertEqual(p.kvctl("get", "a").out, "1\n")
        self.assertEqual(r1.kvctl("get", "a").out, "1\n")

        # SIGHUP with sync_replicas = 1: the remaining replica suffices.
        p.config["replication"]["sync_replicas"] = 1
        p.write_config(**p.config)
        mark = p.log_offset()
        p.reload()
        p.wait_for_log(lambda t: "replication.sync_replicas: 2 -> 1" in t, since=mark)
        kvdtest.wait_until(lambda: repl(p)["sync"]["sync_replicas"] == 1, what="sync_replicas 1 applied")
        self.assertEqual(repl(p)["sync_replicas"], 1)
        with p.client() as c:
            c.put(b"d", b"4").check()
        self.assertGreaterEqual(repl(p)["sync"]["watermark"], p.status()["last_lsn"])
        self.assertEqual(repl(p)["sync"]["counting"], ["r1"])
        out = p.kvctl("status").out
        self.assertIn("  sync.sync_replicas: 1\n", out)
        self.assertIn("  sync.counting: r1\n", out)
        self.assertIn("  sync.state: ok\n", out)

        # Back to 2 with r2 restarted: writes are acknowledged by both again.
        r2.start()
        self.wait_connected(p, 2)
        p.config["replication"]["sync_replicas"] = 2
        p.write_config(**p.config)
        mark = p.log_offset()
        p.reload()
        p.wait_for_log(lambda t: "replication.sync_replicas: 1 -> 2" in t, since=mark)
        with p.client() as c:
            c.put(b"e", b"5").check()
        self.assertEqual(sorted(repl(p)["sync"]["counting"]), ["r1", "r2"])
        data = self.wait_converged(p, [r1, r2])
        self.assertEqual(data[b"e"], b"5")

    def test_sync_replicas_refused_without_a_replication_listener(self):
        s = self.server(start=False, replication={"sync_replicas": 1})
        rc, log = s.start_expect_failure()
        self.assertEqual(rc, 2)
        self.assertIn("replication.sync_replicas: needs replication.listen", log)


if __name__ == "__main__":
    kvdtest.main()
