"""Recovery never throws data away behind the user's back (issue 12, section 2),
with a real kvd:

  * a junk file named like a segment (`echo junk > wal/wal-00000000000000000000.log`)
    next to good segments: --check-data names it and offers no remedy that
    drops the log; kvd refuses to start in every recovery_mode (so the
    README's point_in_time remedy cannot empty the store) until the file is
    moved away, and then serves every key;
  * a preallocated segment that is shorter than its preallocated size and ends
    inside a record (copied or truncated short, which a crash does not do) is
    corruption: refused under the default mode, and --check-data lists what
    point_in_time would keep and drop.
"""

import json
import os
import shutil
import signal
import struct
import subprocess
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, TIMEOUT  # noqa: E402

SEGMENT_HEADER = 32
RECORD_HEADER = struct.Struct("<IIBBQQ")  # v2: crc, length, type, flags, lsn, epoch
KEYS = 600


def put_keys(kvd, n, prefix="k"):
    lines = "".join("put %s%05d value-%05d-%s\n" % (prefix, i, i, "x" * 150) for i in range(n))
    r = kvd.kvctl(input=lines)
    assert r.rc == 0, r


def check_data(kvd):
    """(exit code, JSON report, text report) of kvd --check-data."""
    kvd_bin = kvdtest.binary("KVD_BIN")
    pj = subprocess.run([kvd_bin, "--check-data", "--json", "--config", kvd.config_path],
                        capture_output=True, text=True, timeout=TIMEOUT)
    pt = subprocess.run([kvd_bin, "--check-data", "--config", kvd.config_path],
                        capture_output=True, text=True, timeout=TIMEOUT)
    assert pj.returncode == pt.returncode, (pj, pt)
    return pj.returncode, json.loads(pj.stdout), pt.stdout


def record_ends(data):
    """Offsets where the whole records of a v2 segment end (stops at zeros)."""
    ends, p = [], SEGMENT_HEADER
    while p + RECORD_HEADER.size <= len(data):
        crc, length, rtype, _flags, lsn, _epoch = RECORD_HEADER.unpack_from(data, p)
        if rtype == 0 or lsn == 0:
            break
        p += RECORD_HEADER.size + length
        ends.append(p)
    return ends


def tree(path):
    out = {}
    for root, _dirs, files in os.walk(path):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                out[os.path.join(root, f)] = fh.read()
    return out


class StrayWalFileTest(KvdTestCase):
    def test_junk_file_named_like_the_first_segment(self):
        kvd = self.server(storage={"segment_size": "64KiB"})
        put_keys(kvd, KEYS)
        kvd.stop()
        segments = kvd.wal_segments()
        self.assertGreaterEqual(len(segments), 2, segments)
        junk = os.path.join(kvd.wal_path, "wal-00000000000000000000.log")
        with open(junk, "w") as f:
            f.write("junk\n")
        before = tree(kvd.dir + "/data")

        code, report, text = check_data(kvd)
        self.assertEqual(code, 1, text)
        self.assertEqual(report["verdict"], "refuse", text)
        self.assertEqual([s["path"] for s in report["stray_files"]], [junk], text)
        self.assertIn("wal-00000000000000000000.log", report["message"])
        self.assertNotIn("alternative", report, "--check-data proposed a mode that drops the log:\n" + text)
        self.assertNotIn("point_in_time would accept", text)
        # The one remedy: move it away, and then nothing is dropped.
        self.assertEqual(len(report["remedies"]), 1, text)
        remedy = report["remedies"][0]
        self.assertEqual(remedy["move_away"], [junk])
        self.assertEqual(remedy["keeps"]["keys"], KEYS)
        self.assertEqual(remedy["keeps"]["records"], KEYS)
        self.assertEqual(remedy["drops"]["records"], 0)
        self.assertEqual(remedy["drops"]["bytes"], 0)
        self.assertEqual(len(report["segments"]), len(segments))

        # kvd refuses in the default mode and under the README's old remedy.
        for mode in ("tolerate_tail", "point_in_time"):
            kvd.write_config(storage={"segment_size": "64KiB", "recovery_mode": mode})
            rc, log = kvd.start_expect_failure()
            self.assertNotEqual(rc, 0)
            self.assertIn(junk, log)
            self.assertIn("move them out of the directory", log)
            self.assertEqual(tree(kvd.dir + "/data"), before, "a refused start changed the data directory")

        # Moved away, every key is back and nothing was set aside.
        shutil.move(junk, os.path.join(self.tmp, "junk"))
        kvd.write_config(storage={"segment_size": "64KiB"})
        kvd.start()
        self.assertEqual(kvd.kvctl("size").out.strip(), str(KEYS))
        self.assertEqual(kvd.kvctl("get", "k00000").out.strip(), "value-00000-" + "x" * 150)
        self.assertEqual([n for n in os.listdir(kvd.wal_path) if ".broken" in n], [])

    def test_a_segment_from_elsewhere_is_never_the_tail(self):
        kvd = self.server(storage={"segment_size": "64KiB"})
        put_keys(kvd, KEYS)
        kvd.stop()
        first = os.path.join(kvd.wal_path, kvd.wal_segments()[0])
        # A copy of a real segment under another name: its header names lsn 1.
        stray = os.path.join(kvd.wal_path, "wal-%020d.log" % 100000)
        shutil.copy(first, stray)
        code, report, text = check_data(kvd)
        self.assertEqual(code, 1, text)
        self.assertEqual([s["path"] for s in report["stray_files"]], [stray], text)
        self.assertIn("its header gives first lsn 1", report["stray_files"][0]["reason"])
        self.assertEqual(report["remedies"][0]["drops"]["records"], 0, text)
        rc, log = kvd.start_expect_failure()
        self.assertIn(stray, log)
        os.remove(stray)
        kvd.start()
        self.assertEqual(kvd.kvctl("size").out.strip(), str(KEYS))


class ShortSegmentTest(KvdTestCase):
    def test_preallocated_segment_cut_inside_a_record_is_refused(self):
        kvd = self.server(storage={"segment_size": "1MiB"})
        put_keys(kvd, KEYS)
        kvd.kill(signal.SIGKILL)  # the active segment stays preallocated (Close would trim it)
        last = os.path.join(kvd.wal_path, kvd.wal_segments()[-1])
        self.assertEqual(os.path.getsize(last), 1 << 20)
        with open(last, "rb") as f:
            data = f.read()
        ends = record_ends(data)
        self.assertEqual(len(ends), KEYS)
        os.truncate(last, ends[-1] - 5)  # "copied short": ends inside the last record

        code, report, text = check_data(kvd)
        self.assertEqual(code, 1, text)
        self.assertEqual(report["verdict"], "refuse", text)
        seg = report["segments"][-1]
        self.assertEqual(seg["damage"], "corruption", text)
        self.assertIn("does not shrink a preallocated segment", seg["damage_reason"])
        self.assertEqual(len(report["remedies"]), 1, text)
        remedy = report["remedies"][0]
        self.assertEqual(remedy["recovery_mode"], "point_in_time")
        self.assertEqual(remedy["keeps"]["records"], KEYS - 1)
        self.assertEqual(remedy["keeps"]["keys"], KEYS - 1)
        self.assertEqual(remedy["drops"]["records"], 0)  # the cut record is not whole
        self.assertGreater(remedy["drops"]["bytes"], 0)

        rc, log = kvd.start_expect_failure()
        self.assertNotEqual(rc, 0)
        self.assertIn("does not shrink a preallocated segment", log)

        kvd.write_config(storage={"segment_size": "1MiB", "recovery_mode": "point_in_time"})
        kvd.start()
        self.assertEqual(kvd.kvctl("size").out.strip(), str(KEYS - 1))
        self.assertTrue(os.path.exists(last + ".broken"))


if __name__ == "__main__":
    kvdtest.main()
