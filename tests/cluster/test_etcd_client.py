"""EtcdClient and LeaderLease (daemon/cluster/) against a real 3-member etcd
cluster on loopback: runs each case of the etcd_cases doctest program in its
own process, restarting whatever etcd member a case killed before the next.

Environment: ETCD_CASES_BIN (set by ctest), ETCD_BIN (default /usr/bin/etcd).
Exits 77 (skipped; CI counts that as a failure) when etcd is not installed.
"""

import os
import re
import subprocess
import sys
import unittest

import etcd_cluster
import kvdtest

CASES_BIN = os.environ.get("ETCD_CASES_BIN", "")

# doctest name filters (a comma would split a filter, hence the wildcards).
CASES = {
    "kv": "kv: put*",
    "lease": "lease: a key on an unrenewed lease*",
    "watch": "watch: puts and deletes*",
    "failover": "failover: with the first member killed*",
    "timeout": "timeout: a member that accepts*",
    "fork": "fork: a child that closes*",
    "elect": "leader lease: of two campaigners*",
    "cutoff": "leader lease: a leader cut off*",
    "etcd_leader_kill": "etcd leader kill: the leader lease*",
    "takeover": "etcd leader kill together with the lease holder*",
    "holder_kill": "holder killed (no etcd fault)*",
}


class EtcdClientTest(unittest.TestCase):
    cluster = None

    @classmethod
    def setUpClass(cls):
        if not etcd_cluster.etcd_available():
            raise unittest.SkipTest("etcd is not installed (scripts/install-deps.sh installs etcd-server)")
        assert CASES_BIN and os.access(CASES_BIN, os.X_OK), "ETCD_CASES_BIN is not set (run through ctest)"
        cls.cluster = etcd_cluster.EtcdCluster()
        cls.cluster.start()

    @classmethod
    def tearDownClass(cls):
        if cls.cluster is not None:
            cls.cluster.stop()

    def setUp(self):
        # Whatever the previous case killed comes back first.
        for m in self.cluster.members:
            if not m.alive():
                if m.proc is not None:
                    m.proc.wait()
                self.cluster.restart(m.name)
        self.cluster.wait_healthy()

    def run_case(self, key):
        env = dict(os.environ,
                   KVD_ETCD_ENDPOINTS=",".join(self.cluster.endpoints()),
                   KVD_ETCD_PIDS=",".join(str(m.proc.pid) for m in self.cluster.members))
        p = subprocess.run([CASES_BIN, "--test-case=" + CASES[key], "--no-version"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        out = p.stdout.decode(errors="replace")
        print("\n---- %s ----\n%s" % (key, out))
        self.assertEqual(p.returncode, 0, out)
        # A filter that matches nothing would pass silently.
        self.assertRegex(out, r"test cases:\s+1 \|\s+1 passed", "case %s did not run" % key)
        return out

    def test_kv_and_cas(self):
        self.run_case("kv")

    def test_lease_expiry(self):
        self.run_case("lease")

    def test_watch(self):
        self.run_case("watch")

    def test_endpoint_failover(self):
        self.run_case("failover")
        # The case killed one etcd follower: it must really be down now.
        self.assertEqual(sum(1 for m in self.cluster.members if not m.alive()), 1)

    def test_fork_child_leaves_transfers_alone(self):
        self.run_case("fork")

    def test_request_timeout(self):
        self.run_case("timeout")

    def test_leader_lease_election_and_switchover(self):
        self.run_case("elect")

    def test_leader_lease_lost_before_takeover(self):
        self.run_case("cutoff")

    def test_etcd_leader_kill_no_failover(self):
        before = self.cluster.leader()
        self.run_case("etcd_leader_kill")
        self.cluster.wait_for(self.cluster.leader, "a new etcd leader")
        self.assertNotEqual(self.cluster.leader(), before)

    def test_takeover_time_after_etcd_leader_kill(self):
        out = self.run_case("takeover")
        m = re.search(r"takeover_seconds=([0-9.]+) since_last_renewal=([0-9.]+)", out)
        self.assertIsNotNone(m, out)
        print("leader-key takeover after an etcd leader kill (ttl 5 s): %s s" % m.group(1))

    def test_takeover_time_after_holder_kill(self):
        out = self.run_case("holder_kill")
        m = re.search(r"takeover_seconds=([0-9.]+) since_last_renewal=([0-9.]+)", out)
        self.assertIsNotNone(m, out)
        print("leader-key takeover after the holder died (ttl 5 s): %s s" % m.group(1))


if __name__ == "__main__":
    kvdtest.main(total_timeout=600)
