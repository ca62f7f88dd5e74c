"""TLS to etcd (docs/cluster.md "TLS to etcd", ctest cluster_etcd_tls): one
etcd member on loopback serving https with --client-cert-auth, certificates
made by the openssl CLI for this run (etcd_tls.Pki), and kvd nodes and kvctl
reaching it with [cluster] etcd_ca_file/etcd_cert_file/etcd_key_file and
--etcd-cacert/--etcd-cert/--etcd-key.

- two nodes with the right CA and client certificate: a primary is elected
  and acknowledges a write; `kvctl cluster status` and `kvctl --cluster`
  work over TLS; an endpoint presenting a certificate of another CA shows
  "certificate verification failed" in the status's etcd table;
- kvctl with the wrong CA fails saying the certificate verification failed;
  kvctl without a client certificate is refused by etcd;
- a node with the wrong CA, and a node without a client certificate, never
  join (no member key, never primary): their logs say why, and they keep
  retrying (etcd keeps rejecting their new connections);
- kvd --check-config names a missing etcd_ca_file.

Environment: KVD_BIN, KVCTL_BIN (set by ctest), ETCD_BIN. Exits 77
(skipped) without etcd or the openssl CLI.
"""

import json
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
import kvdtest  # noqa: E402
import etcd_tls  # noqa: E402
from cluster_nodes import ClusterNodes, first_ack, NOT_PRIMARY  # noqa: E402
from etcd_cluster import EtcdCluster, etcd_available  # noqa: E402

PREFIX = "/kvd/tls"


@unittest.skipUnless(etcd_available(), "etcd is not installed (scripts/install-deps.sh)")
@unittest.skipUnless(etcd_tls.available(), "the openssl CLI is not installed")
class ClusterEtcdTls(kvdtest.KvdTestCase):
    def setUp(self):
        super().setUp()
        self.pki = etcd_tls.Pki(os.path.join(self.tmp, "pki"))
        self.etcd = EtcdCluster(size=1, tls=self.pki)
        self.etcd.start()

    def tearDown(self):
        self.etcd.stop()

    def kvctl(self, *args, ca=None, cert=True):
        tls = ["--etcd-cacert", ca or self.pki.ca]
        if cert:
            tls += ["--etcd-cert", self.pki.client_cert, "--etcd-key", self.pki.client_key]
        return kvdtest.run_kvctl(tls + list(args))

    def rejected_connections(self):
        """etcd's count of client connections it refused in the handshake."""
        with open(self.etcd.members[0].log_path, "rb") as f:
            return f.read().count(b"rejected connection")

    def test_nodes_and_kvctl_over_tls_and_what_is_refused(self):
        ep = self.etcd.endpoints()[0]
        self.assertTrue(ep.startswith("https://127.0.0.1:"), ep)
        good = {"etcd_ca_file": self.pki.ca, "etcd_cert_file": self.pki.client_cert,
                "etcd_key_file": self.pki.client_key}
        nodes = ClusterNodes(self, self.etcd, ["a", "b"], prefix=PREFIX, cluster_keys=good)
        p = nodes.wait_primary()
        nodes.wait_streaming(p)
        got, _ = first_ack(nodes, [p], b"over-tls", b"1")
        self.assertEqual(got, p)
        self.assertEqual(nodes.etcd_get("/leader")[0], p)
        replica = "b" if p == "a" else "a"
        with nodes[replica].client() as c:
            self.assertEqual(c.put(b"x", b"y").status, NOT_PRIMARY)

        # kvctl over TLS: cluster status (etcd health included) and routing.
        res = self.kvctl("cluster", "status", "--cluster", ep, "--prefix", PREFIX, "--json")
        self.assertEqual(res.rc, 0, res.err)
        st = json.loads(res.out)
        self.assertEqual(st["leader"]["name"], p)
        self.assertEqual(sorted(m["name"] for m in st["members"]), ["a", "b"])
        self.assertEqual([(e["endpoint"], e["reachable"]) for e in st["etcd"]], [(ep, True)])
        res = self.kvctl("--cluster", ep, "--cluster-prefix", PREFIX, "put", "via-kvctl", "2")
        self.assertEqual(res.rc, 0, res.err)
        with nodes[p].client() as c:
            self.assertEqual(c.get(b"via-kvctl").payload, b"2")

        # An endpoint whose certificate another CA signed: its own row of
        # the etcd table says verification failed; the real one answers.
        impostor = etcd_tls.Impostor(self.pki)
        self.addCleanup(impostor.close)
        res = self.kvctl("cluster", "status", "--cluster", impostor.url + "," + ep, "--prefix", PREFIX, "--json")
        self.assertEqual(res.rc, 0, res.err)
        st = json.loads(res.out)
        self.assertEqual(st["leader"]["name"], p)
        health = {e["endpoint"]: e for e in st["etcd"]}
        self.assertFalse(health[impostor.url]["reachable"])
        self.assertIn("certificate verification failed", health[impostor.url]["error"])
        self.assertTrue(health[ep]["reachable"])
        self.assertGreater(impostor.handshakes, 0)

        # kvctl: the wrong CA, no client certificate, https without a CA.
        res = self.kvctl("cluster", "status", "--cluster", ep, "--prefix", PREFIX, ca=self.pki.other_ca)
        self.assertEqual(res.rc, 3, res.out)
        self.assertIn("certificate verification failed", res.err)
        res = self.kvctl("cluster", "status", "--cluster", ep, "--prefix", PREFIX, cert=False)
        self.assertEqual(res.rc, 3, res.out)
        self.assertIn("etcd refused this client", res.err)
        res = kvdtest.run_kvctl(["cluster", "status", "--cluster", ep, "--prefix", PREFIX])
        self.assertEqual(res.rc, 2)
        self.assertIn("need --etcd-cacert", res.err)

        # Nodes that cannot pass TLS never join, say why and keep retrying.
        wrong_ca = dict(good, etcd_ca_file=self.pki.other_ca)
        no_cert = {"etcd_ca_file": self.pki.ca}
        outsiders = {}
        for name, keys in (("c", wrong_ca), ("d", no_cert)):
            outsiders[name] = ClusterNodes(self, self.etcd, [name], prefix=PREFIX, cluster_keys=keys)[name]
        outsiders["c"].wait_for_log(lambda t: "certificate verification failed" in t and "; retrying" in t,
                                    what="c's log: the certificate verification failed")
        outsiders["d"].wait_for_log(lambda t: "etcd refused this client" in t,
                                    what="d's log: etcd refused it without a client certificate")
        seen = self.rejected_connections()
        kvdtest.wait_until(lambda: self.rejected_connections() >= seen + 6,
                           what="c and d retrying (etcd rejecting their new connections)")
        for name, n in outsiders.items():
            self.assertIsNone(nodes.member(name), name + " published a member key")
            self.assertNotEqual(n.status()["role"], "primary")
            with n.client() as c:
                self.assertNotEqual(c.put(b"k-" + name.encode(), b"v").status, 0)
            self.assertNotIn("answers again", n.log_text())
        self.assertEqual(nodes.etcd_get("/leader")[0], p)

        # kvd --check-config reads the TLS files.
        n = outsiders["c"]
        n.write_config(**dict(n.config, cluster=dict(n.config["cluster"],
                                                     etcd_ca_file=os.path.join(self.tmp, "missing.pem"))))
        r = subprocess.run([kvdtest.binary("KVD_BIN"), "--config", n.config_path, "--check-config"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("cluster.etcd_ca_file: CA " + os.path.join(self.tmp, "missing.pem") + ": No such file",
                      r.stderr)


if __name__ == "__main__":
    kvdtest.main()
