"""redis-benchmark against kvd's RESP listener: SET, GET and MSET with 16
pipelined requests per client finish without an error reply, and every key
it wrote is readable afterwards (through RESP and through kvctl)."""

import re
import subprocess
import sys

sys.dont_write_bytecode = True
import resp_util as ru  # noqa: E402
from kvdtest import KvdTestCase, main  # noqa: E402

ru.require_tools(ru.REDIS_CLI, ru.REDIS_BENCHMARK)


class RedisBenchmarkTest(KvdTestCase):
    def test_set_get_mset_pipelined(self):
        s = ru.resp_server(self)
        p = subprocess.run([ru.REDIS_BENCHMARK, "-s", s.resp_socket, "-t", "set,get,mset", "-P", "16", "-n", "10000",
                            "-r", "3000", "-d", "16", "-c", "8", "--csv"], capture_output=True, timeout=600)
        out = p.stdout.decode() + p.stderr.decode()
        self.assertEqual(p.returncode, 0, out)
        self.assertNotIn("ERR", out)
        self.assertNotIn("rror", out)
        rows = {line.split(",")[0].strip('"'): line for line in p.stdout.decode().splitlines()[1:]}
        for test in ("SET", "GET", "MSET (10 keys)"):
            self.assertIn(test, rows, out)
        keys = ru.cli(s, "--scan", "--pattern", "key:*").decode().split()
        self.assertGreater(len(keys), 1000)  # 10000 random picks of 3000 (and MSET writes 10 a request)
        self.assertLessEqual(len(keys), 3000)
        for k in keys:
            self.assertRegex(k, r"^key:\d{12}$")
        values = subprocess.run([ru.REDIS_CLI, "-s", s.resp_socket, "mget"] + keys[:2000], capture_output=True,
                                timeout=60).stdout.decode().split("\n")
        # redis-benchmark writes one random 16-byte payload into every key.
        values = [v for v in values if v]
        self.assertEqual(len(values), min(2000, len(keys)))
        self.assertEqual(len(set(values)), 1)
        self.assertEqual(len(values[0]), 16)
        self.assertEqual(s.kvctl("count", "--prefix", "key:").out.strip(), str(len(keys)))
        self.assertEqual(s.kvctl("get", keys[0]).out, values[0] + "\n")
        self.assertTrue(re.search(r"^db0:keys=%d," % len(keys), ru.cli(s, "info", "keyspace").decode(), re.M))


if __name__ == "__main__":
    main()
