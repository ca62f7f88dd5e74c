"""The Prometheus endpoint (issue 12, section 6): `[metrics] listen` serves
/metrics on loopback; the text passes `promtool check metrics` (Debian
package prometheus; exit 77 without it); the values agree with what the test
itself sent (its own count of each operation, the keys it left, the LSN its
FLUSH returned, the snapshot it asked for), every histogram counts what its
counter counts, and writes refused after a failed fdatasync are counted.
Off by default: no listener, no log line."""

import re
import shutil
import subprocess
import sys
import urllib.request

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, TIMEOUT  # noqa: E402
from kvd_proto import OK, NOT_FOUND, WRITES_REFUSED  # noqa: E402

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$')


def parse_metrics(text):
    """{(name, frozenset(labels.items())): float} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        if m is None:
            raise AssertionError("unparsable metrics line: %r" % line)
        labels = {}
        if m.group(2):
            for part in re.findall(r'(\w+)="([^"]*)"', m.group(2)):
                labels[part[0]] = part[1]
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return out


def value(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    if key not in samples:
        raise AssertionError("no sample %s%r" % (name, labels))
    return samples[key]


class Metrics(KvdTestCase):
    def metrics_server(self, **overrides):
        kvd = self.server(metrics={"listen": "127.0.0.1:0"}, **overrides)
        log = kvd.wait_for_log(lambda t: "metrics on http://" in t, what="the metrics endpoint's log line")
        m = re.search(r"metrics on (http://127\.0\.0\.1:(\d+)/metrics)", log)
        self.assertIsNotNone(m, log)
        self.assertNotEqual(m.group(2), "0")
        return kvd, m.group(1)

    def scrape(self, url):
        with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
            self.assertEqual(r.status, 200)
            text = r.read().decode()
        return text

    def promtool_check(self, text):
        if not shutil.which(PROMTOOL):
            print("SKIP: promtool not found (Debian package prometheus)")
            self.skipTest("promtool missing")
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, "promtool check metrics: %s%s" % (p.stdout.decode(), p.stderr.decode()))

    def test_values_match_the_traffic_sent(self):
        kvd, url = self.metrics_server()
        sent = {"put": 0, "get": 0, "del": 0, "batch": 0, "flush": 0, "snapshot": 0, "count": 0}
        model = {}
        with kvd.client() as c:
            for i in range(self.rng.randrange(40, 120)):
                key = b"k%03d" % self.rng.randrange(60)
                r = c.put(key, b"v%d" % i, durable=self.rng.random() < 0.2)
                self.assertEqual(r.status, OK)
                sent["put"] += 1
                model[key] = b"v%d" % i
            for _ in range(self.rng.randrange(10, 50)):
                key = b"k%03d" % self.rng.randrange(80)
                r = c.get(key)
                self.assertEqual(r.status, OK if key in model else NOT_FOUND)
                sent["get"] += 1
            for _ in range(self.rng.randrange(1, 10)):
                key = b"k%03d" % self.rng.randrange(60)
                r = c.delete(key)
                self.assertEqual(r.status, OK if key in model else NOT_FOUND)
                model.pop(key, None)
                sent["del"] += 1
            self.assertEqual(c.batch([("put", b"b1", b"x"), ("put", b"b2", b"y"), ("del", b"b1")]).status, OK)
            model[b"b2"] = b"y"
            sent["batch"] += 1
            self.assertEqual(c.count(b"").check().value, len(model))
            sent["count"] += 1
            self.assertEqual(c.snapshot().status, OK)
            sent["snapshot"] += 1
            flush = c.flush().check()
            sent["flush"] += 1
            st = c.status().check().json

            text = self.scrape(url)
            self.promtool_check(text)
            s = parse_metrics(text)
            # Counters against the test's own count (STATUS: the one it sent).
            for op, n in sent.items():
                self.assertEqual(value(s, "kvd_requests_total", op=op), n, op)
                # Every reply was written before the scrape: each request is in its op's histogram.
                self.assertEqual(value(s, "kvd_request_duration_seconds_count", op=op), n, op)
                self.assertEqual(value(s, "kvd_request_duration_seconds_bucket", op=op, le="+Inf"), n, op)
            self.assertEqual(value(s, "kvd_requests_total", op="status"), 1)
            self.assertGreater(value(s, "kvd_request_duration_seconds_sum", op="put"), 0)
            self.assertEqual(value(s, "kvd_keys"), len(model))
            self.assertEqual(value(s, "kvd_durable_lsn"), flush.lsn)
            self.assertEqual(value(s, "kvd_last_lsn"), flush.lsn)  # one LSN per PUT, DEL and BATCH
            writes = sent["put"] + sent["del"] + sent["batch"]
            self.assertEqual(flush.lsn, writes)
            self.assertEqual(value(s, "kvd_connections"), 1)
            self.assertEqual(value(s, "kvd_connections_total"), 1)
            self.assertEqual(value(s, "kvd_writes_refused_total"), 0)
            self.assertEqual(value(s, "kvd_writes_refusing"), 0)
            self.assertEqual(value(s, "kvd_request_errors_total"), 0)
            self.assertEqual(value(s, "kvd_snapshots_total", result="ok"), 1)
            self.assertEqual(value(s, "kvd_snapshots_total", result="failed"), 0)
            self.assertEqual(value(s, "kvd_snapshot_duration_seconds_count"), 1)
            # Group commit: the histograms count what STATUS counts.
            self.assertEqual(value(s, "kvd_commit_group_records_count"), st["group_commit"]["groups"])
            self.assertEqual(value(s, "kvd_commit_group_records_sum"), st["group_commit"]["records"])
            self.assertEqual(value(s, "kvd_commit_group_records_sum"), writes)  # sync mode: every write synced
            self.assertGreaterEqual(value(s, "kvd_fdatasync_duration_seconds_count"), st["group_commit"]["groups"])
            self.assertEqual(value(s, "kvd_wal_segments"), st["wal"]["segments"])
            self.assertGreater(value(s, "kvd_resident_memory_bytes"), 0)

        # A second scrape sees the connection gone and the new request.
        with kvd.client() as c:
            self.assertEqual(c.put(b"late", b"1").status, OK)
        s = parse_metrics(self.scrape(url))
        self.assertEqual(value(s, "kvd_requests_total", op="put"), sent["put"] + 1)
        self.assertEqual(value(s, "kvd_keys"), len(model) + 1)
        self.assertEqual(value(s, "kvd_connections_total"), 2)
        # SIGTERM: the endpoint stops (its thread joined, the async closed) and kvd exits cleanly.
        self.assertEqual(kvd.terminate_and_wait(), 0, kvd.log_tail())

    def test_scrapes_during_traffic_and_snapshots(self):
        """Scrapes race writes and forked snapshots: counters never go back,
        the endpoint keeps answering across forks, and the end agrees."""
        import threading
        kvd, url = self.metrics_server()
        done, errors, puts = threading.Event(), [], [0]

        def writer():
            try:
                with kvd.client() as c:
                    while not done.is_set():
                        c.put(b"w%d" % (puts[0] % 50), b"x").check()
                        puts[0] += 1
            except Exception as e:  # reported below
                errors.append(e)

        t = threading.Thread(target=writer)
        t.start()
        last = 0
        try:
            with kvd.client() as c:
                for i in range(30):
                    if i % 10 == 0:
                        c.snapshot().check()
                    n = value(parse_metrics(self.scrape(url)), "kvd_requests_total", op="put")
                    self.assertGreaterEqual(n, last)
                    last = n
        finally:
            done.set()
            t.join(TIMEOUT)
        self.assertEqual(errors, [])
        s = parse_metrics(self.scrape(url))
        self.assertEqual(value(s, "kvd_requests_total", op="put"), puts[0])
        self.assertEqual(value(s, "kvd_request_duration_seconds_count", op="put"), puts[0])
        self.assertEqual(value(s, "kvd_snapshots_total", result="ok"), 3)

    def test_off_by_default(self):
        kvd = self.server()
        with kvd.client() as c:
            self.assertEqual(c.config_get(b"metrics.listen").check().json, {"metrics.listen": ""})
        self.assertNotIn("metrics on", kvd.log_of_run())

    def test_bad_listen_address_is_a_config_error(self):
        kvd = self.server(start=False, metrics={"listen": "localhost"})
        p = subprocess.run([kvdtest.binary("KVD_BIN"), "--check-config", "--config", kvd.config_path],
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 2, p)
        self.assertRegex(p.stderr.decode(), r"kvd\.toml:\d+: metrics\.listen: expected HOST:PORT")

    def test_a_port_in_use_stops_start_up_with_the_key(self):
        import socket
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            kvd = self.server(start=False, metrics={"listen": "127.0.0.1:%d" % port})
            rc, log = kvd.start_expect_failure()
        self.assertNotEqual(rc, 0)
        self.assertIn('metrics.listen = "127.0.0.1:%d": cannot listen' % port, log)

    def test_refused_writes_are_counted(self):
        if not fault_env_supported():
            print("SKIP: kvd has no --fault-env (configure with -DKVD_FAULT_INJECTION=ON)")
            self.skipTest("kvd built without KVD_FAULT_INJECTION")
        kvd, url = self.metrics_server(extra_args=["--fault-env", "fail-sync-after=12"])
        refused = 0
        with kvd.client() as c:
            for i in range(60):
                r = c.put(b"k%d" % i, b"v")
                self.assertIn(r.status, (OK, WRITES_REFUSED))
                refused += r.status == WRITES_REFUSED
            self.assertGreater(refused, 0, "the injected fdatasync failure never hit")
            s = parse_metrics(self.scrape(url))
        self.assertEqual(value(s, "kvd_writes_refused_total"), refused)
        self.assertEqual(value(s, "kvd_writes_refusing"), 1)
        self.assertEqual(value(s, "kvd_requests_total", op="put"), 60)
        kvd.kill()  # after a failed fdatasync a clean shutdown cannot sync


def fault_env_supported():
    p = subprocess.run([kvdtest.binary("KVD_BIN"), "--help"], capture_output=True, timeout=TIMEOUT)
    return b"fail-sync-after" in p.stdout


if __name__ == "__main__":
    kvdtest.main()
