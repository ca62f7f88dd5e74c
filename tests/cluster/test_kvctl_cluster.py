"""kvctl's cluster side against a real 3-member etcd (etcd_cluster.py) and
real kvd processes: `kvctl cluster status`, `kvctl switchover --to` and
`kvctl --cluster` routing.

The test writes the keys of docs/cluster.md §2 itself (leader on a lease,
members/<name>, sync) and plays the daemons' part in a switchover (it moves
the leader key when the switchover key appears), so kvctl's side is proven
independently of the coordinator. Follow-once is driven by a fake replica
(a socket answering writes with NotPrimary ... primary_address=PATH) in
front of a real kvd primary.

Environment: KVD_BIN, KVCTL_BIN (set by ctest), ETCD_BIN. Exits 77 (skipped)
without etcd.
"""

import json
import os
import re
import socket
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True
import etcd_cluster  # noqa: E402
import kvd_proto  # noqa: E402
import kvdtest  # noqa: E402
from etcd_cluster import b64, gateway  # noqa: E402
from kvdtest import KvdTestCase, TIMEOUT, run_kvctl  # noqa: E402


def now_ms():
    return int(time.time() * 1000)


def member_json(name, address, role, durable, applied=None, epoch=0, updated_ms=None):
    return json.dumps({"name": name, "address": address, "repl_address": "127.0.0.1:%d" % (7000 + ord(name[0])),
                       "role": role, "epoch": epoch, "durable_lsn": durable,
                       "applied_lsn": durable if applied is None else applied,
                       "updated_ms": now_ms() if updated_ms is None else updated_ms})


class FakeReplica:
    """A Unix socket that answers PING with OK and every other request with
    NotPrimary and `message` (as a replica refuses writes), counting the
    requests it refused."""

    def __init__(self, path, message):
        self.path, self.message = path, message.encode()
        self.refused = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    buf += data
                    while True:
                        n = kvd_proto.split_frame(buf, header_bytes=kvd_proto.REQUEST_HEADER.size)
                        if n is None:
                            break
                        opcode, _flags, rid, _payload = kvd_proto.decode_request(buf[:n])
                        buf = buf[n:]
                        if opcode == kvd_proto.OP_PING:
                            conn.sendall(kvd_proto.encode_reply(opcode, kvd_proto.OK, rid))
                            continue
                        self.refused += 1
                        conn.sendall(kvd_proto.encode_reply(opcode, kvd_proto.NOT_PRIMARY, rid, payload=self.message))

    def close(self):
        self.sock.close()


class KvctlClusterTest(KvdTestCase):
    etcd = None
    serial = 0

    @classmethod
    def setUpClass(cls):
        if not etcd_cluster.etcd_available():
            raise __import__("unittest").SkipTest("etcd is not installed (scripts/install-deps.sh)")
        cls.etcd = etcd_cluster.EtcdCluster()
        cls.etcd.start()

    @classmethod
    def tearDownClass(cls):
        if cls.etcd is not None:
            cls.etcd.stop()

    def setUp(self):
        super().setUp()
        KvctlClusterTest.serial += 1
        self.prefix = "/kvd/t%d" % KvctlClusterTest.serial  # each test its own cluster
        self.eps = self.etcd.endpoints()
        self.ep = self.eps[0]

    # ---- etcd, through its gateway -------------------------------------------
    def grant(self, ttl=60):
        return gateway(self.ep, "/v3/lease/grant", {"TTL": str(ttl)})["ID"]

    def put(self, key, value, lease=None):
        body = {"key": b64(self.prefix + key), "value": b64(value)}
        if lease:
            body["lease"] = lease
        return gateway(self.ep, "/v3/kv/put", body)

    def get(self, key):
        """(value, create_revision, lease) or None."""
        r = gateway(self.ep, "/v3/kv/range", {"key": b64(self.prefix + key)})
        if not r.get("kvs"):
            return None
        kv = r["kvs"][0]
        import base64
        return (base64.b64decode(kv.get("value", "")).decode(), int(kv["create_revision"]), int(kv.get("lease", 0)))

    def delete(self, key):
        gateway(self.ep, "/v3/kv/deleterange", {"key": b64(self.prefix + key)})

    def publish(self, sockets, leader="a", sync=("b",), durable=None):
        """members a, b, c (addresses from `sockets`), leader on a lease, the
        sync set; returns the epoch (leader create revision)."""
        durable = durable or {"a": 120, "b": 120, "c": 100}
        for name in ("a", "b", "c"):
            role = "primary" if name == leader else "replica"
            self.put("/members/" + name, member_json(name, sockets.get(name, "/nonexistent/" + name), role,
                                                      durable[name]))
        self.put("/leader", leader, lease=self.grant())
        epoch = self.get("/leader")[1]
        self.put("/sync", json.dumps({"epoch": epoch, "members": list(sync), "sync_replicas": len(sync)}))
        return epoch

    def kvctl(self, *args, timeout=TIMEOUT):
        return run_kvctl(list(args), timeout=timeout)

    def cluster_args(self):
        return ["--cluster", ",".join(self.eps), "--cluster-prefix", self.prefix]

    # ---- cluster status --------------------------------------------------------
    def test_status_lists_members_leader_sync_set_and_etcd_health(self):
        old = now_ms() - 1500
        self.put("/members/a", member_json("a", "/run/a.sock", "primary", 120))
        self.put("/members/b", member_json("b", "/run/b.sock", "replica", 100, applied=95, updated_ms=old))
        self.put("/members/c", member_json("c", "/run/c.sock", "replica", 120))
        self.put("/members/d", "not json")
        self.put("/leader", "a", lease=self.grant())
        epoch = self.get("/leader")[1]
        self.put("/sync", json.dumps({"epoch": epoch, "members": ["c"], "sync_replicas": 1}))
        dead = "http://127.0.0.1:%d" % etcd_cluster._free_ports(1)[0]  # nothing listens there
        res = self.kvctl("cluster", "status", "--cluster", ",".join([dead] + self.eps), "--prefix", self.prefix,
                         "--json")
        self.assertEqual(res.rc, 0, res.err)
        st = json.loads(res.out)
        self.assertEqual(st["prefix"], self.prefix)
        self.assertEqual(st["leader"], {"name": "a", "epoch": epoch})
        self.assertEqual(st["sync"], {"epoch": epoch, "members": ["c"], "sync_replicas": 1})
        self.assertIsNone(st["switchover"])
        m = {x["name"]: x for x in st["members"]}
        self.assertEqual(sorted(m), ["a", "b", "c", "d"])
        self.assertTrue(m["a"]["is_leader"])
        self.assertFalse(m["b"]["is_leader"])
        self.assertEqual((m["b"]["role"], m["b"]["address"], m["b"]["durable_lsn"], m["b"]["applied_lsn"]),
                         ("replica", "/run/b.sock", 100, 95))
        self.assertEqual(m["b"]["lag_lsn"], 20)
        self.assertEqual(m["c"]["lag_lsn"], 0)
        self.assertGreaterEqual(m["b"]["age_ms"], 1500)
        self.assertLess(m["b"]["age_ms"], 1500 + TIMEOUT * 1000)
        self.assertTrue(m["c"]["in_sync_set"])
        self.assertFalse(m["b"]["in_sync_set"])
        self.assertIn("not a JSON object", m["d"]["error"])
        # etcd health, per endpoint, in the order given.
        self.assertEqual([e["endpoint"] for e in st["etcd"]], [dead] + self.eps)
        self.assertFalse(st["etcd"][0]["reachable"])
        self.assertTrue(st["etcd"][0]["error"])
        live = st["etcd"][1:]
        self.assertTrue(all(e["reachable"] for e in live))
        ids = {gateway(ep, "/v3/maintenance/status", {})["header"]["member_id"] for ep in self.eps}
        self.assertEqual({e["member_id"] for e in live}, ids)
        self.assertEqual(len({e["leader_id"] for e in live}), 1)
        self.assertEqual(sum(e["is_leader"] for e in live), 1)
        self.assertTrue(all(e["raft_term"] > 0 and e["db_size"] > 0 for e in live))

        text = self.kvctl("cluster", "status", "--cluster", ",".join(self.eps), "--prefix", self.prefix)
        self.assertEqual(text.rc, 0, text.err)
        self.assertIn("primary: a  epoch %d\n" % epoch, text.out)
        self.assertIn("sync set: [c]  sync_replicas 1", text.out)
        self.assertRegex(text.out, r"\nb +replica +0 +100 +95 +20 ")
        self.assertRegex(text.out, r"\na\* +primary ")
        self.assertEqual(len(re.findall(r"\nhttp://127\.0\.0\.1:\d+ +ok", text.out)), 3)

        # No leader: said so; no endpoint at all: exit 3 naming it.
        self.delete("/leader")
        res = self.kvctl("cluster", "status", "--cluster", ",".join(self.eps), "--prefix", self.prefix, "--json")
        self.assertEqual(res.rc, 0, res.err)
        st = json.loads(res.out)
        self.assertIsNone(st["leader"])
        self.assertTrue(all(x.get("lag_lsn") is None for x in st["members"]))
        res = self.kvctl("cluster", "status", "--cluster", dead, "--prefix", self.prefix)
        self.assertEqual(res.rc, 3)
        self.assertIn(dead, res.err)
        self.assertEqual(self.kvctl("cluster", "status", "--cluster", "unix:/x", "--prefix", self.prefix).rc, 2)

    # ---- routing -----------------------------------------------------------------
    def test_cluster_routes_to_the_primary_named_by_the_leader_key(self):
        s1, s2 = self.server(), self.server()
        self.publish({"a": s1.socket_path, "b": s2.socket_path})
        res = self.kvctl(*self.cluster_args(), "put", "k", "v1")
        self.assertEqual(res.rc, 0, res.err)
        with s1.raw() as c:
            self.assertEqual(c.get("k"), b"v1")
        with s2.raw() as c:
            self.assertIsNone(c.get("k"))
        self.assertEqual(self.kvctl(*self.cluster_args(), "get", "k").out, "v1\n")
        # The leader key moves to b: so do kvctl's writes and reads.
        self.delete("/leader")
        self.put("/leader", "b", lease=self.grant())
        res = self.kvctl(*self.cluster_args(), "put", "k", "v2")
        self.assertEqual(res.rc, 0, res.err)
        with s2.raw() as c:
            self.assertEqual(c.get("k"), b"v2")
        with s1.raw() as c:
            self.assertEqual(c.get("k"), b"v1")
        self.assertEqual(self.kvctl(*self.cluster_args(), "get", "k").out, "v2\n")
        # No leader, or a leader without a member key: a clear error, exit 3.
        self.delete("/leader")
        res = self.kvctl(*self.cluster_args(), "put", "k", "v3")
        self.assertEqual(res.rc, 3)
        self.assertIn("no primary: %s/leader is absent" % self.prefix, res.err)
        self.put("/leader", "zz", lease=self.grant())
        res = self.kvctl(*self.cluster_args(), "get", "k")
        self.assertEqual(res.rc, 3)
        self.assertIn("has no member key %s/members/zz" % self.prefix, res.err)

    def test_unix_list_tries_nodes_in_order_and_a_write_follows_the_redirect_once(self):
        primary = self.server()
        self.assertEqual(primary.kvctl("put", "seed", "1").rc, 0)
        gone = os.path.join(self.tmp, "gone.sock")
        fake_path = os.path.join(self.tmp, "replica.sock")
        fake = FakeReplica(fake_path, "this node is a replica; send writes to the primary at 127.0.0.1:7001 "
                                      "primary_address=" + primary.socket_path)
        self.addCleanup(fake.close)
        nodes = "unix:%s,unix:%s" % (gone, primary.socket_path)
        # Reads: the first node that answers.
        res = self.kvctl("--cluster", nodes, "get", "seed")
        self.assertEqual((res.rc, res.out), (0, "1\n"), res.err)
        # A write to the replica follows its primary_address once and lands on the primary.
        res = self.kvctl("--cluster", "unix:%s,unix:%s" % (gone, fake_path), "put", "k", "routed")
        self.assertEqual(res.rc, 0, res.err)
        self.assertEqual(res.out, "OK\n")
        with primary.raw() as c:
            self.assertEqual(c.get("k"), b"routed")
        self.assertEqual(fake.refused, 1)
        # The same with --socket: the redirect does not depend on --cluster.
        res = run_kvctl(["--socket", fake_path, "batch", "put", "b1", "x", "del", "seed"])
        self.assertEqual(res.rc, 0, res.err)
        with primary.raw() as c:
            self.assertEqual((c.get("b1"), c.get("seed")), (b"x", None))
        # A redirect to another replica is not followed twice.
        fake2_path = os.path.join(self.tmp, "replica2.sock")
        fake2 = FakeReplica(fake2_path, "replica too primary_address=" + primary.socket_path)
        self.addCleanup(fake2.close)
        fake.message = ("this node is a replica primary_address=" + fake2_path).encode()
        res = run_kvctl(["--socket", fake_path, "put", "k", "loop"])
        self.assertEqual(res.rc, 3)
        self.assertIn("not followed again", res.err)
        self.assertEqual((fake.refused, fake2.refused), (3, 1))
        with primary.raw() as c:
            self.assertEqual(c.get("k"), b"routed")

    def test_unix_list_reads_from_a_real_replica(self):
        p = self.server(replication={"name": "p", "listen": "127.0.0.1:0"})
        port = p.status()["replication"]["port"]
        r = self.server(replication={"name": "r1", "role": "replica", "primary": "127.0.0.1:%d" % port})
        self.assertEqual(p.kvctl("put", "k", "from-primary").rc, 0)
        nodes = "unix:%s,unix:%s" % (r.socket_path, p.socket_path)
        kvdtest.wait_until(lambda: self.kvctl("--cluster", nodes, "get", "k").out == "from-primary\n",
                           what="the replica (first in the list) to serve the replicated key")
        # It was the replica that answered: stop the primary, the read still works.
        p.stop()
        res = self.kvctl("--cluster", nodes, "get", "k")
        self.assertEqual((res.rc, res.out), (0, "from-primary\n"), res.err)

    # ---- switchover --------------------------------------------------------------
    def watch_for_switchover(self):
        """Starts a watch on <prefix>/switchover; returns (thread, result)
        where result gets the first put's value and lease, after which the
        thread moves the leader key to its `to` (the daemons' part)."""
        key = self.prefix + "/switchover"
        req = urllib.request.Request(self.ep + "/v3/watch", data=json.dumps(
            {"create_request": {"key": b64(key)}}).encode(), headers={"Content-Type": "application/json"})
        stream = urllib.request.urlopen(req, timeout=TIMEOUT)
        created = json.loads(stream.readline())
        self.assertTrue(created["result"].get("created"), created)
        result = {}

        def daemon():
            import base64
            try:
                while "request" not in result:
                    line = stream.readline()
                    if not line:
                        return
                    for ev in json.loads(line).get("result", {}).get("events", []):
                        if ev.get("type", "PUT") == "PUT":
                            kv = ev["kv"]
                            result["request"] = json.loads(base64.b64decode(kv["value"]))
                            result["lease"] = int(kv.get("lease", 0))
                            break
                req_ = result["request"]
                self.assertEqual(self.get("/leader")[0], req_["from"])
                # The handover: the old primary resigns, `to` wins the campaign.
                self.delete("/leader")
                self.put("/leader", req_["to"], lease=self.grant())
                result["epoch"] = self.get("/leader")[1]
            finally:
                stream.close()

        t = threading.Thread(target=daemon, daemon=True)
        t.start()
        return t, result

    def test_switchover_waits_for_the_new_leader_and_reports_the_time(self):
        epoch = self.publish({}, leader="a", sync=("b",))
        t, result = self.watch_for_switchover()
        res = self.kvctl("switchover", "--to", "b", *self.cluster_args())
        t.join(TIMEOUT)
        self.assertEqual(res.rc, 0, res.err)
        self.assertEqual(result["request"], {"from": "a", "to": "b"})
        self.assertNotEqual(result["lease"], 0)  # on a lease: it cannot outlive a dead kvctl
        m = re.fullmatch(r"OK from=a to=b epoch=(\d+) took_ms=(\d+)\n", res.out)
        self.assertIsNotNone(m, res.out)
        self.assertEqual(int(m.group(1)), result["epoch"])
        self.assertGreater(int(m.group(1)), epoch)
        self.assertLess(int(m.group(2)), TIMEOUT * 1000)
        self.assertEqual(self.get("/leader")[0], "b")
        self.assertIsNone(self.get("/switchover"))  # kvctl withdrew the finished request

    def test_switchover_refusals_and_timeout(self):
        self.publish({}, leader="a", sync=("b",))
        args = self.cluster_args()
        for to, why in (("a", "already the primary"), ("zz", "not a live member")):
            res = self.kvctl("switchover", "--to", to, *args)
            self.assertEqual(res.rc, 2, res.err)
            self.assertIn(why, res.err)
        self.put("/switchover", json.dumps({"from": "a", "to": "c"}), lease=self.grant())
        res = self.kvctl("switchover", "--to", "b", *args)
        self.assertEqual(res.rc, 2)
        self.assertIn("already requested: a -> c", res.err)
        self.delete("/switchover")
        # Nobody hands over: kvctl gives up after --timeout and withdraws the request.
        start = time.monotonic()
        res = self.kvctl("switchover", "--to", "b", "--timeout", "1s", *args)
        elapsed = time.monotonic() - start
        self.assertEqual(res.rc, 3)
        self.assertIn("no new primary b within 1000 ms; the request was withdrawn", res.err)
        self.assertGreaterEqual(elapsed, 1.0)
        self.assertIsNone(self.get("/switchover"))
        self.assertEqual(self.get("/leader")[0], "a")
        # No leader at all: nothing to hand over.
        self.delete("/leader")
        res = self.kvctl("switchover", "--to", "b", *args)
        self.assertEqual(res.rc, 2)
        self.assertIn("no primary holds", res.err)


if __name__ == "__main__":
    kvdtest.main(total_timeout=600)
