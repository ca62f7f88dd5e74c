"""fdatasync errors and a full disk (issue 4, point 4).

SyncFailure: kvd runs on the fault-injecting Env (`--fault-env
fail-sync-after=N`, test builds only) so that the fdatasync/fsync after N
successful ones fails once with EIO, N random (KVD_TEST_SEED reproduces it).
Several pipelining writers run until kvd refuses writes. Checked: every
acknowledged write was covered by a successful sync (durable_lsn >= lsn, and
nothing acknowledged past the durable LSN status reports), kvd refuses every
later write with WritesRefused (never retrying the sync: later syncs would
succeed), STATUS says why, reads keep working and never show a write whose
sync failed, the log has a critical line; a restart without the fault
recovers everything acknowledged and accepts writes again.

FullDisk, run every way this machine allows (skipped, exit 77, only if none):
  * tmpfs: kvd's data on a 16 MiB tmpfs (needs root and mount), 1 MiB
    segments, a filler file beside the data. Writes until NoSpace replies
    come: the error is clear, reads keep working, STATUS shows the no-space
    state; after the filler is deleted writes succeed again (kvd retries on
    its own); after a restart nothing acknowledged is lost.
  * fault env: `--fault-env space-limit=BYTES` (test builds) gives kvd's files
    a space limit, so ENOSPC comes through the real daemon where no tmpfs can
    be mounted. The same checks up to the full disk; then a restart without
    the limit (the disk grown) keeps everything acknowledged and takes writes.
"""

import os
import stat
import subprocess
import sys
import threading

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, wait_until  # noqa: E402
import kvd_proto  # noqa: E402
from kvd_proto import OK, NOT_FOUND, WRITES_REFUSED, NO_SPACE, STATUS_NAMES  # noqa: E402


def fault_env_supported(spec=b"fail-sync-after"):
    p = subprocess.run([kvdtest.binary("KVD_BIN"), "--help"], capture_output=True, timeout=30)
    return spec in p.stdout


class FaultWrapper:
    """Makes KvdServer start kvd with extra arguments: KVD_BIN points at a
    script that execs the real binary (same pid, same environment)."""

    def __init__(self, tmp, args):
        self.real = kvdtest.binary("KVD_BIN")
        self.path = os.path.join(tmp, "kvd-with-faults")
        with open(self.path, "w") as f:
            f.write('#!/bin/sh\nexec "%s" %s "$@"\n' % (self.real, " ".join(args)))
        os.chmod(self.path, os.stat(self.path).st_mode | stat.S_IXUSR)

    def __enter__(self):
        os.environ["KVD_BIN"] = self.path
        return self

    def __exit__(self, *exc):
        os.environ["KVD_BIN"] = self.real


class Writers:
    """n threads, each with its own connection, pipelining PUTs of unique keys
    (and an overwrite of one key of its own) until a write fails."""

    def __init__(self, kvd, n, value_size=64, depth=8, tag=b"w", stop_on=None):
        self.kvd, self.n, self.value_size, self.depth, self.tag = kvd, n, value_size, depth, tag
        self.lock = threading.Lock()
        self.acked = {}       # key -> (value, lsn, durable_lsn)
        self.failed = {}      # key -> (value, Reply): refused / not acknowledged
        self.unanswered = {}  # key -> value: no reply (connection closed)
        self.errors = []
        self.stop = threading.Event()
        self.stop_on = stop_on

    def value(self, key):
        return (key + b":") * (self.value_size // (len(key) + 1) + 1)

    def run_one(self, w):
        try:
            c = self.kvd.client()
        except OSError as e:
            self.errors.append("writer %d: connect: %s" % (w, e))
            return
        with c:
            i = 0
            while not self.stop.is_set():
                keys = [b"%s%d-%06d" % (self.tag, w, i + j) for j in range(self.depth)]
                i += self.depth
                ids = c.send_many([(kvd_proto.OP_PUT, kvd_proto.put_payload(k, self.value(k))) for k in keys])
                for k, rid in zip(keys, ids):
                    try:
                        r = c.recv()
                    except OSError:
                        with self.lock:
                            self.unanswered[k] = self.value(k)
                        continue
                    if r.request_id != rid:
                        self.errors.append("writer %d: reply id %d != %d" % (w, r.request_id, rid))
                    with self.lock:
                        if r.ok:
                            self.acked[k] = (self.value(k), r.lsn, r.durable_lsn)
                        else:
                            self.failed[k] = (self.value(k), r)
                            if self.stop_on is None or r.status in self.stop_on:
                                self.stop.set()

    def run(self, timeout=kvdtest.TIMEOUT):
        threads = [threading.Thread(target=self.run_one, args=(w,)) for w in range(self.n)]
        for t in threads:
            t.start()
        self.stop.wait(timeout)
        self.stop.set()
        for t in threads:
            t.join(kvdtest.TIMEOUT)
        return self


def check_all_present(test, kvd, acked, ctx=""):
    missing, wrong = [], []
    with kvd.client() as c:
        for k, (v, _lsn, _d) in acked.items():
            r = c.get(k)
            if r.status == NOT_FOUND:
                missing.append(k)
            elif not r.ok or r.payload != v:
                wrong.append((k, r))
    test.assertEqual(missing, [], "%d acknowledged writes lost, e.g. %r%s" % (len(missing), missing[:3], ctx))
    test.assertEqual(wrong, [], "acknowledged writes read back wrong%s" % ctx)


class SyncFailure(KvdTestCase):
    def setUp(self):
        super().setUp()
        if not fault_env_supported():
            print("SKIP: %s has no --fault-env fail-sync-after=N (configure with -DKVD_FAULT_INJECTION=ON)"
                  % kvdtest.binary("KVD_BIN"))
            self.skipTest("kvd built without KVD_FAULT_INJECTION")

    def run_round(self, n_syncs, round_no):
        ctx = " (fail-sync-after=%d, seed %d)" % (n_syncs, self.seed)
        with FaultWrapper(self.tmp, ["--fault-env", "fail-sync-after=%d" % n_syncs]):
            kvd = self.server(subdir="round%d" % round_no, storage={"segment_size": "256KiB"})
            w = Writers(kvd, n=4, depth=8).run()
            self.assertEqual(w.errors, [], ctx)
            self.assertTrue(w.failed, "no write failed: the injected fdatasync error never hit" + ctx)
            self.assertTrue(w.acked, "no write was acknowledged before the injected failure" + ctx)
            statuses = {STATUS_NAMES.get(r.status, r.status) for _v, r in w.failed.values()}
            self.assertEqual(statuses, {"WritesRefused"}, "failed writes must be WritesRefused" + ctx)
            st = kvd.status()
            durable = st["durable_lsn"]
            # No acknowledgement without the covering sync.
            for k, (v, lsn, d) in w.acked.items():
                self.assertGreaterEqual(d, lsn, "acknowledged before durable: %r%s" % (k, ctx))
                self.assertLessEqual(lsn, durable, "acknowledged past the last good fdatasync: %r%s" % (k, ctx))
            self.assertTrue(st["writes_refused"], ctx)
            self.assertIn("fdatasync", st["write_refusal"], "STATUS must say why writes are refused" + ctx)
            # Later writes of every kind are refused, with a message.
            with kvd.client() as c:
                for r in (c.put(b"after", b"x"), c.delete(b"after"), c.batch([("put", b"a2", b"y")]),
                          c.put(b"after", b"x", durable=True)):
                    self.assertEqual(r.status, WRITES_REFUSED, "%r%s" % (r, ctx))
                    self.assertIn("fdatasync", r.message, ctx)
                # Reads keep working and never show a write whose sync failed.
                for k, (v, _r) in list(w.failed.items())[:50]:
                    self.assertEqual(c.get(k).status, NOT_FOUND, "a refused write is visible: %r%s" % (k, ctx))
                self.assertEqual(c.count(b"").check().value, len(w.acked), ctx)
                self.assertEqual(c.ping().status, OK, ctx)
            check_all_present(self, kvd, w.acked, ctx)
            log = kvd.log_of_run()
            self.assertRegex(log, r"critical.*writes refused", "no critical log line" + ctx)
            kvd.kill()  # after a failed fsync nothing more can be made durable: a crash is the honest stop
        # Restart on the normal Env: everything acknowledged is there; writes work.
        kvd.start()
        check_all_present(self, kvd, w.acked, " after restart" + ctx)
        with kvd.client() as c:
            self.assertEqual(c.put(b"after-restart", b"ok", durable=True).status, OK, ctx)
            st = c.status().check().json
            self.assertFalse(st["writes_refused"], ctx)
            # Failed writes may or may not have reached the file, never both a
            # value and a gap: count = acked + those of the failed that survived.
            survived = sum(1 for k in w.failed if c.get(k).ok)
            self.assertEqual(c.count(b"w").check().value, len(w.acked) + survived, ctx)
        self.assertEqual(kvd.terminate_and_wait(), 0, kvd.log_tail())
        return len(w.acked), len(w.failed)

    def test_fdatasync_failure_at_random_points(self):
        total_acked = total_failed = 0
        points = sorted(self.rng.sample(range(4, 120), 3))
        for i, n in enumerate(points):
            a, f = self.run_round(n, i)
            total_acked += a
            total_failed += f
        print("\nfdatasync failures injected at sync #%s: %d writes acknowledged and checked, %d refused, 0 lost"
              % (points, total_acked, total_failed))


class FullDisk(KvdTestCase):
    def mount_tmpfs(self):
        """Mounts a 16 MiB tmpfs at self.mnt; returns why it could not, or None."""
        self.mnt = os.path.join(self.tmp, "disk")
        os.makedirs(self.mnt)
        if os.geteuid() != 0:
            return "not root: cannot mount a tmpfs"
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", self.mnt], capture_output=True)
        if p.returncode != 0:
            return "mount -t tmpfs failed: %s" % p.stderr.decode(errors="replace").strip()
        self.addCleanup(self.unmount)
        return None

    def unmount(self):
        for s in self._servers:
            s.close()
        subprocess.run(["umount", self.mnt], capture_output=True)

    def test_full_disk(self):
        ran = []
        reason = self.mount_tmpfs()
        if reason is None:
            with self.subTest(disk="tmpfs"):
                self.full_disk_on_tmpfs()
            ran.append("tmpfs")
        else:
            print("\nFullDisk on tmpfs not run (%s); the fault env's space limit stands in" % reason)
        if fault_env_supported(b"space-limit="):
            with self.subTest(disk="fault-env space-limit"):
                self.full_disk_on_fault_env()
            ran.append("fault env")
        else:
            print("\nFullDisk through the fault env not run: kvd has no --fault-env space-limit=BYTES")
        if not ran:
            self.skipTest("neither a tmpfs (%s) nor kvd's --fault-env space-limit (KVD_FAULT_INJECTION)" % reason)
        print("\nfull disk checked on: %s" % ", ".join(ran))

    def fill(self, kvd, ctx):
        """Writes until the disk is full; checks the errors, reads and STATUS then.
        Returns the acknowledged writes {key: (value, lsn, durable_lsn)}."""
        w = Writers(kvd, n=3, value_size=8192, depth=16, stop_on={NO_SPACE}).run(timeout=120)
        self.assertEqual(w.errors, [], ctx)
        self.assertTrue(w.failed, "the disk never filled" + ctx)
        self.assertGreaterEqual(len(w.acked), 100, "too few writes acknowledged before the disk filled" + ctx)
        for k, (v, r) in w.failed.items():
            self.assertEqual(r.status, NO_SPACE, "%r%s" % (r, ctx))
            self.assertRegex(r.message.lower(), r"space|full", "unclear error: %r%s" % (r.message, ctx))
        # Full: writes fail clearly, reads work, STATUS says so.
        with kvd.client() as c:
            # A group that needed a new segment failed; single writes may still
            # fit in the active one. Write until that is full too.
            for i in range(2000):
                k = b"while-full-%04d" % i
                r = c.put(k, k * 500)
                if not r.ok:
                    break
                w.acked[k] = (k * 500, r.lsn, r.durable_lsn)
            self.assertEqual(r.status, NO_SPACE, "%r%s" % (r, ctx))
            r = c.put(b"while-full", b"x" * 8192)  # (smaller writes may still fit)
            self.assertEqual(r.status, NO_SPACE, "the disk is still full: %r%s" % (r, ctx))
            st = c.status().check().json
            self.assertTrue(st["no_space"], "STATUS does not show the no-space state: %r%s" % (st.get("no_space"), ctx))
            self.assertFalse(st["writes_refused"], "a full disk must not refuse writes for good" + ctx)
            self.assertEqual(c.count(b"").check().value, len(w.acked), ctx)
        check_all_present(self, kvd, w.acked, " while full" + ctx)
        self.assertRegex(kvd.log_of_run(), r"(?i)(no space|disk space|disk full)", "no log line about it" + ctx)
        return w

    def full_disk_on_tmpfs(self):
        data = os.path.join(self.mnt, "data")
        filler = os.path.join(self.mnt, "filler")
        with open(filler, "wb") as f:
            f.write(os.urandom(4 << 20))
            os.fsync(f.fileno())
        kvd = self.server(subdir="tmpfs", storage={"segment_size": "1MiB", "wal_path": os.path.join(data, "wal"),
                                                   "snapshot_path": os.path.join(data, "snapshots")})
        ctx = " (tmpfs, seed %d)" % self.seed
        w = self.fill(kvd, ctx)
        acked_full = len(w.acked)

        # Free space: writes succeed again (kvd retries on its own timer).
        os.remove(filler)
        with kvd.client() as c:
            wait_until(lambda: c.put(b"after-free", b"ok").ok, what="a write to succeed after freeing space")
            self.assertEqual(c.status().check().json["no_space"], "", ctx)
        acked = dict(w.acked)
        acked[b"after-free"] = (b"ok", 0, 0)
        with kvd.client() as c:
            for i in range(64):  # 512 KiB: fits in the space freed
                k = b"x-%04d" % i
                r = c.put(k, k * 1000)
                self.assertEqual(r.status, OK, "write after freeing space: %r%s" % (r, ctx))
                acked[k] = (k * 1000, r.lsn, r.durable_lsn)

        self.assertEqual(kvd.terminate_and_wait(), 0, kvd.log_tail())
        kvd.start()
        check_all_present(self, kvd, acked, " after restart" + ctx)
        print("\nfull disk (tmpfs): %d writes acknowledged before NoSpace, %d refused with NoSpace, 65 after "
              "freeing space; all %d present after restart" % (acked_full, len(w.failed), len(acked)))

    def full_disk_on_fault_env(self):
        limit = 6 << 20
        ctx = " (fault env space-limit=%d, seed %d)" % (limit, self.seed)
        with FaultWrapper(self.tmp, ["--fault-env", "space-limit=%d" % limit]):
            kvd = self.server(subdir="faultenv", storage={"segment_size": "1MiB"})
            w = self.fill(kvd, ctx)
            kvd.kill()  # the files hold what was written: only the limit goes away
        # The disk "grows": restart without the limit.
        kvd.start()
        check_all_present(self, kvd, w.acked, " after restart" + ctx)
        with kvd.client() as c:
            for i in range(64):
                k = b"x-%04d" % i
                r = c.put(k, k * 1000)
                self.assertEqual(r.status, OK, "write after the restart: %r%s" % (r, ctx))
            self.assertEqual(c.count(b"").check().value, len(w.acked) + 64, ctx)
        self.assertEqual(kvd.terminate_and_wait(), 0, kvd.log_tail())
        print("\nfull disk (fault env): %d writes acknowledged before NoSpace, %d refused with NoSpace; all present "
              "after a restart without the limit" % (len(w.acked), len(w.failed)))


if __name__ == "__main__":
    kvdtest.main(total_timeout=600)
