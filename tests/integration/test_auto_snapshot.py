"""Automatic snapshots, on by default: kvd snapshots by itself when the WAL
grew relative to the data size (over a floor) or after an interval, and the
WAL segments the snapshot covers disappear from the disk."""

import os
import signal
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import Code, KvdTestCase, Op, encode_frame, put_payload  # noqa: E402

KIB = 1024


def wal_bytes_on_disk(kvd):
    return sum(os.path.getsize(os.path.join(kvd.wal_path, n)) for n in kvd.wal_segments())


def put_many(kvd, prefix, count, value_size):
    """Pipelined PUTs of distinct keys; returns {key: value}."""
    values = {}
    with kvd.raw() as c:
        for start in range(0, count, 50):
            frames = []
            for i in range(start, min(count, start + 50)):
                key = b"%s%05d" % (prefix, i)
                values[key] = (key * (value_size // len(key) + 1))[:value_size]
                frames.append(encode_frame(Op.PUT, put_payload(key, values[key]), i + 1))
            c.send(b"".join(frames))
            for _ in frames:
                r = c.recv_reply()
                assert r.status == Code.OK, r
        c.flush()
    return values


def succeeded(kvd, n=1):
    """kvd's STATUS once at least n snapshots succeeded, else None."""
    status = kvd.status()
    return status if status["snapshot"]["succeeded"] >= n else None


class AutoSnapshot(KvdTestCase):
    def test_defaults_are_on_when_kvd_toml_names_no_snapshot_key(self):
        kvd = self.server()  # the harness's kvd.toml has no [snapshot] table
        self.assertNotIn("[snapshot]", open(kvd.config_path).read())
        self.assertEqual(kvd.config_get("snapshot.wal_growth_percent"), "100")
        self.assertEqual(kvd.config_get("snapshot.wal_min_bytes"), "64MiB")
        self.assertEqual(kvd.config_get("snapshot.interval"), "1h")
        status = kvd.status()
        self.assertEqual(kvdtest.find_key(status, "wal_growth_threshold_bytes"), [64 * KIB * KIB])

    def test_wal_growth_snapshots_by_itself_and_truncates_the_wal(self):
        kvd = self.server(storage={"segment_size": "64KiB"},
                          snapshot={"interval": "0", "wal_growth_percent": 100, "wal_min_bytes": "256KiB"})
        # ~400 KiB of WAL in ~7 segments: past the 256 KiB floor (no
        # snapshot yet, so the data size counts as 0).
        values = put_many(kvd, b"g", 200, 2 * KIB)
        logged = 200 * 2 * KIB
        first_segment = kvd.wal_segments()[0]
        status = kvdtest.wait_until(lambda: succeeded(kvd), what="an automatic snapshot")
        self.assertEqual(kvdtest.find_key(status, "reason"), ["wal_growth"], status)
        self.assertRegex(kvd.log_text(), r"snapshot at LSN \d+ \(wal_growth\)")
        snap = kvd.snapshots()[-1]
        snap_lsn = int(snap[len("snap-"):-len(".kvs")])

        def covered():  # segments whose every record the snapshot holds
            segs = kvd.wal_segments()
            return [s for s, nxt in zip(segs, segs[1:]) if kvdtest.segment_first_lsn(nxt) - 1 <= snap_lsn]
        kvdtest.wait_until(lambda: not covered(), what="covered WAL segments to be deleted")
        # On disk: the first segments are gone and what is left is a fraction
        # of what was logged (at most the segments after the snapshot's LSN).
        self.assertNotIn(first_segment, kvd.wal_segments())
        self.assertLess(wal_bytes_on_disk(kvd), logged * 3 // 4, kvd.wal_segments())
        # The next one waits for as much WAL again as the data (the
        # snapshot's size), which is now above the floor.
        snap_bytes = os.path.getsize(os.path.join(kvd.snapshot_path, snap))
        self.assertGreater(snap_bytes, 256 * KIB)
        self.assertEqual(kvdtest.find_key(kvd.status(), "wal_growth_threshold_bytes"), [snap_bytes])

        # Restart from the snapshot: everything is there.
        kvd.kill(signal.SIGKILL)
        kvd.start()
        recovery = kvdtest.find_key(kvd.status(), "recovery")
        self.assertTrue(any(snap in s for s in kvdtest.json_strings(recovery)), recovery)
        with kvd.raw() as c:
            self.assertEqual(c.count(b"g"), len(values))
            for k in list(values)[::37]:
                self.assertEqual(c.get(k), values[k], k)

    def test_growth_trigger_is_relative_to_the_data_size(self):
        # Off at first, so the first snapshot is the one we take.
        kvd = self.server(storage={"segment_size": "64KiB"},
                          snapshot={"interval": "0", "wal_growth_percent": 0, "wal_min_bytes": "64KiB"})
        put_many(kvd, b"d", 300, 2 * KIB)  # ~600 KiB of data
        self.assertEqual(kvd.kvctl("snapshot").rc, 0)
        first = kvd.snapshots()[-1]
        data = os.path.getsize(os.path.join(kvd.snapshot_path, first))
        self.assertEqual(kvd.kvctl("config", "set", "snapshot.wal_growth_percent", "50").rc, 0)
        self.assertEqual(kvdtest.find_key(kvd.status(), "wal_growth_threshold_bytes"), [data // 2])
        # 40% of the data size rewritten: under the threshold, and above
        # the floor. Then 20% more: past it.
        put_many(kvd, b"d", 120, 2 * KIB)
        grown = kvdtest.find_key(kvd.status(), "wal_grown_bytes")[0]
        self.assertTrue(64 * KIB < grown < data // 2, (grown, data))
        self.assertEqual(kvd.snapshots(), [first])
        put_many(kvd, b"e", 60, 2 * KIB)
        status = kvdtest.wait_until(lambda: succeeded(kvd, 2), what="a second, automatic snapshot")
        self.assertEqual(kvdtest.find_key(status, "reason"), ["wal_growth"])
        self.assertNotEqual(kvd.snapshots(), [first])

    def test_interval_snapshots_only_after_writes(self):
        kvd = self.server(snapshot={"interval": "1s", "wal_growth_percent": 0})
        with kvd.raw() as c:
            c.put(b"k", b"v")
        status = kvdtest.wait_until(lambda: succeeded(kvd), what="an interval snapshot")
        self.assertEqual(kvdtest.find_key(status, "reason"), ["interval"])
        self.assertTrue(kvd.snapshots())
        self.assertRegex(kvd.log_text(), r"snapshot at LSN \d+ \(interval\)")


if __name__ == "__main__":
    kvdtest.main()
