"""kvd's RESP listener driven by python3-redis (Debian's redis-py): pipelines,
binary values through MSET/MGET, SCAN over 10k keys, conditional writes
raced by several clients and checked against an independent model, and a
crash test: kill -9 kvd while clients write in sync mode, restart, and every
SET that was acknowledged is there (checked against the test's own ledger)."""

import os
import random
import signal
import sys
import threading

sys.dont_write_bytecode = True
import resp_util as ru  # noqa: E402
from kvdtest import KvdTestCase, main  # noqa: E402

ru.require_tools(python_redis=True)
import redis  # noqa: E402


class RedisPyTest(KvdTestCase):
    def test_pipelines_keep_order_and_binary_values_survive(self):
        s = ru.resp_server(self)
        r = ru.redis_client(s)
        values = {b"bin:%d" % i: bytes(random.Random(i).getrandbits(8) for _ in range(1 + i * 37)) for i in range(200)}
        values[b"bin:nul"] = b"\x00\r\n$-1\r\n\x00"
        self.assertTrue(r.mset(values))
        keys = list(values)
        self.assertEqual(r.mget(keys + [b"missing"]), [values[k] for k in keys] + [None])
        p = r.pipeline(transaction=False)
        for i in range(1000):
            p.set("pipe:%04d" % i, "v%d" % i)
            p.get("pipe:%04d" % i)
            if i % 10 == 0:
                p.set("pipe:%04d" % i, "again", nx=True)
        out = p.execute()
        expect = []
        for i in range(1000):
            expect += [True, b"v%d" % i]
            if i % 10 == 0:
                expect.append(None)
        self.assertEqual(out, expect)
        self.assertEqual(r.dbsize(), 1000 + len(values))
        # The native protocol reads the same bytes.
        self.assertEqual(s.kvctl("count", "--prefix", "pipe:").out.strip(), "1000")

    def test_scan_iterates_over_10k_keys_exactly_once(self):
        s = ru.resp_server(self, durability={"mode": "batch"})
        r = ru.redis_client(s)
        p = r.pipeline(transaction=False)
        for i in range(10_000):
            p.set("scan:%05d" % i, i)
        for i in range(500):
            p.set("other:%d" % i, i)
        self.assertTrue(all(p.execute()))
        seen = list(r.scan_iter(match="scan:*", count=250))
        self.assertEqual(len(seen), 10_000)
        self.assertEqual(set(seen), {b"scan:%05d" % i for i in range(10_000)})
        self.assertEqual(len(list(r.scan_iter(count=1000))), 10_500)
        self.assertEqual(sorted(r.keys("other:1*")), sorted(b"other:%d" % i for i in range(500)
                                                           if str(i).startswith("1")))

    def test_conditional_writes_against_a_model(self):
        """One client, pipelined, against a dict that implements Redis's
        documented semantics; then several clients racing on the same keys."""
        s = ru.resp_server(self)
        r = ru.redis_client(s)
        rng = random.Random(self.seed)
        model = {}
        keys = ["c%d" % i for i in range(6)]
        for _round in range(20):
            p = r.pipeline(transaction=False)
            expect = []
            for step in range(50):
                k, k2, v = rng.choice(keys), rng.choice(keys), "v%d-%d" % (_round, step)
                op = rng.randrange(7)
                if op == 0:
                    p.set(k, v, nx=True)
                    expect.append(None if k in model else True)
                    model.setdefault(k, v)
                elif op == 1:
                    p.set(k, v, xx=True)
                    expect.append(True if k in model else None)
                    if k in model:
                        model[k] = v
                elif op == 2:
                    p.set(k, v, get=True)
                    expect.append(model.get(k, None) and model[k].encode())
                    model[k] = v
                elif op == 3:
                    p.setnx(k, v)
                    expect.append(k not in model)
                    model.setdefault(k, v)
                elif op == 4:
                    p.getdel(k)
                    old = model.pop(k, None)
                    expect.append(old and old.encode())
                elif op == 5:
                    p.delete(k, k2)
                    expect.append(len({k, k2} & set(model)))
                    model.pop(k, None)
                    model.pop(k2, None)
                else:
                    p.msetnx({k: v, k2: v})
                    ok = k not in model and k2 not in model
                    expect.append(ok)
                    if ok:
                        model[k] = model[k2] = v
            self.assertEqual(p.execute(), expect)
        self.assertEqual({k: v.decode() for k, v in zip(keys, r.mget(keys)) if v is not None}, model)

        # Races: eight clients SETNX the same 300 keys; exactly one wins each.
        winners = [[] for _ in range(8)]

        def claim(n):
            c = ru.redis_client(s)
            pipe = c.pipeline(transaction=False)
            for i in range(300):
                pipe.setnx("lock:%d" % i, "owner%d" % n)
            winners[n] = [i for i, won in enumerate(pipe.execute()) if won]

        threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        owner = {}
        for n, won in enumerate(winners):
            for i in won:
                self.assertNotIn(i, owner)
                owner[i] = n
        self.assertEqual(sorted(owner), list(range(300)))
        for i, n in owner.items():
            self.assertEqual(r.get("lock:%d" % i), b"owner%d" % n)

        # Eight clients GETDEL the same keys: each value is handed out once.
        r.mset({"tok:%d" % i: "t%d" % i for i in range(300)})
        got = [[] for _ in range(8)]

        def take(n):
            c = ru.redis_client(s)
            pipe = c.pipeline(transaction=False)
            for i in range(300):
                pipe.getdel("tok:%d" % i)
            got[n] = [v for v in pipe.execute() if v is not None]

        threads = [threading.Thread(target=take, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        handed = sorted(v for vs in got for v in vs)
        self.assertEqual(handed, sorted(b"t%d" % i for i in range(300)))
        self.assertEqual(r.exists(*["tok:%d" % i for i in range(300)]), 0)

    def test_every_acknowledged_set_survives_kill_9(self):
        s = ru.resp_server(self)  # sync: OK means fdatasynced
        ledger = {}  # key -> value, recorded only after kvd acknowledged the SET
        lock = threading.Lock()
        enough = threading.Event()
        stop = threading.Event()

        def writer(n):
            c = ru.redis_client(s)
            i = 0
            try:
                while not stop.is_set():
                    k, v = "crash:%d:%06d" % (n, i), "value-%d-%d" % (n, i)
                    if c.set(k, v) is True:
                        with lock:
                            ledger[k] = v
                            if len(ledger) >= 2000:
                                enough.set()
                    i += 1
            except (redis.ConnectionError, redis.TimeoutError, ConnectionResetError, OSError):
                return  # kvd was killed: this SET's fate is unknown, and not in the ledger

        threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(4)]
        for t in threads:
            t.start()
        self.assertTrue(enough.wait(120), "the writers made no progress")
        os.kill(s.pid, signal.SIGKILL)
        s.wait_exit()
        stop.set()
        for t in threads:
            t.join(30)
        with lock:
            acked = dict(ledger)
        s.start()
        r = ru.redis_client(s)
        keys = sorted(acked)
        values = []
        for i in range(0, len(keys), 500):
            values += r.mget(keys[i:i + 500])
        missing = [k for k, v in zip(keys, values) if v is None or v.decode() != acked[k]]
        self.assertEqual(missing, [], "%d of %d acknowledged SETs lost" % (len(missing), len(keys)))
        self.assertGreaterEqual(len(keys), 2000)


if __name__ == "__main__":
    main()
