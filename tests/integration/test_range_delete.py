"""Range delete against the real kvd: `kvctl del --prefix P` and
`kvctl del --from A --to B` (half-open) are one DEL_RANGE, one LSN, and
survive a kill -9 exactly as acknowledged."""

import signal
import struct
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvd_proto  # noqa: E402
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, Code  # noqa: E402


def scan_keys(server):
    r = server.kvctl("scan")
    assert r.rc == 0, r
    return [line.split("\t", 1)[0] for line in r.out.splitlines()]


class RangeDelete(KvdTestCase):
    def test_prefix_and_range_via_kvctl(self):
        s = self.server()
        keys = ["a", "p", "p:1", "p:2", "p:3", "p;", "q", "r", "s:1"]
        r = s.kvctl("batch", *[w for k in keys for w in ("put", k, "v" + k)])
        self.assertEqual(r.rc, 0, r)
        lsn_before = s.status()["last_lsn"]

        r = s.kvctl("del", "--prefix", "p:")
        self.assertEqual((r.rc, r.out), (0, "deleted=3 lsn=%d\n" % (lsn_before + 1)), r)
        self.assertEqual(scan_keys(s), ["a", "p", "p;", "q", "r", "s:1"])

        # Half-open: [p, r) takes p, p; and q, never r.
        r = s.kvctl("del", "--from", "p", "--to", "r")
        self.assertEqual((r.rc, r.out), (0, "deleted=3 lsn=%d\n" % (lsn_before + 2)), r)
        self.assertEqual(scan_keys(s), ["a", "r", "s:1"])
        self.assertEqual(s.status()["last_lsn"], lsn_before + 2)  # one LSN per range delete

        # Nothing in range: still a write, exit 0, deleted=0.
        r = s.kvctl("del", "--prefix", "zz")
        self.assertEqual((r.rc, r.out), (0, "deleted=0 lsn=%d\n" % (lsn_before + 3)), r)

        # Usage errors send nothing.
        for args in (["del", "--prefix", ""], ["del", "--from", "b"], ["del", "--from", "b", "--to", "a"],
                     ["del", "--prefix", "p", "--from", "a", "--to", "b"], ["del"]):
            r = s.kvctl(*args)
            self.assertEqual(r.rc, 2, (args, r))
        self.assertEqual(s.status()["last_lsn"], lsn_before + 3)

    def test_survives_kill_9_and_is_one_record(self):
        s = self.server()
        with s.client() as c:
            for i in range(300):
                c.put("k:%03d" % i, "v%d" % i)
            reply = c.call(kvd_proto.OP_DEL_RANGE, kvd_proto.del_range_payload(start="k:100", end="k:200"))
            self.assertEqual(reply.status, Code.OK)
            self.assertEqual(struct.unpack("<Q", reply.payload)[0], 100)
            self.assertEqual(reply.lsn, 301)
            self.assertLessEqual(reply.lsn, reply.durable_lsn)  # sync mode: acknowledged once durable
        s.kill(signal.SIGKILL)
        s.start()
        keys = scan_keys(s)
        self.assertEqual(keys, ["k:%03d" % i for i in range(300) if not 100 <= i < 200])
        self.assertEqual(s.status()["last_lsn"], 301)

    def test_bad_payload_is_a_protocol_error(self):
        s = self.server()
        with s.raw() as c:
            c.send(kvdtest.encode_frame(kvd_proto.OP_DEL_RANGE, b"\x00\x01\x00\x00\x00p\x01\x00\x00\x00q", 1))
            reply = c.recv_reply()
            self.assertEqual(reply.status, Code.INVALID_ARGUMENT)  # a prefix with an end
            c.wait_closed()


if __name__ == "__main__":
    kvdtest.main()
