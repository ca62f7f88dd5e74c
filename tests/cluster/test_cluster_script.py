#!/usr/bin/env python3
"""scripts/cluster.sh, as README "Run a three-node cluster" uses it: start a
three-member etcd and kvd a, b, c in a temp dir, write through --cluster,
kill -9 the primary, write again on the new one, revive the old primary (it
rejoins as a replica with every write), switch over to it, stop. Every
process the script started is gone afterwards."""

import json
import os
import socket
import subprocess
import tempfile
import time
import unittest

import kvdtest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "cluster.sh")
ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")


def free_base():
    """A port p such that p+0..2, p+10..12 and p+20..22 are free on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 22 > 65000:
            continue
        held = []
        try:
            for off in (0, 1, 2, 10, 11, 12, 20, 21, 22):
                t = socket.socket()
                held.append(t)
                t.bind(("127.0.0.1", base + off))
            return base
        except OSError:
            continue
        finally:
            for t in held:
                t.close()
    raise RuntimeError("no free block of ports")


class ClusterScript(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(ETCD_BIN):
            raise unittest.SkipTest("etcd not installed (scripts/install-deps.sh installs etcd-server)")
        self.tmp = tempfile.mkdtemp(prefix="kvd-cluster-sh-")
        # KVD_BUILD wants DIR/daemon/kvd and DIR/ctl/kvctl: the binaries under test.
        self.build = os.path.join(self.tmp, "build")
        os.makedirs(os.path.join(self.build, "daemon"))
        os.makedirs(os.path.join(self.build, "ctl"))
        os.symlink(kvdtest.binary("KVD_BIN"), os.path.join(self.build, "daemon", "kvd"))
        os.symlink(kvdtest.binary("KVCTL_BIN"), os.path.join(self.build, "ctl", "kvctl"))
        self.base = free_base()
        self.env = dict(os.environ, KVD_BUILD=self.build, KVD_CLUSTER_PORT=str(self.base), ETCD_BIN=ETCD_BIN)
        self.endpoints = ",".join("http://127.0.0.1:%d" % (self.base + i) for i in range(3))
        self.started = False

    def tearDown(self):
        if self.started:
            self.sh("stop", check=False)
        if not os.environ.get("KVD_KEEP_TMP"):
            subprocess.run(["rm", "-rf", self.tmp])

    def sh(self, *args, check=True):
        r = subprocess.run(["bash", SCRIPT, *args], cwd=self.tmp, env=self.env, capture_output=True,
                           timeout=120)
        if check:
            self.assertEqual(r.returncode, 0, "cluster.sh %s: %s %s" % (args, r.stdout.decode(), r.stderr.decode()))
        return r.stdout.decode()

    def kvctl(self, *args):
        return subprocess.run([os.path.join(self.build, "ctl", "kvctl"), *args], cwd=self.tmp,
                              capture_output=True, timeout=30)

    def via_cluster(self, *args):
        return self.kvctl("--cluster", self.endpoints, "--cluster-prefix", "/kvd/demo", *args)

    def status(self):
        r = self.kvctl("cluster", "status", "--cluster", self.endpoints, "--prefix", "/kvd/demo", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def pids(self):
        found = []
        for root, _, files in os.walk(os.path.join(self.tmp, "data", "cluster")):
            for f in files:
                if f.endswith(".pid"):
                    with open(os.path.join(root, f)) as fh:
                        found.append(int(fh.read()))
        return found

    def test_start_failover_revive_switchover_stop(self):
        self.started = True
        out = self.sh("start")
        self.assertIn("primary:", out)
        pids = self.pids()
        self.assertEqual(len(pids), 6, "three etcd members and three kvd")

        r = self.via_cluster("put", "greeting", "hello")
        self.assertEqual(r.returncode, 0, "the first write right after start: %s %s" % (r.stdout, r.stderr))
        first = self.status()["leader"]["name"]
        epoch = self.status()["leader"]["epoch"]

        self.sh("kill", first)
        deadline = time.monotonic() + 30
        while self.via_cluster("put", "after", "failover").returncode != 0:
            self.assertLess(time.monotonic(), deadline, "no write acknowledged within 30 s of the kill")
            time.sleep(0.1)
        st = self.status()
        self.assertNotEqual(st["leader"]["name"], first)
        self.assertGreater(st["leader"]["epoch"], epoch)
        kvdtest.wait_until(lambda: self.via_cluster("get", "greeting").stdout.strip() == b"hello", timeout=30,
                           what="the write before the kill on the new primary")

        self.sh("revive", first)
        sock = os.path.join(self.tmp, "data", "cluster", first, "kvd.sock")
        kvdtest.wait_until(lambda: self.kvctl("--socket", sock, "get", "after").stdout.strip() == b"failover",
                           timeout=30, what="the revived node has the write made while it was down")
        r = self.kvctl("switchover", "--to", first, "--cluster", self.endpoints, "--prefix", "/kvd/demo")
        # The revived node may still be catching up, so the primary may give the handover up (kvctl
        # exits 3 after its timeout); a retry once it has every write succeeds.
        deadline = time.monotonic() + 30
        while r.returncode != 0:
            self.assertLess(time.monotonic(), deadline, "switchover: %s %s" % (r.stdout, r.stderr))
            time.sleep(0.5)
            r = self.kvctl("switchover", "--to", first, "--cluster", self.endpoints, "--prefix", "/kvd/demo")
        self.assertIn(b"OK", r.stdout)
        self.assertEqual(self.status()["leader"]["name"], first)
        # A new primary answers reads once its sync member's heartbeats give
        # it a read lease (docs/cluster.md §3.5): until then it says retry.
        kvdtest.wait_until(lambda: self.via_cluster("get", "after").stdout.strip() == b"failover", timeout=30,
                           what="the new primary serves the write made before the switchover")

        pids = self.pids()
        self.sh("stop")
        self.started = False
        for pid in pids:
            self.assertFalse(os.path.exists("/proc/%d" % pid) and
                             open("/proc/%d/stat" % pid).read().split()[2] != "Z",
                             "pid %d still running after stop" % pid)
        self.assertEqual(self.pids(), [], "stop removes the pid files")


if __name__ == "__main__":
    kvdtest.main(total_timeout=300)
