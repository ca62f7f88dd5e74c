"""kvctl backup and kvd --restore against the real kvd: a backup taken under
concurrent load restores elsewhere to exactly the acknowledged writes up to
its LSN (checked against the test's own ledger, not kvd's digest); a full
disk at the client and a kvd killed mid-backup leave no FILE; restore
refuses a data directory that is not empty."""

import hashlib
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvd_proto  # noqa: E402
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, TIMEOUT, binary  # noqa: E402

BACKUP_OK = re.compile(r"^OK lsn=(\d+) keys=(\d+) bytes=(\d+) path=(.+)\n$")


def digest(pairs):
    """An independent digest: SHA-256 over the sorted (key, value) pairs."""
    h = hashlib.sha256()
    for k, v in sorted(pairs):
        h.update(struct.pack("<I", len(k)) + k + struct.pack("<I", len(v)) + v)
    return h.hexdigest()


def restore(config_path, backup):
    return subprocess.run([binary("KVD_BIN"), "--restore", backup, "--config", config_path],
                          capture_output=True, text=True, timeout=TIMEOUT)


class Writer(threading.Thread):
    """Writes until stopped on its own connection; keeps a ledger of every
    acknowledged write: (lsn, op, key, value-or-end)."""

    def __init__(self, server, wid):
        super().__init__(daemon=True)
        self.server, self.wid = server, wid
        self.ledger, self.stop, self.error = [], threading.Event(), None

    def run(self):
        try:
            with self.server.client() as c:
                i = 0
                while not self.stop.is_set():
                    key = b"w%d:%05d" % (self.wid, i % 700)
                    if i % 50 == 49:  # a range delete now and then
                        start, end = b"w%d:%05d" % (self.wid, i % 700), b"w%d:%05d" % (self.wid, i % 700 + 20)
                        r = c.call(kvd_proto.OP_DEL_RANGE, kvd_proto.del_range_payload(start=start, end=end)).check()
                        self.ledger.append((r.lsn, "range", start, end))
                    elif i % 7 == 6:
                        r = c.delete(key)
                        assert r.status in (kvd_proto.OK, kvd_proto.NOT_FOUND), r
                        self.ledger.append((r.lsn, "del", key, None))
                    else:
                        value = b"%d-%d" % (self.wid, i)
                        r = c.put(key, value).check()
                        self.ledger.append((r.lsn, "put", key, value))
                    i += 1
        except Exception as e:  # reported by the test
            self.error = e


def model(ledgers, upto):
    """The map after every acknowledged write with LSN <= upto, in LSN order."""
    m = {}
    for lsn, op, key, arg in sorted(w for ledger in ledgers for w in ledger):
        if lsn > upto:
            break
        if op == "put":
            m[key] = arg
        elif op == "del":
            m.pop(key, None)
        else:
            for k in [k for k in m if key <= k < arg]:
                del m[k]
    return m


class Backup(KvdTestCase):
    def test_round_trip_under_load(self):
        src = self.server()
        with src.client() as c:
            for i in range(500):
                c.put(b"base:%04d" % i, os.urandom(40)).check()
        writers = [Writer(src, n) for n in range(2)]
        for w in writers:
            w.start()
        # The backup starts once the writers have written something.
        kvdtest.wait_until(lambda: all(len(w.ledger) > 200 for w in writers), what="writers running")
        target = os.path.join(self.tmp, "backup.kvs")
        r = src.kvctl("backup", target)
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(TIMEOUT)
            self.assertIsNone(w.error)
        self.assertEqual(r.rc, 0, r)
        m = BACKUP_OK.match(r.out)
        self.assertIsNotNone(m, r.out)
        lsn, keys, size = int(m.group(1)), int(m.group(2)), int(m.group(3))
        self.assertEqual(m.group(4), target)
        self.assertEqual(os.path.getsize(target), size)
        self.assertFalse([n for n in os.listdir(self.tmp) if ".tmp-" in n])
        ledgers = [w.ledger for w in writers]
        # The load really ran across the backup: acknowledged writes on both sides of its LSN.
        self.assertTrue(any(lsn_ < lsn for led in ledgers for (lsn_, *_) in led))
        self.assertTrue(any(lsn_ > lsn for led in ledgers for (lsn_, *_) in led))

        with src.client() as c:
            base = [(k, v) for k, v in c.scan_all(prefix=b"base:")]
        expected = dict(base)
        expected.update(model(ledgers, lsn))
        self.assertEqual(keys, len(expected))

        dst = self.server(start=False)
        rr = restore(dst.config_path, target)
        self.assertEqual(rr.returncode, 0, rr.stderr)
        self.assertIn("lsn=%d keys=%d" % (lsn, keys), rr.stdout)
        dst.start()
        with dst.client() as c:
            restored = c.scan_all()
        self.assertEqual(digest(restored), digest(expected.items()))
        self.assertEqual(dst.status()["last_lsn"], lsn)
        # It is a normal data directory: it takes writes after the backup's LSN, and survives kill -9.
        with dst.client() as c:
            self.assertEqual(c.put(b"after", b"restore").check().lsn, lsn + 1)
        dst.kill(signal.SIGKILL)
        dst.start()
        with dst.client() as c:
            self.assertEqual(len(c.scan_all()), keys + 1)

        # A second restore into that (now non-empty) directory is refused, and changes nothing.
        dst.stop()
        rr = restore(dst.config_path, target)
        self.assertEqual(rr.returncode, 1)
        self.assertIn("is not empty", rr.stderr)
        # So is a file that is not a backup.
        bad = os.path.join(self.tmp, "bad.kvs")
        with open(target, "rb") as f:
            data = bytearray(f.read())
        data[len(data) // 2] ^= 0x01
        with open(bad, "wb") as f:
            f.write(data)
        other = self.server(start=False)
        rr = restore(other.config_path, bad)
        self.assertEqual(rr.returncode, 1)
        self.assertIn("is not a valid backup", rr.stderr)
        self.assertFalse(os.path.exists(other.snapshot_path) and os.listdir(other.snapshot_path))

    def fill(self, server, n=1500, size=1000):
        """More than one 1 MiB chunk of backup."""
        with server.client() as c:
            for i in range(n):
                c.put(b"big:%05d" % i, os.urandom(size // 2).hex().encode()).check()

    def test_kvd_killed_mid_backup_leaves_no_file(self):
        s = self.server()
        self.fill(s)
        target = os.path.join(self.tmp, "killed.kvs")
        err_path = os.path.join(self.tmp, "kvctl.err")
        kvctl = binary("KVCTL_BIN")
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child becomes kvctl once its temp file name is a FIFO we hold
            try:
                os.close(go_w)
                os.read(go_r, 1)
                fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(fd, 2)
                os.execv(kvctl, [kvctl, "--socket", s.socket_path, "backup", target])
            finally:
                os._exit(127)
        os.close(go_r)
        fifo = "%s.tmp-%d" % (target, pid)
        os.mkfifo(fifo)
        os.write(go_w, b"x")
        os.close(go_w)
        # Opens once kvctl has its BACKUP_BEGIN reply and opens the temp file;
        # kvctl then blocks writing the first 1 MiB chunk into the pipe.
        fd = os.open(fifo, os.O_RDONLY)
        try:
            head = os.read(fd, 4096)
            self.assertEqual(head[:8], b"KVDSNAP\0")
            s.kill(signal.SIGKILL)  # mid-backup: its next BACKUP_READ finds no server
            while os.read(fd, 65536):
                pass
        finally:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        with open(err_path) as f:
            err = f.read()
        self.assertEqual(os.waitstatus_to_exitcode(status), 3, err)
        self.assertIn("not written", err)
        self.assertFalse(os.path.exists(target))
        self.assertFalse(os.path.exists(fifo))

    def test_no_space_at_the_client_leaves_no_file(self):
        unshare = shutil.which("unshare")
        if unshare is None:
            self.skipTest("unshare(1) is not installed")
        probe = subprocess.run([unshare, "-rm", "true"], capture_output=True)
        if probe.returncode != 0:
            self.skipTest("no user and mount namespaces here: %s" % probe.stderr.decode().strip())
        s = self.server()
        self.fill(s)
        mnt = tempfile.mkdtemp(dir=self.tmp)
        # A 256 KiB file system, private to this command, for a 1.5 MB backup.
        script = ('mount -t tmpfs -o size=256k kvdtest "$1" || exit 99; "$2" --socket "$3" backup "$1/b.kvs"; '
                  'rc=$?; echo "left: $(ls -A "$1")"; exit $rc')
        r = subprocess.run([unshare, "-rm", "sh", "-c", script, "sh", mnt, binary("KVCTL_BIN"), s.socket_path],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 99, r.stderr)
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("No space left on device", r.stderr)
        self.assertIn("not written", r.stderr)
        self.assertIn("left: \n", r.stdout)  # neither FILE nor its temp file
        # kvd is unharmed and lets the backup go.
        self.assertEqual(s.kvctl("ping").rc, 0)


if __name__ == "__main__":
    kvdtest.main()
