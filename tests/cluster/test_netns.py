"""The fault tests' private network (netns.py) on its own: TCP between
namespaces, partitions that cut both directions of new and established
connections and heal, a Unix socket reached across namespaces, nothing added
to the root namespace, and everything removed at the end (also a crashed
run's leftovers). Needs root; without CAP_NET_ADMIN it exits 77 (skipped)."""
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
import kvdtest  # noqa: E402
import netns  # noqa: E402

ECHO = r"""
import socket, sys, threading
family, where = sys.argv[1], sys.argv[2]
if family == "tcp":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((where, 7000))
else:
    s = socket.socket(socket.AF_UNIX)
    s.bind(where)
s.listen()
print("listening", flush=True)
def serve(c):
    while True:
        b = c.recv(100)
        if not b:
            return
        c.sendall(b)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def root_state():
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    return sorted(line.split(":")[1].strip() for line in links.splitlines()), addrs


class NetnsTest(unittest.TestCase):
    def setUp(self):
        try:
            netns.probe()
        except netns.Unavailable as e:
            self.skipTest(str(e))
        self.links_before, _ = root_state()
        self.net = netns.Network(["a", "b", "c"])
        self.procs, self.socks = [], []

    def tearDown(self):
        if hasattr(self, "net"):
            for s in self.socks:
                s.close()
            self.net.close()
            for p in self.procs:
                p.wait(10)  # killed by close(): they ran in our namespaces
                p.stdout.close()

    def echo_server(self, host, family, where):
        p = subprocess.Popen(self.net.prefix(host) + [sys.executable, "-c", ECHO, family, where],
                             stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        self.assertEqual(p.stdout.readline().strip(), "listening")
        return p

    def connect(self, src, dst, timeout=1.0):
        """A TCP connection from host src to dst's echo server (made inside src)."""
        s = self.net.run_in(src, socket.create_connection, (self.net.addr(dst), 7000), timeout)
        self.socks.append(s)
        return s

    def roundtrip(self, conn, data=b"ping"):
        conn.sendall(data)
        return conn.recv(100)

    def test_tcp_between_namespaces_partition_and_heal(self):
        self.echo_server("b", "tcp", self.net.addr("b"))
        self.echo_server("c", "tcp", self.net.addr("c"))
        ab = self.connect("a", "b")
        self.assertEqual(self.roundtrip(ab), b"ping")
        self.assertEqual(self.net.drop_counts("a"), 0)

        self.net.partition(["a"], ["b"])
        # New connections to b time out (dropped, not refused); c still answers.
        with self.assertRaises(socket.timeout):
            self.connect("a", "b", timeout=0.5)
        ac = self.connect("a", "c")
        self.assertEqual(self.roundtrip(ac), b"ping")
        # The established connection is cut too: the data waits unanswered.
        ab.settimeout(0.5)
        ab.sendall(b"held")
        with self.assertRaises(socket.timeout):
            ab.recv(100)
        # And from the other side: b cannot reach a (rules on both ends).
        self.echo_server("a", "tcp", self.net.addr("a"))
        with self.assertRaises(socket.timeout):
            self.connect("b", "a", timeout=0.5)
        self.assertGreater(self.net.drop_counts("a"), 0)
        self.assertGreater(self.net.drop_counts("b"), 0)

        self.net.heal()
        # TCP retransmits the held bytes once the path is back.
        ab.settimeout(10)
        self.assertEqual(ab.recv(100), b"held")
        self.assertEqual(self.roundtrip(self.connect("a", "b")), b"ping")
        self.assertEqual(self.roundtrip(self.connect("b", "a")), b"ping")
        self.assertEqual(self.net.drop_counts("a"), 0)

    def test_isolate_cuts_one_host_from_all(self):
        for h in ("a", "b", "c"):
            self.echo_server(h, "tcp", self.net.addr(h))
        self.net.isolate("c")
        for src, dst in (("a", "c"), ("c", "a"), ("c", "b"), ("b", "c")):
            with self.assertRaises(socket.timeout, msg="%s -> %s" % (src, dst)):
                self.connect(src, dst, timeout=0.3)
        self.assertEqual(self.roundtrip(self.connect("a", "b")), b"ping")
        # The hub (the driver's vantage point) still reaches the isolated host.
        s = self.net.from_hub(socket.create_connection, (self.net.addr("c"), 7000), 1.0)
        self.socks.append(s)
        self.assertEqual(self.roundtrip(s), b"ping")
        self.net.heal()
        self.assertEqual(self.roundtrip(self.connect("a", "c")), b"ping")

    def test_unix_socket_reached_across_namespaces(self):
        d = tempfile.mkdtemp(prefix="kvdj-sock-")
        path = os.path.join(d, "echo.sock")
        self.echo_server("b", "unix", path)
        self.net.isolate("b")  # the network does not matter to a filesystem socket
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(path)
        self.assertEqual(self.roundtrip(s, b"over unix"), b"over unix")
        s.close()
        os.unlink(path)
        os.rmdir(d)

    def test_nothing_in_the_root_namespace_and_all_removed(self):
        links, addrs = root_state()
        self.assertEqual(links, self.links_before, "a link appeared in the root namespace")
        self.assertNotIn(netns.SUBNET, addrs)
        p = self.echo_server("a", "tcp", self.net.addr("a"))
        names = [self.net.hub] + [self.net.ns(h) for h in "abc"]
        self.assertTrue(set(names) <= set(netns._netns_names()))
        self.net.close()
        self.assertEqual(p.wait(10), -9)  # what ran inside was killed
        self.assertEqual(set(names) & set(netns._netns_names()), set())
        self.assertEqual(root_state()[0], self.links_before)

    def test_leftovers_of_a_dead_run_are_removed_not_a_live_runs(self):
        dead = subprocess.Popen(["true"])
        dead.wait()  # its pid is free now: a "crashed run"
        name = "%s%d-x" % (netns.PREFIX, dead.pid)
        subprocess.run(["ip", "netns", "add", name], check=True)
        sleeper = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "60"])
        kvdtest.wait_until(lambda: str(sleeper.pid) in subprocess.run(
            ["ip", "netns", "pids", name], capture_output=True, text=True).stdout, what="sleeper in ns")
        gone = netns.remove_leftovers()
        self.assertIn(name, gone)
        self.assertNotIn(self.net.hub, gone)  # our own run (pid alive) is kept
        self.assertEqual(sleeper.wait(10), -9)
        self.assertNotIn(name, netns._netns_names())
        self.assertIn(self.net.hub, netns._netns_names())

    def test_tcp_after_heal_is_prompt(self):
        """Healing takes effect at once: a connect right after heal() succeeds
        in well under a second (no stale state in the rules)."""
        self.echo_server("b", "tcp", self.net.addr("b"))
        self.net.partition(["a", "c"], ["b"])
        with self.assertRaises(socket.timeout):
            self.connect("c", "b", timeout=0.3)
        self.net.heal()
        t0 = time.monotonic()
        self.assertEqual(self.roundtrip(self.connect("c", "b")), b"ping")
        self.assertLess(time.monotonic() - t0, 1.0)


if __name__ == "__main__":
    kvdtest.main(total_timeout=300)
