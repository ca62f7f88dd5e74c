"""Catch-up by snapshot transfer (docs/replication.md §4.6): a replica whose
WAL the primary no longer has receives a snapshot streamed by a forked
child, installs it only once it is complete, verified and durable, sets its
old WAL aside and streams the WAL after it.

Every check compares full scans of the nodes, and 'in transfer' is read from
STATUS (the replica's receiver state and bytes received), never guessed
with sleeps. A test-only knob (KVD_TEST_SNAPSHOT_STREAM_KIB_PER_S, test
builds) paces the primary's snapshot child so a transfer lasts long enough
to kill a node in the middle of it."""

import os
import socket
import struct
import subprocess
import sys
import threading

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase  # noqa: E402

CONVERGE_TIMEOUT = 120
PACE = {"KVD_TEST_SNAPSHOT_STREAM_KIB_PER_S": "512"}
VALUE = b"x" * 1000


def pace_supported():
    """The pacing knob exists in fault-injection (test) builds only."""
    p = subprocess.run([kvdtest.binary("KVD_BIN"), "--help"], capture_output=True, timeout=30)
    return b"--fault-env" in p.stdout


def full_scan(server):
    with server.client() as c:
        return dict(c.scan_all())


def receiver(server):
    return server.status()["replication"]["receiver"]


def children_of(pid):
    """Live (or zombie) child processes of pid, from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


# ---- CRC32C (masked as in docs/wal_format.md) for the fault proxy -------------

def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


SNAPSHOT_CHUNK = 7


class ChunkCorruptingProxy:
    """Forwards a replica's connection to the primary; in the first
    SNAPSHOT_CHUNK frame of the first connection it flips one byte of the
    body and re-computes the frame CRC, so only the end-to-end check of the
    transferred file (size + CRC in SNAPSHOT_END, then the snapshot's own
    checks) can notice."""

    def __init__(self, primary_port):
        self.primary_port = primary_port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.corrupted = threading.Event()
        self.connections = 0
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                down, _ = self.lsock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                up = socket.create_connection(("127.0.0.1", self.primary_port))
            except OSError:  # the primary is down: the replica retries
                down.close()
                continue
            first = self.connections == 1
            threading.Thread(target=self._pipe, args=(down, up, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, down, first), daemon=True).start()

    def _pipe(self, src, dst, corrupt):
        buf = b""
        try:
            while True:
                data = src.recv(1 << 20)
                if not data:
                    break
                if not corrupt:
                    dst.sendall(data)
                    continue
                buf += data
                while len(buf) >= 4:
                    (length,) = struct.unpack_from("<I", buf)
                    if len(buf) < 4 + length:
                        break
                    frame, buf = buf[:4 + length], buf[4 + length:]
                    if frame[4] == SNAPSHOT_CHUNK and not self.corrupted.is_set():
                        body = bytearray(frame[13:-4])
                        body[len(body) // 2] ^= 0x01
                        covered = frame[4:13] + bytes(body)
                        frame = frame[:13] + bytes(body) + struct.pack("<I", masked(crc32c(covered)))
                        self.corrupted.set()
                    dst.sendall(frame)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self):
        self.stop = True
        self.lsock.close()


class SnapshotTransfer(KvdTestCase):
    def primary(self, env=None):
        # Small segments and little retained WAL: the WAL of an absent
        # replica is given up quickly and recycled by the next snapshot.
        p = self.server(replication={"name": "p", "listen": "127.0.0.1:0", "max_retained_wal": "64KiB"},
                        storage={"segment_size": "64KiB"})
        if env:
            p.env = env
            p.restart()
        return p, p.status()["replication"]["port"]

    def replica(self, name, port):
        return self.server(replication={"name": name, "role": "replica", "primary": "127.0.0.1:%d" % port})

    def write(self, server, prefix, n):
        with server.client() as c:
            for i in range(n):
                c.put(b"%s:%06d" % (prefix, i), VALUE).check()

    def wait_applied(self, primary, replica):
        last = primary.status()["last_lsn"]
        kvdtest.wait_until(lambda: replica.status()["applied_lsn"] >= last, timeout=CONVERGE_TIMEOUT,
                           what="replica to apply LSN %d" % last)

    def converged(self, primary, replica):
        self.wait_applied(primary, replica)
        expected = full_scan(primary)
        self.assertEqual(full_scan(replica), expected)
        return expected

    def recycle_wal_behind(self, p, r):
        """With r stopped at its last LSN, writes and snapshots on p until p
        no longer holds the WAL r needs. Returns r's state before."""
        r.stop()
        mark = p.log_offset()
        self.write(p, b"later", 5000)  # ~5 MiB: past max_retained_wal and the feed's 4 MiB cache
        # The snapshot covers WAL kept only for r1; past max_retained_wal the
        # primary gives up on r1 and the segments go.
        self.assertEqual(p.kvctl("snapshot").rc, 0)
        p.wait_for_log(lambda line: "replica r1 is away" in line and "no longer keeping WAL" in line, since=mark)
        first = min(kvdtest.segment_first_lsn(s) for s in p.wal_segments())
        kvdtest.wait_until(lambda: min(kvdtest.segment_first_lsn(s) for s in p.wal_segments()) > self.r_last + 1,
                           what="the primary to delete the WAL the replica needs (first segment %d)" % first)

    def setup_pair(self, primary_env=None):
        if primary_env and not pace_supported():
            self.skipTest("kvd built without KVD_FAULT_INJECTION (no snapshot transfer pacing)")
        p, port = self.primary(primary_env)
        r = self.replica("r1", port)
        self.write(p, b"early", 300)
        before = self.converged(p, r)
        self.r_last = r.status()["last_lsn"]
        self.recycle_wal_behind(p, r)
        return p, port, r, before

    def wait_in_transfer(self, r):
        kvdtest.wait_until(lambda: receiver(r)["state"] == "snapshot_transfer"
                           and receiver(r)["snapshot_bytes_received"] > 0,
                           timeout=CONVERGE_TIMEOUT, what="the replica to be receiving a snapshot")

    def assert_set_aside(self, r):
        aside = [d for d in os.listdir(r.wal_path) if d.startswith("replaced-by-snapshot-")]
        self.assertEqual(len(aside), 1)
        segments = os.listdir(os.path.join(r.wal_path, aside[0]))
        self.assertTrue(segments and all(s.startswith("wal-") for s in segments), segments)

    def test_replica_whose_wal_is_gone_catches_up_by_snapshot_transfer(self):
        p, port, r, before = self.setup_pair()
        self.assertEqual(len(before), 300)
        pmark = p.log_offset()
        r.start()
        data = self.converged(p, r)
        self.assertEqual(len(data), 5300)
        p.wait_for_log(lambda line: "replica r1" in line and "sending a snapshot" in line, since=pmark)
        p.wait_for_log(lambda line: "snapshot at LSN" in line and "sent (" in line, since=pmark)
        rec = receiver(r)
        self.assertEqual(rec["snapshots_installed"], 1)
        self.assertEqual(rec["state"], "streaming")
        self.assertGreater(rec["snapshot_bytes_received"], 5000 * 1000)
        self.assertIn("installed the snapshot at LSN", r.log_text())
        self.assert_set_aside(r)
        self.assertFalse(os.path.exists(os.path.join(r.snapshot_path, "incoming.tmp")))
        # Streaming goes on after the snapshot; a restart recovers the same state.
        self.write(p, b"after", 50)
        self.converged(p, r)
        r.restart()
        self.assertEqual(full_scan(r), full_scan(p))
        self.assertEqual(receiver(r)["snapshots_installed"], 0)  # it streamed this time
        self.assertEqual(children_of(p.proc.pid), [])

    def test_replica_killed_during_transfer_keeps_its_state_and_retries(self):
        p, port, r, before = self.setup_pair(PACE)
        pmark = p.log_offset()
        r.start()
        self.wait_in_transfer(r)
        # Serving the previous state while the snapshot arrives.
        self.assertEqual(full_scan(r), before)
        self.assertTrue(os.path.exists(os.path.join(r.snapshot_path, "incoming.tmp")))
        r.kill()
        # The primary sees the link go, kills and reaps its child.
        p.wait_for_log(lambda line: "snapshot transfer cut short" in line, since=pmark)
        kvdtest.wait_until(lambda: children_of(p.proc.pid) == [], what="the transfer child to be reaped")
        snaps_before = r.snapshots()
        r.start()
        # Recovered to the previous state; the transfer starts over.
        self.assertEqual(r.status()["last_lsn"], self.r_last)
        self.wait_in_transfer(r)
        self.assertEqual(full_scan(r), before)
        self.assertEqual(r.snapshots(), snaps_before)
        sender = p.status()["replication"]["replicas"][0]
        self.assertEqual(sender["state"], "snapshot_transfer")
        self.assertGreater(sender["snapshot_bytes_sent"], 0)
        # Writes and a snapshot on the primary while the transfer runs: they
        # come after the transferred snapshot's LSN and follow it as WAL.
        self.write(p, b"during", 400)
        self.assertEqual(p.kvctl("snapshot").rc, 0)
        self.assertGreater(p.status()["last_lsn"], sender["snapshot_lsn"])
        data = self.converged(p, r)
        self.assertEqual(len(data), 5700)
        self.assertEqual(receiver(r)["snapshots_installed"], 1)
        self.assert_set_aside(r)

    def test_primary_killed_during_transfer_leaves_the_replica_state_untouched(self):
        p, port, r, before = self.setup_pair(PACE)
        r.start()
        self.wait_in_transfer(r)
        snaps_before = r.snapshots()
        rmark = r.log_offset()
        p.kill()
        r.wait_for_log(lambda line: "snapshot transfer cut short" in line, since=rmark)
        self.assertEqual(full_scan(r), before)
        self.assertEqual(r.status()["last_lsn"], self.r_last)
        self.assertEqual(r.snapshots(), snaps_before)
        self.assertFalse(os.path.exists(os.path.join(r.snapshot_path, "incoming.tmp")))
        self.assertFalse([d for d in os.listdir(r.wal_path) if d.startswith("replaced-by-snapshot-")])
        # The primary comes back (on its port, at full speed): the transfer completes.
        p.env = {}
        p.write_config(replication={"name": "p", "listen": "127.0.0.1:%d" % port, "max_retained_wal": "64KiB"},
                       storage={"segment_size": "64KiB"})
        p.start()
        self.converged(p, r)
        self.assertEqual(receiver(r)["snapshots_installed"], 1)

    def test_a_corrupted_transfer_is_refused_and_not_installed(self):
        p, port = self.primary()
        proxy = ChunkCorruptingProxy(port)
        self.addCleanup(proxy.close)
        r = self.replica("r1", proxy.port)
        self.write(p, b"early", 300)
        before = self.converged(p, r)
        self.r_last = r.status()["last_lsn"]
        self.recycle_wal_behind(p, r)
        rmark = r.log_offset()
        snaps_before = r.snapshots()
        # The proxy only corrupts its first connection, which has already
        # carried the streaming above: route the next one through a fresh proxy.
        proxy2 = ChunkCorruptingProxy(port)
        self.addCleanup(proxy2.close)
        r.write_config(replication={"name": "r1", "role": "replica", "primary": "127.0.0.1:%d" % proxy2.port})
        r.start()
        r.wait_for_log(lambda line: "transferred snapshot refused, not installed" in line and "CRC" in line,
                       since=rmark)
        self.assertTrue(proxy2.corrupted.is_set())
        self.assertNotIn("installed the snapshot at LSN", r.log_text(rmark))
        # Nothing installed, nothing set aside: the replica kept its state...
        self.assertTrue(set(snaps_before) <= set(r.snapshots()))
        # ...and the retry (an honest connection) installs the real snapshot.
        data = self.converged(p, r)
        self.assertEqual(len(data), 5300)
        self.assertEqual(receiver(r)["snapshots_installed"], 1)
        self.assertGreaterEqual(proxy2.connections, 2)


if __name__ == "__main__":
    kvdtest.main(total_timeout=900)
