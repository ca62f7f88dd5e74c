"""RESP WAIT numreplicas timeout (docs/resp.md) driven by python3-redis
against a primary with two replicas: it answers how many replicas report the
connection's last write durable (after their fdatasync). One replica's
fdatasync is held through the fault env (`--fault-env stall-sync-file=PATH`),
so WAIT 2 gets only 1 until its timeout, and a WAIT without timeout returns
2 as soon as the stall is released. On a replica WAIT is refused."""

import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
import resp_util as ru  # noqa: E402
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, main  # noqa: E402

ru.require_tools(python_redis=True)
import redis  # noqa: E402


def fault_env_supported():
    p = subprocess.run([kvdtest.binary("KVD_BIN"), "--help"], capture_output=True, timeout=30)
    return b"stall-sync-file" in p.stdout


class RespWaitTest(KvdTestCase):
    def setUp(self):
        super().setUp()
        if not fault_env_supported():
            print("SKIP: kvd has no --fault-env stall-sync-file=PATH (configure with -DKVD_FAULT_INJECTION=ON)")
            self.skipTest("kvd built without KVD_FAULT_INJECTION")

    def test_wait_counts_replicas_whose_durable_lsn_covers_the_last_write(self):
        p = ru.resp_server(self, replication={"name": "p", "listen": "127.0.0.1:0"})
        port = p.status()["replication"]["port"]
        stall = os.path.join(self.tmp, "stall-r2")
        r1 = ru.resp_server(self, replication={"name": "r1", "role": "replica", "primary": "127.0.0.1:%d" % port})
        r2 = self.server(start=False, replication={"name": "r2", "role": "replica", "primary": "127.0.0.1:%d" % port})
        r2.extra_args = ["--fault-env", "stall-sync-file=" + stall]
        r2.start()
        kvdtest.wait_until(lambda: p.status()["replication"]["sync"]["connected"] == 2, what="two replicas")
        c = ru.redis_client(p)
        # No write yet on this connection: every connected replica counts.
        self.assertEqual(c.wait(0, 0), 2)
        self.assertTrue(c.set("k", "v"))
        self.assertEqual(c.wait(2, 5000), 2)

        # r2's fdatasync held: it receives the write but cannot make it durable.
        open(stall, "w").close()
        self.assertTrue(c.set("k2", "v2"))  # sync_replicas = 0: acknowledged once durable here
        lsn = p.status()["last_lsn"]
        kvdtest.wait_until(lambda: r2.status()["last_lsn"] >= lsn, what="the record written on r2")
        self.assertLess(r2.status()["durable_lsn"], lsn)
        t0 = time.monotonic()
        self.assertEqual(c.wait(2, 400), 1)  # the timeout passes with one
        self.assertGreaterEqual(time.monotonic() - t0, 0.39)
        self.assertEqual(c.wait(1, 5000), 1)
        # WAIT counts for the connection's own last write: one without writes is not held.
        other = ru.redis_client(p)
        self.assertEqual(other.wait(1, 5000), 2)

        # WAIT 2 0 (no timeout) returns as soon as the stall is released.
        waiter = ru.redis_client(p)
        self.assertTrue(waiter.set("k3", "v3"))
        lsn = p.status()["last_lsn"]
        kvdtest.wait_until(lambda: r2.status()["last_lsn"] >= lsn, what="k3 written on r2")
        result = []
        t = threading.Thread(target=lambda: result.append(waiter.wait(2, 0)))
        t.start()
        t.join(0.3)  # negative check: no answer while r2 cannot sync
        self.assertEqual(result, [])
        self.assertLess(r2.status()["durable_lsn"], lsn)
        os.unlink(stall)
        t.join(30)
        self.assertEqual(result, [2])
        self.assertGreaterEqual(r2.status()["durable_lsn"], lsn)

        # On a replica WAIT is refused, as in Redis.
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            ru.redis_client(r1).wait(1, 10)
        self.assertIn("WAIT cannot be used with replica instances", str(e.exception))


if __name__ == "__main__":
    main()
