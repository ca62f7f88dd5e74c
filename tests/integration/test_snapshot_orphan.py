"""A snapshot child that outlives its SIGKILLed kvd must not publish a stale
snapshot behind a restarted kvd's back (crash_loop_batch, issue of the
snapshot at LSN 2045 that appeared after the next kvd had recovered).

In batch mode a snapshot holds writes above the durable LSN. If the child of
a killed kvd renames its snapshot after the next kvd recovered from the WAL
alone, that kvd hands out the same LSNs again; at the following start the
stale snapshot is loaded and every new write with an LSN at or below it is
skipped: acknowledged durable writes are lost.

PR_SET_PDEATHSIG cannot stop a rename or fsync already in the kernel, so the
test build's KVD_TEST_SNAPSHOT_CHILD_LINGER_MS stands in for that: the child
arms no PDEATHSIG and writes only after N ms. The fix: every snapshot child
keeps the data-directory locks open, and a starting kvd waits (a bounded
time) for them, so nobody recovers before the child is gone.
"""

import os
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, Op, wait_until  # noqa: E402

LINGER_MS = 1500
N = 10


def linger_supported():
    """The hook exists in fault-injection (test) builds only."""
    p = subprocess.run([kvdtest.binary("KVD_BIN"), "--help"], capture_output=True, timeout=30)
    return b"--fault-env" in p.stdout


class SnapshotOrphan(KvdTestCase):
    def test_child_of_killed_kvd_cannot_publish_behind_restarted_kvd(self):
        if not linger_supported():
            self.skipTest("kvd built without KVD_FAULT_INJECTION (no snapshot child linger hook)")
        kvd = self.server(start=False, env={"KVD_TEST_SNAPSHOT_CHILD_LINGER_MS": str(LINGER_MS)},
                          durability={"mode": "batch", "batch_size": 1000, "flush_interval": "50s"})
        kvd.start()
        with kvd.raw() as c:
            for i in range(N):
                c.put("d%02d" % i, "durable-%d" % i, durable=True)
            for i in range(N):
                c.put("b%02d" % i, "batched-%d" % i)  # acknowledged at once, not yet synced
            st = c.status()
            self.assertLess(st["durable_lsn"], 2 * N, st)  # the batched writes are above the durable LSN
            frame, _ = c.queue(Op.SNAPSHOT)
            c.send(frame)  # the reply would come only once the (lingering) child is done
            wait_until(lambda: kvd.status()["snapshot"]["in_progress"], what="snapshot child forked")
            kvd.kill(signal.SIGKILL)  # the child lives on for LINGER_MS

        kvd.start()
        second_run = kvd.log_of_run()
        with kvd.raw() as c:
            for i in range(N):
                c.put("b%02d" % i, "new-%d" % i, durable=True)
        wait_until(lambda: kvd.snapshots(), what="the lingering child's snapshot")

        kvd.restart()  # clean: SIGTERM, then recovery from the snapshot + WAL
        with kvd.raw() as c:
            for i in range(N):
                self.assertEqual(c.get("d%02d" % i), b"durable-%d" % i)
                self.assertEqual(c.get("b%02d" % i), b"new-%d" % i, "write acknowledged as durable lost")
        # The restarted kvd waited for the child's lock instead of recovering
        # beside it, and recovered from the child's snapshot.
        self.assertIn("is locked", second_run)
        recovered = [line for line in second_run.splitlines() if "recovered: " in line]
        self.assertEqual(len(recovered), 1, second_run)
        self.assertIn("recovered: snapshot ", recovered[0])


if __name__ == "__main__":
    kvdtest.main()
