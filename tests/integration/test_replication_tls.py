"""Mutual TLS on the replication link (docs/replication.md §2): real kvd
primaries and replicas on loopback, with a throw-away CA made by the openssl
CLI (tests/util/make_test_certs.sh): a second, unrelated CA signs the wrong
certificate.

Replication over TLS is checked by comparing full scans; every hostile peer
(a certificate from the wrong CA, no certificate, plain TCP garbage, a
replica without TLS) is refused, logged on the primary with the peer's
address and OpenSSL's reason, gets nothing, and the primary's clients go on."""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, TIMEOUT  # noqa: E402

CONVERGE_TIMEOUT = 60
MAKE_CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "util", "make_test_certs.sh")


def full_scan(server):
    with server.client() as c:
        return dict(c.scan_all())


def repl_status(server):
    return server.status()["replication"]


def recv_all(sock):
    got = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except (ConnectionResetError, ssl.SSLError):
            break
        if not chunk:
            break
        got += chunk
    return got


class ReplicationTls(KvdTestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("the openssl command is needed to make the test CA")
        cls.certs = tempfile.mkdtemp(prefix="kvdt-certs-")
        subprocess.run(["sh", MAKE_CERTS, cls.certs], check=True, timeout=TIMEOUT)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def tls(self, name, ca="ca"):
        return {"tls_cert": os.path.join(self.certs, name + ".crt"),
                "tls_key": os.path.join(self.certs, name + ".key"),
                "tls_ca": os.path.join(self.certs, ca + ".crt")}

    def primary(self, tls=True, listen="127.0.0.1:0"):
        repl = {"name": "p", "listen": listen}
        if tls:
            repl.update(self.tls("p"))
        p = self.server(replication=repl)
        port = repl_status(p)["port"]
        self.assertGreater(port, 0)
        return p, port

    def replica(self, name, port, cert=None):
        repl = {"name": name, "role": "replica", "primary": "127.0.0.1:%d" % port}
        if cert is not None:
            repl.update(self.tls(cert))
        return self.server(replication=repl)

    def wait_refusals(self, p, mark, what, count=1):
        """Waits for `count` refusals logged by the primary since `mark`, each
        naming the peer (127.0.0.1:port) and containing `what`."""
        def refusals(text):
            return [l for l in text.splitlines()
                    if "disconnected" in l and "127.0.0.1:" in l and what in l]
        text = p.wait_for_log(lambda t: len(refusals(t)) >= count, since=mark,
                              what="%d refusal(s) with %r" % (count, what))
        return refusals(text)

    def assert_nothing_replicated(self, p, r, what):
        """Writes on the primary, then waits for the replica's next attempt to
        be refused too: it still holds nothing, and the primary's clients are
        unaffected."""
        self.assertEqual(p.kvctl("put", "after", "refusal").rc, 0)
        mark = p.log_offset()
        self.wait_refusals(p, mark, what)
        self.assertEqual(r.status()["last_lsn"], 0)
        self.assertEqual(r.kvctl("count").out, "0\n")
        self.assertEqual(p.kvctl("get", "after").out, "refusal\n")
        self.assertEqual(repl_status(p)["replicas"], [])

    def test_replicas_over_tls_converge(self):
        p, port = self.primary()
        self.assertIn("mutual TLS", p.log_of_run())
        r1 = self.replica("r1", port, cert="r1")
        r2 = self.replica("r2", port, cert="r1")  # two nodes may share a certificate
        for r in (r1, r2):
            kvdtest.wait_until(lambda: repl_status(r)["receiver"]["state"] == "streaming", what="streaming")
            self.assertTrue(repl_status(r)["tls"])
        self.assertTrue(repl_status(p)["tls"])
        res = p.kvctl("bench", "--clients", "4", "--key-space", "3000", "--requests", "1000", "--prefill",
                      "--keep", "--no-progress", timeout=120)
        self.assertEqual(res.rc, 0, res.err)
        last = p.status()["last_lsn"]
        for r in (r1, r2):
            kvdtest.wait_until(lambda: r.status()["applied_lsn"] >= last, timeout=CONVERGE_TIMEOUT,
                               what="replica to apply LSN %d" % last)
        expected = full_scan(p)
        self.assertEqual(len(expected), 3000)
        for r in (r1, r2):
            self.assertEqual(full_scan(r), expected)
        self.assertEqual(sorted(x["name"] for x in repl_status(p)["replicas"]), ["r1", "r2"])

    def test_replica_with_a_certificate_from_another_ca_is_refused(self):
        p, port = self.primary()
        self.assertEqual(p.kvctl("put", "before", "x").rc, 0)
        mark = p.log_offset()
        # It trusts the right CA (so it accepts the primary) but presents a
        # certificate signed by the wrong one.
        bad = self.replica("bad", port, cert="bad")
        line = self.wait_refusals(p, mark, "certificate verify failed")[0]
        self.assertIn("TLS handshake failed", line)
        self.assertIn("unable to get local issuer certificate", line)
        self.assert_nothing_replicated(p, bad, "certificate verify failed")
        kvdtest.wait_until(lambda: "TLS" in repl_status(bad)["receiver"]["last_error"],
                           what="the replica's own record of the refusal")

    def test_tls_client_without_a_certificate_is_refused(self):
        p, port = self.primary()
        mark = p.log_offset()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(os.path.join(self.certs, "ca.crt"))
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
            try:
                with ctx.wrap_socket(raw) as s:
                    # TLS 1.3: the client's side of the handshake ends before the
                    # server has judged it; the refusal arrives as an alert.
                    s.sendall(b"\x0d\x00\x00\x00\x01" + b"\x00" * 12)
                    got = recv_all(s)
                    self.assertEqual(got, b"")
            except ssl.SSLError as e:
                self.assertIn("CERTIFICATE", str(e).upper())
        self.wait_refusals(p, mark, "did not return a certificate")
        self.assertEqual(p.kvctl("put", "k", "v").rc, 0)

    def test_plain_tcp_garbage_on_a_tls_port_is_refused(self):
        p, port = self.primary()
        r = self.replica("r1", port, cert="r1")
        kvdtest.wait_until(lambda: repl_status(r)["receiver"]["state"] == "streaming", what="streaming")
        mark = p.log_offset()
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(b"GET key HTTP/1.1\r\nHost: x\r\n\r\n" * 4)
            got = recv_all(s)  # at most a TLS alert, then the primary closes
        self.assertNotIn(b"bad frame", got)  # the frame decoder never saw it
        self.assertNotIn(b"GET", got)
        self.wait_refusals(p, mark, "TLS handshake failed")
        # The real replica and the clients are unaffected.
        self.assertEqual(p.kvctl("put", "after", "garbage").rc, 0)
        kvdtest.wait_until(lambda: r.kvctl("get", "after").out == "garbage\n", what="replicated key")
        self.assertEqual(repl_status(r)["receiver"]["state"], "streaming")

    def test_a_replica_without_tls_is_refused_by_a_tls_primary(self):
        p, port = self.primary()
        mark = p.log_offset()
        plain = self.replica("plain", port)
        self.wait_refusals(p, mark, "TLS handshake failed")
        self.assert_nothing_replicated(p, plain, "TLS handshake failed")

    def test_a_tls_replica_is_refused_by_a_plain_primary(self):
        p, port = self.primary(tls=False)
        mark = p.log_offset()
        r = self.replica("r1", port, cert="r1")
        # The ClientHello is no replication frame: the decoder refuses it.
        self.wait_refusals(p, mark, "bad frame")
        self.assert_nothing_replicated(p, r, "bad frame")

    def test_listen_outside_loopback_needs_tls_or_insecure(self):
        # Bound to 0.0.0.0 with port 0 only; nothing is sent to it.
        s = self.server(start=False, replication={"name": "p", "listen": "0.0.0.0:0"})
        rc, log = s.start_expect_failure()
        self.assertNotEqual(rc, 0)
        self.assertIn("replication.listen: 0.0.0.0 is not a loopback address", log)
        self.assertIn("insecure = true", log)
        s.write_config(replication={"name": "p", "listen": "0.0.0.0:0", "insecure": True})
        s.start()
        self.assertGreater(repl_status(s)["port"], 0)
        self.assertIn("UNENCRYPTED", s.log_of_run())
        s.stop()
        tls = dict(self.tls("p"), name="p", listen="0.0.0.0:0")
        s.write_config(replication=tls)
        s.start()
        self.assertGreater(repl_status(s)["port"], 0)
        self.assertIn("mutual TLS", s.log_of_run())

    def test_bad_tls_files_are_reported_with_their_names(self):
        missing = os.path.join(self.certs, "no-such.crt")
        cases = [
            ("missing certificate", dict(self.tls("p"), tls_cert=missing), missing),
            ("key of another certificate", dict(self.tls("p"), tls_key=os.path.join(self.certs, "r1.key")),
             "does not match the certificate"),
            ("CA that is not PEM", dict(self.tls("p"), tls_ca=os.path.join(self.certs, "p.key")),
             os.path.join(self.certs, "p.key")),
        ]
        for name, files, expected in cases:
            with self.subTest(name):
                s = self.server(start=False, replication=dict(files, name="p", listen="127.0.0.1:0"))
                p = subprocess.run([kvdtest.binary("KVD_BIN"), "--check-config", "--config", s.config_path],
                                   capture_output=True, text=True, timeout=TIMEOUT)
                self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                self.assertIn(expected, p.stderr)
                rc, log = s.start_expect_failure()
                self.assertNotEqual(rc, 0)
                self.assertIn(expected, log)
                self.assertFalse(os.path.exists(s.socket_path))


if __name__ == "__main__":
    kvdtest.main()
