"""Replication metrics and events (docs/metrics.md "Replication"): a primary
and a replica, each with the Prometheus endpoint on loopback, the replica's
link through the fault proxy. The text passes `promtool check metrics`; the
values follow what happens: role and epoch, per-replica state and LSNs, lag,
connects and disconnects across a cut, and a catch-up from the WAL on disk
after the replica was away for more than the primary's in-memory feed."""

import re
import sys
import urllib.request

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, TIMEOUT  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402
from test_metrics import parse_metrics, value, PROMTOOL  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402


def repl_status(server):
    return server.status()["replication"]


class ReplicationMetrics(KvdTestCase):
    def metrics_url(self, kvd, since=0):
        line = kvd.wait_for_log(lambda t: "metrics on http://" in t, since=since, what="the metrics endpoint")
        m = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", line)
        self.assertIsNotNone(m, line)
        return m.group(1)

    def scrape(self, url):
        with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
            text = r.read().decode()
        if not shutil.which(PROMTOOL):
            print("SKIP: promtool not found (Debian package prometheus)")
            self.skipTest("promtool missing")
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, "promtool check metrics: %s%s" % (p.stdout.decode(), p.stderr.decode()))
        return parse_metrics(text)

    def test_metrics_follow_connects_cuts_lag_and_catch_up(self):
        p = self.server(metrics={"listen": "127.0.0.1:0"}, replication={"name": "p", "listen": "127.0.0.1:0"})
        purl = self.metrics_url(p)
        proxy = FaultProxy(repl_status(p)["port"])
        self.addCleanup(proxy.close)
        r = self.server(metrics={"listen": "127.0.0.1:0"},
                        replication={"name": "r1", "role": "replica", "primary": "127.0.0.1:%d" % proxy.port})
        rurl = self.metrics_url(r)
        kvdtest.wait_until(lambda: repl_status(r)["receiver"]["state"] == "streaming", what="streaming")
        with p.client() as c:
            for i in range(20):
                c.put(b"k%d" % i, b"v").check()
        last = p.status()["last_lsn"]
        kvdtest.wait_until(lambda: value(self.scrape(purl), "kvd_replica_durable_lsn", replica="r1") == last,
                           what="the replica's ACK in the metrics")
        m = self.scrape(purl)
        self.assertEqual(value(m, "kvd_role", role="primary"), 1)
        self.assertEqual(value(m, "kvd_role", role="replica"), 0)
        self.assertEqual(value(m, "kvd_epoch"), p.status()["epoch"])
        self.assertEqual(value(m, "kvd_replicas", state="streaming"), 1)
        self.assertEqual(value(m, "kvd_replicas", state="catching_up"), 0)
        self.assertEqual(value(m, "kvd_replica_state", replica="r1", state="streaming"), 1)
        self.assertEqual(value(m, "kvd_replica_sent_lsn", replica="r1"), last)
        self.assertEqual(value(m, "kvd_replica_lag_bytes", replica="r1"), 0)
        self.assertEqual(value(m, "kvd_replica_lag_seconds", replica="r1"), 0)
        self.assertEqual(value(m, "kvd_replica_connects_total"), 1)
        self.assertEqual(value(m, "kvd_replica_disconnects_total"), 0)
        self.assertEqual(value(m, "kvd_replica_catchups_started_total"), 0)
        self.assertEqual(value(m, "kvd_replication_streaming"), 0)  # a primary has no link of its own
        kvdtest.wait_until(lambda: value(self.scrape(rurl), "kvd_replication_received_records_total") == last,
                           what="the replica's received records")
        rm = self.scrape(rurl)
        self.assertEqual(value(rm, "kvd_role", role="replica"), 1)
        self.assertEqual(value(rm, "kvd_role", role="primary"), 0)
        self.assertEqual(value(rm, "kvd_replication_streaming"), 1)
        self.assertEqual(value(rm, "kvd_replication_connects_total"), 1)
        self.assertEqual(value(rm, "kvd_replication_disconnects_total"), 0)
        self.assertEqual(value(rm, "kvd_replication_primary_last_lsn"), last)
        self.assertEqual(value(rm, "kvd_applied_lsn"), last)
        self.assertEqual(value(rm, "kvd_replication_lag_seconds"), 0)
        self.assertNotIn("kvd_replica_state", {name for name, _ in rm})  # no replicas of its own
        self.assertIn("role: primary -> replica", r.log_text())

        # A stall: the primary's lag grows.
        proxy.stall()
        with p.client() as c:
            c.put(b"during", b"stall").check()
        kvdtest.wait_until(lambda: value(self.scrape(purl), "kvd_replica_lag_seconds", replica="r1") >= 0.3,
                           what="lag in seconds during a stall")
        proxy.resume()
        # A cut: both sides count it, and the replica comes back.
        proxy.cut()
        kvdtest.wait_until(lambda: value(self.scrape(rurl), "kvd_replication_connects_total") == 2
                           and value(self.scrape(rurl), "kvd_replication_streaming") == 1, what="the reconnect")
        self.assertEqual(value(self.scrape(rurl), "kvd_replication_disconnects_total"), 1)
        kvdtest.wait_until(lambda: value(self.scrape(purl), "kvd_replica_connects_total") == 2
                           and value(self.scrape(purl), "kvd_replica_disconnects_total") == 1,
                           what="the primary to count the cut")

        # Away for more than the primary's 4 MiB in-memory feed: catching up
        # from the WAL on disk, counted when it starts and when it finishes.
        r.stop()
        with p.client() as c:
            for i in range(48):
                c.put(b"big%02d" % i, b"x" * 100_000).check()
        mark = p.log_offset()
        r.start()
        p.wait_for_log(lambda t: "replica r1" in t and "catching up from the WAL on disk" in t, since=mark)
        p.wait_for_log(lambda t: "replica r1 caught up" in t, since=mark)
        kvdtest.wait_until(lambda: value(self.scrape(purl), "kvd_replica_catchups_finished_total") == 1,
                           what="the finished catch-up in the metrics")
        m = self.scrape(purl)
        self.assertEqual(value(m, "kvd_replica_catchups_started_total"), 1)
        self.assertEqual(value(m, "kvd_replica_connects_total"), 3)
        self.assertEqual(value(m, "kvd_replica_disconnects_total"), 2)


if __name__ == "__main__":
    kvdtest.main()
