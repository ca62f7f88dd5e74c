"""kvd's life: crashes and restarts, signals, configuration, locking,
snapshots and what each durability mode acknowledges."""

import re
import signal
import socket
import subprocess
import sys
import threading

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import Code, KvdTestCase, Op, encode_frame, put_payload, TIMEOUT, FLAG_DURABLE


def value_for(key, seed):
    return b"%s=%d" % (key, seed) * 3


class CrashRecovery(KvdTestCase):
    def test_kill9_keeps_every_acknowledged_write_sync_mode(self):
        kvd = self.server(storage={"segment_size": "64KiB"})
        writers, kill_after = 8, self.rng.randrange(150, 600)
        lock = threading.Condition()
        acked = {}        # key -> value, acknowledged OK
        in_flight = {}    # key -> value, sent when kvd died (may or may not be there)
        last = {}         # writer -> last acknowledged counter of its overwritten key
        errors = []
        total = [0]

        def writer(w):
            try:
                c = kvd.client()  # kvd_proto.KvdClient
            except OSError as e:
                errors.append(e)
                return
            with c:
                for i in range(100000):
                    key = b"w%d-%05d" % (w, i)
                    value = value_for(key, self.seed)
                    in_flight[key] = value
                    # unique keys, plus an overwritten per-writer key in the same BATCH
                    ops = [("put", key, value), ("put", b"last-%d" % w, b"%d" % i)]
                    try:
                        r = c.batch(ops)
                    except OSError:  # kvd_proto.KvdConnectionClosed included
                        return
                    if r.status != Code.OK:
                        errors.append("writer %d: %r" % (w, r))
                        return
                    if r.durable_lsn < r.lsn:
                        errors.append("sync-mode ack before durable: %r" % r)
                    del in_flight[key]
                    with lock:
                        acked[key] = value
                        last[w] = i
                        total[0] += 1
                        lock.notify_all()

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        with lock:
            self.assertTrue(lock.wait_for(lambda: total[0] >= kill_after or errors, TIMEOUT),
                            "only %d writes acknowledged" % total[0])
        kvd.kill(signal.SIGKILL)
        for t in threads:
            t.join(TIMEOUT)
        self.assertEqual(errors, [])
        n_acked = len(acked)
        self.assertGreaterEqual(n_acked, kill_after)

        kvd.start()
        with kvd.raw() as c:
            missing = [k for k, v in acked.items() if c.get(k) != v]
            self.assertEqual(missing[:10], [], "%d of %d acknowledged writes lost or wrong (seed %d)"
                             % (len(missing), n_acked, self.seed))
            for k, v in in_flight.items():  # unacknowledged: absent or whole, never garbage
                self.assertIn(c.get(k), (None, v))
            for w, i in last.items():
                got = int(c.get(b"last-%d" % w))
                self.assertGreaterEqual(got, i, "writer %d: acked %d, recovered %d" % (w, i, got))
            self.assertLessEqual(c.count(b"w"), n_acked + len(in_flight))
            status = c.status()
        self.assertTrue(kvdtest.find_key(status, "recovery"), "status lacks the recovery report: %r" % status)


class Signals(KvdTestCase):
    def test_sigterm_exits_0_with_batch_writes_durable(self):
        kvd = self.server(durability={"mode": "batch", "batch_size": 100000, "flush_interval": "1m"})
        with kvd.raw() as c:
            frames = b"".join(encode_frame(Op.PUT, put_payload(b"t%04d" % i, value_for(b"t%d" % i, self.seed)), i + 1)
                              for i in range(500))
            c.send(frames)
            for i in range(500):
                r = c.recv_reply()
                self.assertEqual((r.request_id, r.status), (i + 1, Code.OK))
        mark = len(kvd.notifications)
        self.assertEqual(kvd.terminate_and_wait(signal.SIGTERM), 0, kvd.log_tail())
        self.assertIn("STOPPING=1", kvd.notifications[mark:])
        kvd.start()
        with kvd.raw() as c:
            self.assertEqual(c.count(b"t"), 500)
            for i in range(500):
                self.assertEqual(c.get(b"t%04d" % i), value_for(b"t%d" % i, self.seed))

    def test_sigint_answers_in_flight_requests_and_exits_0(self):
        kvd = self.server()
        with kvd.raw() as c:
            c.ping()
            c.send(b"".join(encode_frame(Op.PUT, put_payload(b"f%03d" % i, b"v%d" % i), i + 1) for i in range(200)))
            first = c.recv_reply()  # kvd has read requests: they are in flight when SIGINT lands
            kvd.kill(signal.SIGINT, wait=False)
            try:
                replies = [first] + c.wait_closed(TIMEOUT)
            except socket.timeout:
                self.fail("kvd kept the connection open while shutting down")
        self.assertEqual(kvd.wait_exit(), 0, kvd.log_tail())
        self.assertEqual([r.request_id for r in replies], list(range(1, len(replies) + 1)), "replies in order")
        oks = [r.request_id - 1 for r in replies if r.status == Code.OK]
        self.assertTrue(all(r.status in (Code.OK, Code.SHUTTING_DOWN) for r in replies), replies[:5])
        self.assertGreaterEqual(len(oks), 1, "no in-flight write was answered OK: %r" % replies[:5])
        kvd.start()
        with kvd.raw() as c:
            for i in oks:
                self.assertEqual(c.get(b"f%03d" % i), b"v%d" % i)

    def test_sighup_changes_batch_size(self):
        kvd = self.server(durability={"batch_size": 100})
        self.assertEqual(str(kvd.config_get("durability.batch_size")), "100")
        kvd.write_config(durability={"batch_size": 5}, server={"max_connections": 77})
        off = kvd.log_offset()
        kvd.reload()
        kvdtest.wait_until(lambda: str(kvd.config_get("durability.batch_size")) == "5",
                           what="durability.batch_size to become 5 after SIGHUP")
        self.assertIn(5, [int(v) for v in kvdtest.find_key(kvd.status(), "batch_size")],
                      "status shows the new batch_size")
        log = kvd.wait_for_log(lambda t: "batch_size" in t and "max_connections" in t, since=off,
                               what="the reload log naming the changes")
        self.assertRegex(log, r"batch_size\D+100\D+5", "the log names old and new value:\n" + log)
        self.assertRegex(log, r"max_connections.*restart", "restart-only change is called out:\n" + log)
        self.assertEqual(str(kvd.config_get("server.max_connections")), "1024", "restart-only key must not change")
        with kvd.raw() as c:
            c.put(b"after-reload", b"1")

    def test_sighup_notifies_reloading_then_ready(self):
        kvd = self.server()
        mark = kvd.reload()
        i = kvd.wait_notification(lambda n: n == "RELOADING=1", since=mark)
        kvd.wait_notification(lambda n: n == "READY=1", since=i + 1)

    def test_sighup_with_broken_file_changes_nothing(self):
        kvd = self.server(durability={"batch_size": 100})
        for broken in ("[durability\nbatch_size = = 5\n",  # TOML syntax error
                       None):                              # valid TOML, out-of-range value
            if broken is None:
                kvd.write_config(durability={"mode": "batch", "batch_size": 0})
            else:
                kvd.write_config(text=broken)
            off = kvd.log_offset()
            kvd.reload()
            log = kvd.wait_for_log(lambda t: re.search(r"error", t, re.I), since=off,
                                   what="an error logged for the broken config")
            self.assertIn("kvd.toml", log)
            self.assertTrue(kvd.running())
            self.assertEqual(str(kvd.config_get("durability.batch_size")), "100")
            self.assertEqual(str(kvd.config_get("durability.mode")), "sync")
            with kvd.raw() as c:
                c.put(b"still-serving", b"1")
        # a good file afterwards is applied: the reload path still works
        kvd.write_config(durability={"batch_size": 7})
        kvd.reload()
        kvdtest.wait_until(lambda: str(kvd.config_get("durability.batch_size")) == "7", what="batch_size 7")


class StartupChecks(KvdTestCase):
    CASES = [
        # (name, table, line text, key named in the error)
        ("unknown key", "server", "bogus_key = 1", "bogus_key"),
        ("wrong type", "server", 'max_connections = "many"', "max_connections"),
        ("out of range", "durability", "batch_size = 0", "batch_size"),
        ("bad enum", "durability", 'mode = "sometimes"', "mode"),
        ("bad unit", "durability", 'flush_interval = "10 parsecs"', "flush_interval"),
    ]

    def bad_config_text(self, kvd, table, line):
        """The harness config with `line` added to `table`; returns (text, its line number)."""
        config = kvd.default_config()
        config.setdefault(table, {})
        text, where = kvdtest.render_toml(config)
        lines = text.splitlines()
        at = lines.index("[%s]" % table) + 1
        lines.insert(at, line)
        return "\n".join(lines) + "\n", at + 1

    def test_config_errors_name_key_and_line(self):
        for name, table, line, key in self.CASES:
            with self.subTest(name):
                kvd = self.server(start=False, subdir="cfg-" + name.replace(" ", "-"))
                text, lineno = self.bad_config_text(kvd, table, line)
                kvd.write_config(text=text)
                rc, log = kvd.start_expect_failure()
                self.assertNotEqual(rc, 0)
                self.assertIn(key, log)
                self.assertIn("kvd.toml", log)
                self.assertRegex(log, r"(:%d\b|line %d\b)" % (lineno, lineno), "line %d not named:\n%s" % (lineno, log))

    def test_check_config(self):
        kvd = self.server(start=False, durability={"batch_size": 321})
        p = subprocess.run([kvdtest.binary("KVD_BIN"), "--check-config", "--config", kvd.config_path],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("321", p.stdout)
        self.assertIn("batch_size", p.stdout)
        text, lineno = self.bad_config_text(kvd, "server", "bogus_key = 1")
        kvd.write_config(text=text)
        p = subprocess.run([kvdtest.binary("KVD_BIN"), "--check-config", "--config", kvd.config_path],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 2)
        self.assertIn("bogus_key", p.stdout + p.stderr)

    def test_second_kvd_on_same_socket_refuses(self):
        a = self.server()
        b = self.server(start=False, server={"socket": a.socket_path})
        rc, log = b.start_expect_failure()
        self.assertNotEqual(rc, 0)
        self.assertIn(a.socket_path, log)
        with a.raw() as c:  # the first one still owns its socket
            c.put(b"k", b"v")
        self.assertTrue(a.running())

    def test_stale_socket_is_replaced(self):
        kvd = self.server(start=False)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(kvd.socket_path)
        s.close()  # a socket file nobody listens on, as after kill -9
        kvd.start()
        with kvd.raw() as c:
            c.ping()

    def test_second_kvd_on_same_data_dir_refuses(self):
        a = self.server()
        b = self.server(start=False, storage={"wal_path": a.wal_path, "snapshot_path": a.snapshot_path})
        rc, log = b.start_expect_failure()
        self.assertNotEqual(rc, 0)
        self.assertTrue(a.wal_path in log or a.snapshot_path in log, "the refusal names the directory:\n" + log)
        with a.raw() as c:
            c.put(b"k", b"v")
            self.assertEqual(c.get(b"k"), b"v")


class Snapshots(KvdTestCase):
    def test_snapshot_then_restart_recovers_from_it_and_drops_covered_segments(self):
        kvd = self.server(storage={"segment_size": "64KiB"})
        values = {}
        with kvd.raw() as c:
            for chunk in range(4):  # 4 x 50 pipelined PUTs of 2 KiB: ~400 KiB of WAL
                frames = []
                for i in range(50):
                    key = b"s%03d" % (chunk * 50 + i)
                    values[key] = (value_for(key, self.seed) * 200)[:2048]
                    frames.append(encode_frame(Op.PUT, put_payload(key, values[key]), chunk * 50 + i + 1))
                c.send(b"".join(frames))
                for _ in frames:
                    self.assertEqual(c.recv_reply().status, Code.OK)
            last_lsn = c.flush().lsn
        before = kvd.wal_segments()
        self.assertGreaterEqual(len(before), 3, "precondition: several segments: %r" % before)

        r = kvd.kvctl("snapshot")
        self.assertEqual(r.rc, 0, r)
        lsns = [int(n) for n in re.findall(r"\d+", r.out) if int(n) >= last_lsn]
        self.assertTrue(lsns, "kvctl snapshot prints the snapshot LSN: %r" % r.out)
        snap_lsn = lsns[0]
        snap_name = "snap-%020d.kvs" % snap_lsn
        self.assertIn(snap_name, kvd.snapshots())

        def covered():  # segments whose every record is <= snap_lsn (all but the active one)
            segs = kvd.wal_segments()
            return [s for s, nxt in zip(segs, segs[1:]) if kvdtest.segment_first_lsn(nxt) - 1 <= snap_lsn]
        kvdtest.wait_until(lambda: not covered(), what="covered WAL segments to be deleted")
        self.assertLess(len(kvd.wal_segments()), len(before))

        with kvd.raw() as c:  # some writes after the snapshot: recovery = snapshot + WAL
            for i in range(10):
                key = b"after-%d" % i
                values[key] = b"x%d" % i
                c.put(key, values[key])
        kvd.kill(signal.SIGKILL)
        kvd.start()
        status = kvd.status()
        recovery = kvdtest.find_key(status, "recovery")
        self.assertTrue(recovery, "status lacks the recovery report: %r" % status)
        self.assertTrue(any(snap_name in s for s in kvdtest.json_strings(recovery)),
                        "recovery report does not name %s: %r" % (snap_name, recovery))
        with kvd.raw() as c:
            self.assertEqual(c.count(), len(values))
            for k, v in values.items():
                self.assertEqual(c.get(k), v, k)


class BatchMode(KvdTestCase):
    def test_flush_durable_lsn_covers_earlier_writes(self):
        kvd = self.server(durability={"mode": "batch", "batch_size": 100000, "flush_interval": "1m"})
        with kvd.raw() as c:
            lsns = [c.put(b"b%d" % i, b"v").lsn for i in range(20)]
            self.assertEqual(lsns, sorted(lsns))
            r = c.flush()
            self.assertGreaterEqual(r.lsn, lsns[-1], "FLUSH's LSN is the durable LSN, covering every write")
            self.assertGreaterEqual(r.durable_lsn, lsns[-1])
            # The durable flag asks for a durable ack even in batch mode.
            r = c.call(Op.PUT, put_payload(b"durable", b"1"), FLAG_DURABLE)
            self.assertEqual(r.status, Code.OK)
            self.assertGreaterEqual(r.durable_lsn, r.lsn)
            durable = [v for v in kvdtest.find_key(c.status(), "durable_lsn") if isinstance(v, int)]
            self.assertTrue(durable and max(durable) >= r.lsn, "status durable_lsn: %r" % durable)
        kvd.kill(signal.SIGKILL)
        kvd.start()
        with kvd.raw() as c:
            self.assertEqual(c.count(b"b"), 20)
            self.assertEqual(c.get(b"durable"), b"1")


if __name__ == "__main__":
    kvdtest.main()
