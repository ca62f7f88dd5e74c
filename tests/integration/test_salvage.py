"""kvd --salvage: records that recovery set aside (a WAL damaged in the
middle, cut by recovery_mode = point_in_time through the real recovery path)
are read back from the .broken file, written in the backup format, restored
into a new data directory, and come back with their values."""

import glob
import os
import re
import struct
import subprocess
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, TIMEOUT, binary  # noqa: E402

SEGMENT_HEADER = 32
RECORD_HEADER = struct.Struct("<IIBBQQ")  # masked_crc length type flags lsn epoch (docs/wal_format.md §3.1)


def record_offsets(data):
    """{lsn: (offset, length)} of the v2 records of a segment, parsed here."""
    out, pos = {}, SEGMENT_HEADER
    while pos + RECORD_HEADER.size <= len(data):
        _, length, rtype, _, lsn, _ = RECORD_HEADER.unpack_from(data, pos)
        if rtype == 0:
            break
        out[lsn] = (pos, RECORD_HEADER.size + length)
        pos += RECORD_HEADER.size + length
    return out


def kvd(*args):
    return subprocess.run([binary("KVD_BIN")] + list(args), capture_output=True, text=True, timeout=TIMEOUT)


class Salvage(KvdTestCase):
    def test_set_aside_records_come_back(self):
        s = self.server()
        values = {}
        with s.client() as c:
            for i in range(100):
                key, value = b"k:%03d" % i, b"value-%d-" % i + os.urandom(8).hex().encode()
                self.assertEqual(c.put(key, value).check().lsn, i + 1)
                values[key] = value
        s.stop()
        [segment] = glob.glob(os.path.join(s.wal_path, "wal-*.log"))
        with open(segment, "rb") as f:
            data = bytearray(f.read())
        offsets = record_offsets(data)
        self.assertEqual(sorted(offsets), list(range(1, 101)))
        off, length = offsets[50]
        data[off + length - 1] ^= 0xFF  # damage in the middle: valid records follow
        with open(segment, "wb") as f:
            f.write(data)

        rc, log = s.start_expect_failure()  # the default mode refuses corruption
        self.assertNotEqual(rc, 0)
        s.write_config(storage={"wal_path": s.wal_path, "snapshot_path": s.snapshot_path,
                                "recovery_mode": "point_in_time"})
        s.start()  # recovery cuts at LSN 50 and sets the rest aside
        self.assertEqual(s.status()["last_lsn"], 49)
        s.stop()
        broken = sorted(glob.glob(os.path.join(s.wal_path, "*.broken*")))
        self.assertEqual([os.path.basename(b) for b in broken], [os.path.basename(segment) + ".broken"])

        out = os.path.join(self.tmp, "salvaged.kvs")
        r = kvd("--salvage", *broken, "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("salvaged 50 records, LSN 51..100 (0 LSNs in that range missing), 50 keys", r.stdout)
        m = re.search(r"(\d+) bytes unreadable", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual(int(m.group(1)), length)  # exactly the damaged record
        # OUT exists now: salvage will not overwrite it.
        self.assertEqual(kvd("--salvage", *broken, "--out", out).returncode, 1)

        dst = self.server(start=False)
        r = kvd("--restore", out, "--config", dst.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        dst.start()
        with dst.client() as c:
            restored = dict(c.scan_all())
        self.assertEqual(restored, {k: v for k, v in values.items() if k >= b"k:050"})
        self.assertEqual(dst.status()["last_lsn"], 100)

    def test_nothing_readable(self):
        junk = os.path.join(self.tmp, "junk.broken")
        with open(junk, "wb") as f:
            f.write(b"\x01" * 100 + b"\0" * 100)
        r = kvd("--salvage", junk, "--out", os.path.join(self.tmp, "o.kvs"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("100 bytes unreadable", r.stdout)
        self.assertIn("no readable record", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "o.kvs")))


if __name__ == "__main__":
    kvdtest.main()
