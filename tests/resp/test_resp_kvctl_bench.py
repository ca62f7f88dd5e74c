"""`kvctl bench --resp`: kvctl's own load generator driving kvd's RESP
listener (Unix socket and TCP on loopback) with SET/GET. What it wrote is
read back through the native protocol, the request count it reports is the
count kvd served, and an error reply is counted as a failed request."""

import json
import sys

sys.dont_write_bytecode = True
import resp_util as ru  # noqa: E402
from kvdtest import KvdTestCase, main  # noqa: E402


def bench_value(n):
    """ctl/keyspace.h BenchValue: the bytes every bench PUT/SET writes."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    x, out, mask = 0x9E3779B97F4A7C15, bytearray(), (1 << 64) - 1
    for _ in range(n):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        out.append(alphabet[x % len(alphabet)])
    return bytes(out)


class KvctlBenchRespTest(KvdTestCase):
    def bench(self, s, endpoint, *args):
        r = s.kvctl("bench", "--resp", endpoint, "--json", "--no-progress", *args)
        report = json.loads(r.out.strip().splitlines()[-1]) if r.out.strip() else None
        return r, report

    def served(self, s):
        with s.raw() as c:
            ops = c.status()["ops"]
        return ops.get("put", 0), ops.get("get", 0)

    def count(self, s, prefix):
        with s.raw() as c:
            return c.count(prefix)

    def test_set_then_get_over_unix_and_tcp(self):
        s = ru.resp_server(self, tcp=True, durability={"mode": "sync"})
        puts0, gets0 = self.served(s)
        r, rep = self.bench(s, s.resp_socket, "--requests", "3000", "--clients", "4", "--pipeline", "8",
                            "--key-space", "400", "--value-size", "37", "--prefix", "rb:", "--durability", "sync",
                            "--keep")
        self.assertEqual(r.rc, 0, r.err)
        self.assertEqual(rep["protocol"], "resp")
        self.assertEqual(rep["durability"], "sync")
        self.assertEqual((rep["requests"], rep["puts"], rep["gets"], rep["errors"]), (3000, 3000, 0, 0))
        puts1, gets1 = self.served(s)
        self.assertEqual(puts1 - puts0, 3000)  # kvd served exactly what the bench reports

        # Every key it wrote is there, through the native protocol, with the bench's value.
        value = bench_value(37)
        with s.raw() as c:
            n = c.count(b"rb:")
            self.assertGreater(n, 300)  # 3000 uniform picks of 400 keys
            self.assertLessEqual(n, 400)
            items, more = c.scan(prefix=b"rb:", limit=1000)
            self.assertFalse(more)
            self.assertEqual(len(items), n)
            for k, v in items:
                self.assertRegex(k, rb"^rb:\d{12}$")
                self.assertEqual(v, value)

        # GETs over TCP on loopback: every GET of a written key is a hit,
        # and only they are counted as misses otherwise.
        r, rep = self.bench(s, "127.0.0.1:%d" % s.resp_port, "--requests", "2000", "--clients", "3", "--pipeline",
                            "16", "--key-space", "400", "--value-size", "37", "--prefix", "rb:", "--ratio", "0:1",
                            "--keep")
        self.assertEqual(r.rc, 0, r.err)
        self.assertEqual((rep["requests"], rep["gets"], rep["errors"]), (2000, 2000, 0))
        self.assertLess(rep["get_misses"], 2000 * (400 - n + 1) // 400 + 200)
        puts2, gets2 = self.served(s)
        self.assertEqual((puts2 - puts1, gets2 - gets1), (0, 2000))

    def test_prefill_writes_every_key_and_cleanup_deletes_them(self):
        s = ru.resp_server(self)
        r, rep = self.bench(s, s.resp_socket, "--prefill", "--requests", "500", "--key-space", "250",
                            "--ratio", "0:1", "--clients", "2", "--prefix", "pf:", "--keep")
        self.assertEqual(r.rc, 0, r.err)
        self.assertIn("prefilled 250 keys", r.err)
        self.assertEqual((rep["requests"], rep["get_misses"], rep["errors"]), (500, 0, 0))
        self.assertEqual(self.count(s, b"pf:"), 250)
        # Without --keep the keys go away afterwards (through the native control connection).
        r, rep = self.bench(s, s.resp_socket, "--requests", "100", "--key-space", "250", "--prefix", "pf:")
        self.assertEqual(r.rc, 0, r.err)
        self.assertEqual(self.count(s, b"pf:"), 0)

    def test_error_replies_are_failed_requests(self):
        # With a password and no AUTH, kvd answers every SET with -NOAUTH.
        s = ru.resp_server(self, password="sesame")
        r, rep = self.bench(s, s.resp_socket, "--requests", "300", "--clients", "2", "--pipeline", "4",
                            "--key-space", "50", "--prefix", "na:", "--keep")
        self.assertEqual(r.rc, 3, r.err)
        self.assertEqual((rep["requests"], rep["errors"]), (300, 300))
        self.assertIn("NOAUTH", rep["first_error"])
        self.assertIn("300 requests failed", r.err)
        self.assertEqual(self.count(s, b"na:"), 0)

    def test_sync_needs_a_sync_server_and_no_durable_flag(self):
        s = ru.resp_server(self, durability={"mode": "batch"})
        r, _ = self.bench(s, s.resp_socket, "--requests", "10", "--durability", "sync")
        self.assertEqual(r.rc, 2)
        self.assertIn("RESP cannot ask for sync per request", r.err)
        r, _ = self.bench(s, s.resp_socket, "--requests", "10", "--durable-flag")
        self.assertEqual(r.rc, 2)
        self.assertIn("native only", r.err)


if __name__ == "__main__":
    main()
