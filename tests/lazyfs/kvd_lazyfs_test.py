#!/usr/bin/env python3
"""kvd on kvd_lazyfs with its real Env, case by case (the crash loop is
crash_loop_lazyfs.py): what kvd acknowledged survives a power cut of the file
system, which keeps nothing that was not fsynced (docs/testing.md, "The
power-cut file system").

Needs root and /dev/fuse; elsewhere it exits 77 (skipped).
"""
import os
import shutil
import signal
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "util"))
sys.path.insert(0, HERE)
import kvdtest  # noqa: E402
from kvdtest import KvdServer  # noqa: E402
from lazyfs_mount import LazyFsMount, Unavailable, unavailable  # noqa: E402


class KvdOnLazyFsTest(unittest.TestCase):
    def setUp(self):
        why = unavailable()
        if why:
            self.skipTest(why)
        self.tmp = tempfile.mkdtemp(prefix="kvd-lazyfs-test-")
        self.fs = LazyFsMount(os.path.join(self.tmp, "backing"), os.path.join(self.tmp, "mnt"),
                              os.path.join(self.tmp, "lazyfs.log"))
        try:
            self.fs.mount()
        except Unavailable as e:
            self.skipTest(str(e))
        self.server = None

    def tearDown(self):
        if self.server is not None:
            if self._outcome.result.failures or self._outcome.result.errors:
                sys.stderr.write("--- kvd log ---\n%s\n" % self.server.log_tail(60))
            self.server.close()
        self.fs.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_first_start_on_a_fresh_data_directory_survives_a_power_cut(self):
        """kvd creates its data directories itself; a new directory is
        durable only once its parent is fsynced. Without that the cut takes
        the whole WAL, acknowledged writes and all."""
        data = os.path.join(self.fs.mountpoint, "data")  # does not exist yet: kvd makes data/, wal/, snapshots/
        self.server = KvdServer(os.path.join(self.tmp, "kvd"), start=False,
                                storage={"wal_path": os.path.join(data, "wal"),
                                         "snapshot_path": os.path.join(data, "snapshots")},
                                durability={"mode": "sync"})
        self.server.start()
        with self.server.raw() as c:
            for i in range(20):
                c.put("k%d" % i, "v%d" % i)  # sync mode: OK only after the fdatasync
        self.fs.cut()
        self.server.kill(signal.SIGKILL)
        self.fs.remount()
        self.server.start()
        with self.server.raw() as c:
            self.assertEqual([c.get("k%d" % i) for i in range(20)], [b"v%d" % i for i in range(20)])


if __name__ == "__main__":
    kvdtest.main(total_timeout=240)
