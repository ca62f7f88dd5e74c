"""The read barrier of synchronous replication (docs/replication.md §6): with
sync_replicas = N >= 1 a write is visible on the primary once durable there,
but acknowledged only once N replicas have it durable. A read on the primary
is evaluated at once and its reply held until the sync watermark covers every
write it could have seen, so no read returns a write that a failover could
still lose (primary reads are linearizable, issue 16). After sync_timeout the
read fails with the sync gate's error, as a write does.

The replica's fdatasync is held through the fault env
(`--fault-env stall-sync-file=PATH`), so the primary's write waits for it."""

import os
import select
import socket
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, Code, Op  # noqa: E402

# How long "no reply" is watched for (the write and the reads stay held for
# as long as the stall file exists; sync_timeout is far longer).
QUIET = 0.7


def fault_env_supported():
    p = subprocess.run([kvdtest.binary("KVD_BIN"), "--help"], capture_output=True, timeout=30)
    return b"stall-sync-file" in p.stdout


def repl(server):
    return server.status()["replication"]


class RespConn:
    def __init__(self, sock):
        self.sock = sock


def assert_no_reply(test, conn, what):
    r, _, _ = select.select([conn.sock], [], [], QUIET)
    test.assertEqual(r, [], "%s was answered while the replica's fdatasync is held" % what)


class SyncReadBarrier(KvdTestCase):
    def setUp(self):
        super().setUp()
        if not fault_env_supported():
            print("SKIP: %s has no --fault-env stall-sync-file=PATH (configure with -DKVD_FAULT_INJECTION=ON)"
                  % kvdtest.binary("KVD_BIN"))
            self.skipTest("kvd built without KVD_FAULT_INJECTION")
        self.stall = os.path.join(self.tmp, "stall-r1")

    def cluster(self, sync_replicas, sync_timeout):
        self.resp_socket = os.path.join(self.tmp, "p-resp.sock")
        p = self.server(replication={"name": "p", "listen": "127.0.0.1:0", "sync_replicas": sync_replicas,
                                     "sync_timeout": sync_timeout, "read_barrier": "on"},
                        resp={"socket": self.resp_socket})
        port = repl(p)["port"]
        r = self.server(start=False, replication={"name": "r1", "role": "replica",
                                                  "primary": "127.0.0.1:%d" % port})
        r.extra_args = ["--fault-env", "stall-sync-file=" + self.stall]
        r.start()
        kvdtest.wait_until(lambda: len(repl(p)["replicas"]) == 1, what="the replica connected")
        if sync_replicas:
            kvdtest.wait_until(lambda: repl(p)["sync"]["connected"] == 1, what="the sync replica connected")
        # One write through to the replica before any stall: on its first
        # frame the replica saves the primary's epoch (fsync of the seen_epoch
        # file on its loop), which a stall set before then would hold.
        with p.raw() as c:
            c.put(b"~warm-up", b"1")
        lsn = p.status()["durable_lsn"]
        kvdtest.wait_until(lambda: r.status()["durable_lsn"] >= lsn, what="the replica has the warm-up write")
        return p, r

    def held_write(self, p, key, value):
        """Stalls the replica's fdatasync and sends a PUT on its own connection;
        returns (conn, id) once the write is durable (and visible) on the primary."""
        open(self.stall, "w").close()
        before = p.status()["durable_lsn"]
        w = p.raw(timeout=30)
        frame, wid = w.queue(Op.PUT, kvdtest.put_payload(key, value))
        w.send(frame)
        kvdtest.wait_until(lambda: p.status()["applied_lsn"] > before, what="the write applied on the primary")
        return w, wid

    def test_primary_reads_wait_for_the_sync_watermark_and_keep_request_order(self):
        p, _ = self.cluster(1, "30s")
        with p.raw() as c:
            c.put(b"k0", b"old")
            c.put(b"k1", b"old")
            # Nothing pending: a read answers at once.
            t0 = time.monotonic()
            self.assertEqual(c.get(b"k0"), b"old")
            self.assertLess(time.monotonic() - t0, QUIET)

        w, wid = self.held_write(p, b"k1", b"new")
        assert_no_reply(self, w, "the write")
        # A GET of that key, sent after the write: no reply (and so never the
        # new value) before the write is acknowledged; a PING pipelined after
        # it waits behind it (request order).
        g = p.raw(timeout=30)
        f1, gid = g.queue(Op.GET, b"k1")
        f2, pid = g.queue(Op.PING)
        g.send(f1 + f2)
        # SCAN and COUNT are held the same way (they saw the write too).
        sc = p.raw(timeout=30)
        f3, sid = sc.queue(Op.SCAN, kvdtest.scan_payload(prefix=b"k"))
        f4, cid = sc.queue(Op.COUNT, b"k")
        sc.send(f3 + f4)
        # A GET answered ahead of a pending write on its connection (another
        # key) is held too: it read the State that holds the unconfirmed write.
        a = p.raw(timeout=30)
        f5, aput = a.queue(Op.PUT, kvdtest.put_payload(b"k2", b"v2"))
        f6, aget = a.queue(Op.GET, b"k0")
        a.send(f5 + f6)
        # RESP: GET (the dispatcher's) and EXISTS (RESP's own read), pipelined.
        rs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        rs.settimeout(30)
        rs.connect(self.resp_socket)
        rs.sendall(b"*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n*2\r\n$6\r\nEXISTS\r\n$2\r\nk1\r\n")
        for conn, what in ((g, "the GET"), (sc, "the SCAN"), (a, "the GET answered ahead"),
                           (RespConn(rs), "the RESP GET")):
            assert_no_reply(self, conn, what)
        self.assertEqual(p.status()["replication"]["sync"]["gated_writes"], 2)

        # Released: the write is acknowledged, then every read answers with it.
        os.unlink(self.stall)
        r, _, _ = select.select([g.sock], [], [], 30)
        self.assertEqual(r, [g.sock])
        # The write's acknowledgement is sent in the same loop turn as the reads
        # (or before): it is there by now.
        r, _, _ = select.select([w.sock], [], [], 1)
        self.assertEqual(r, [w.sock], "a read was answered before the write it saw was acknowledged")
        reply = w.recv_reply()
        self.assertEqual((reply.request_id, reply.status), (wid, Code.OK))
        reply = g.recv_reply()
        self.assertEqual((reply.request_id, reply.status, reply.payload), (gid, Code.OK, b"new"))
        reply = g.recv_reply()
        self.assertEqual((reply.request_id, reply.status), (pid, Code.OK))
        reply = sc.recv_reply()
        self.assertEqual((reply.request_id, reply.status), (sid, Code.OK))
        items, _ = kvdtest.decode_scan_reply(reply.payload)
        self.assertEqual(dict(items), {b"k0": b"old", b"k1": b"new"})
        # COUNT was evaluated only once the SCAN before it was answered: k2 is in.
        reply = sc.recv_reply()
        self.assertEqual((reply.request_id, reply.status, struct.unpack("<Q", reply.payload)[0]), (cid, Code.OK, 3))
        reply = a.recv_reply()
        self.assertEqual((reply.request_id, reply.status), (aput, Code.OK))
        reply = a.recv_reply()
        self.assertEqual((reply.request_id, reply.status, reply.payload), (aget, Code.OK, b"old"))
        want = b"$3\r\nnew\r\n:1\r\n"
        got = b""
        while len(got) < len(want):
            chunk = rs.recv(4096)
            self.assertTrue(chunk, "RESP connection closed")
            got += chunk
        self.assertEqual(got, want)
        rs.close()
        for conn in (w, g, sc, a):
            conn.close()
        # Nothing pending again: at once.
        with p.raw() as c:
            t0 = time.monotonic()
            self.assertEqual(c.get(b"k2"), b"v2")
            self.assertLess(time.monotonic() - t0, QUIET)

    def test_a_read_held_past_sync_timeout_fails_with_the_sync_gates_error(self):
        p, r = self.cluster(1, "1s")
        w, wid = self.held_write(p, b"k", b"unconfirmed")
        with p.raw(timeout=30) as g:
            t0 = time.monotonic()
            reply = g.call(Op.GET, b"k")
            elapsed = time.monotonic() - t0
        self.assertEqual(reply.status, Code.IO_ERROR, reply.payload)
        self.assertIn(b"did not confirm the writes this read saw within sync_timeout", reply.payload)
        self.assertGreaterEqual(elapsed, 0.9)
        reply = w.recv_reply()
        self.assertEqual((reply.request_id, reply.status), (wid, Code.IO_ERROR))
        w.close()
        # The write failed but is applied here: reads still wait for a replica
        # to confirm it. With the replica gone they fail naming why.
        r.kill()
        kvdtest.wait_until(lambda: repl(p)["sync"]["connected"] == 0, what="the replica gone")
        with p.raw(timeout=30) as g:
            reply = g.call(Op.GET, b"k")
        self.assertEqual(reply.status, Code.IO_ERROR, reply.payload)
        self.assertEqual(reply.payload, b"not enough synchronous replicas (have 0 of 1)")
        # Once a replica confirms it, reads answer again (with the write).
        os.unlink(self.stall)
        r.start()
        kvdtest.wait_until(lambda: repl(p)["sync"]["watermark"] >= p.status()["applied_lsn"],
                           what="the replica confirmed the write")
        with p.raw() as g:
            self.assertEqual(g.get(b"k"), b"unconfirmed")

    def test_sync_replicas_0_reads_answer_at_once(self):
        p, r = self.cluster(0, "30s")
        open(self.stall, "w").close()
        with p.raw() as c:
            c.put(b"k", b"v")  # acknowledged once durable here
            t0 = time.monotonic()
            self.assertEqual(c.get(b"k"), b"v")
            self.assertEqual(c.count(b"k"), 1)
            self.assertLess(time.monotonic() - t0, QUIET)
        self.assertLess(r.status()["durable_lsn"], p.status()["applied_lsn"])  # the replica did not confirm it
        os.unlink(self.stall)


if __name__ == "__main__":
    kvdtest.main()
