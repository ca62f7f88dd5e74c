"""Three kvd nodes under [cluster] against a real etcd (etcd_cluster.py),
for the cluster coordination tests. Python 3 standard library only.

    with EtcdCluster() as etcd:
        nodes = ClusterNodes(test, etcd, ["a", "b", "c"])
        p = nodes.wait_primary()
"""

import json
import time
import unittest

import kvdtest
from etcd_cluster import EtcdCluster, _free_ports, b64, etcd_available, gateway

NOT_PRIMARY = 12  # kvd::Code::kNotPrimary
FENCED = 13       # kvd::Code::kFenced


class ClusterNodes:
    def __init__(self, test, etcd, names, prefix="/kvd/test", ttl="5s", sync_replicas=0, cluster_keys=None,
                 extra_args=()):
        """cluster_keys: more [cluster] keys for every node (the etcd TLS files); extra_args: more kvd
        arguments for every node (--fault-cluster, test builds)."""
        self.test, self.etcd, self.prefix = test, etcd, prefix
        ports = _free_ports(len(names))
        self.nodes = {}
        for name, port in zip(names, ports):
            self.nodes[name] = test.server(
                start=False, subdir=name, extra_args=extra_args,
                cluster=dict({"etcd_endpoints": ",".join(etcd.endpoints()), "prefix": prefix, "ttl": ttl},
                             **(cluster_keys or {})),
                replication={"name": name, "listen": "127.0.0.1:%d" % port, "sync_replicas": sync_replicas},
                snapshot={"interval": "0", "wal_growth_percent": 0, "wal_bytes": 0})
        for n in self.nodes.values():
            n.start()

    def __getitem__(self, name):
        return self.nodes[name]

    def running(self):
        return {k: v for k, v in self.nodes.items() if v.running()}

    def role(self, name):
        try:
            return self.nodes[name].status()["role"]
        except (OSError, kvdtest.KvdError, ConnectionError):
            return None

    def primaries(self, exclude=()):
        return [k for k in self.running() if k not in exclude and self.role(k) == "primary"]

    def wait_primary(self, exclude=(), timeout=30):
        """The name of the one primary among the running nodes (not in exclude)."""
        found = []

        def one():
            found[:] = self.primaries(exclude)
            return len(found) == 1
        kvdtest.wait_until(one, timeout=timeout, what="exactly one primary")
        return found[0]

    def wait_streaming(self, primary, timeout=30):
        """Every other running node replicates from `primary` and streams."""
        port = self.nodes[primary].config["replication"]["listen"]

        def ok():
            for k, n in self.running().items():
                if k == primary:
                    continue
                r = n.status().get("replication", {})
                if r.get("primary") != port or r.get("receiver", {}).get("state") != "streaming":
                    return False
            return True
        kvdtest.wait_until(ok, timeout=timeout, what="replicas streaming from " + primary)

    def etcd_get(self, key):
        """(value, create_revision) of key in etcd, or (None, 0)."""
        r = gateway(self.etcd.endpoints(only_alive=True)[0], "/v3/kv/range", {"key": b64(self.prefix + key)},
                    context=getattr(self.etcd, "ssl_context", None))
        kvs = r.get("kvs", [])
        if not kvs:
            return None, 0
        import base64
        return base64.b64decode(kvs[0]["value"]).decode(), int(kvs[0]["create_revision"])

    def member(self, name):
        v, _ = self.etcd_get("/members/" + name)
        return json.loads(v) if v is not None else None

    def wait_converged(self, primary, timeout=60):
        p = self.nodes[primary]
        last = p.status()["last_lsn"]
        with p.client() as c:
            expected = dict(c.scan_all())
        for k, n in self.running().items():
            kvdtest.wait_until(lambda: n.status()["applied_lsn"] >= last, timeout=timeout,
                               what="%s to apply LSN %d" % (k, last))
            with n.client() as c:
                self.test.assertEqual(dict(c.scan_all()), expected, "%s differs from the primary %s" % (k, primary))
        return expected


def first_ack(nodes, names, key, value, timeout=30):
    """Puts key on each of names in turn until one acknowledges; returns
    (name, seconds waited)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        for name in names:
            try:
                with nodes[name].client(timeout=2) as c:
                    r = c.put(key, value)
                    if r.status == 0:
                        return name, time.monotonic() - start
            except (OSError, ConnectionError):
                pass
        time.sleep(0.01)
    raise AssertionError("no node acknowledged a write within %ds" % timeout)


class Ledger:
    """Writer threads putting unique keys on one node; every acknowledged
    write is kept (key -> value). A refusal or a lost connection ends a
    writer: what it had not been told OK was never acknowledged."""

    def __init__(self, server, n=4, tag=b"w"):
        import threading
        self.server, self.n, self.tag = server, n, tag
        self.lock = threading.Lock()
        self.acked = {}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(t,)) for t in range(n)]

    def _run(self, t):
        i = 0
        try:
            with self.server.client(timeout=20) as c:
                while not self.stop.is_set():
                    key = b"%s%d:%08d" % (self.tag, t, i)
                    value = b"v%d-%d" % (t, i)
                    if c.put(key, value).status != 0:
                        return
                    with self.lock:
                        self.acked[key] = value
                    i += 1
        except (OSError, ConnectionError):
            return

    def start(self):
        for th in self.threads:
            th.start()
        return self

    def count(self):
        with self.lock:
            return len(self.acked)

    def join(self):
        self.stop.set()
        for th in self.threads:
            th.join()

    def lost(self, data):
        """The acknowledged writes missing (or different) in data."""
        return sorted(k for k, v in self.acked.items() if data.get(k) != v)


@unittest.skipUnless(etcd_available(), "etcd is not installed (scripts/install-deps.sh)")
class EtcdTestCase(kvdtest.KvdTestCase):
    """A test with a real three-member etcd (self.etcd), started per test."""

    def setUp(self):
        super().setUp()
        self.etcd = EtcdCluster()
        self.etcd.start()

    def tearDown(self):
        self.etcd.stop()


def published_sync_members(nodes, primary):
    """The members of the sync set `primary` published for its epoch, once
    it has published one with a single member."""
    epoch = nodes[primary].status()["epoch"]
    got = []

    def published():
        v, _ = nodes.etcd_get("/sync")
        v = json.loads(v) if v is not None else None
        if v is None or v["epoch"] != epoch or len(v["members"]) != 1:
            return False
        got[:] = v["members"]
        return True
    kvdtest.wait_until(published, what="the sync set of epoch %d" % epoch)
    return got


def published_set(nodes, primary, size):
    """The sorted members of the sync set `primary` published for its epoch,
    once it has `size` of them and says sync_replicas = size."""
    epoch = nodes[primary].status()["epoch"]
    got = []

    def published():
        v, _ = nodes.etcd_get("/sync")
        v = json.loads(v) if v is not None else None
        if v is None or v["epoch"] != epoch or len(v["members"]) != size or v["sync_replicas"] != size:
            return False
        got[:] = v["members"]
        return True
    kvdtest.wait_until(published, what="a sync set of %d for epoch %d" % (size, epoch))
    return sorted(got)


def read_all(server):
    """Everything on a primary, once it has a read lease from its sync
    members (docs/cluster.md §3.5; until then it answers Fenced: retry)."""
    got = []

    def read():
        with server.client() as c:
            if c.scan().status == FENCED:
                return False
        with server.client() as c:
            got[:] = [dict(c.scan_all())]
        return True
    kvdtest.wait_until(read, what="a read on the new primary")
    return got[0]
