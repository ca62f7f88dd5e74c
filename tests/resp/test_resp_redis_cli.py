"""kvd's RESP listener driven by redis-cli, the client every Redis user has:
one-shot commands (and kvctl sees the same data), `--pipe` mass insertion of
100k keys, `--scan --pattern`, INFO, RESP3 after HELLO 3, AUTH on a TCP
listener, and hostile input (long inline lines, huge bulk lengths, nested
arrays, a reader that never reads) refused cleanly while others are served."""

import os
import random
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
import resp_util as ru  # noqa: E402
from kvdtest import KvdTestCase, main, wait_until  # noqa: E402

ru.require_tools(ru.REDIS_CLI)


def resp_cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def recv_until_closed(sock, limit=1 << 20):
    """Everything the server sends until it closes the connection."""
    data = b""
    while len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise AssertionError("the server kept the connection open")


class RedisCliTest(KvdTestCase):
    def test_one_shot_commands_and_kvctl_sees_the_same_data(self):
        s = ru.resp_server(self)
        self.assertEqual(ru.cli(s, "set", "k", "v"), b"OK\n")
        self.assertEqual(ru.cli(s, "get", "k"), b"v\n")
        self.assertEqual(s.kvctl("get", "k").out, "v\n")  # the native protocol sees the RESP write
        self.assertEqual(s.kvctl("put", "n", "from-kvctl").rc, 0)
        self.assertEqual(ru.cli(s, "get", "n"), b"from-kvctl\n")
        self.assertEqual(ru.cli(s, "set", "k", "w", "nx"), b"\n")  # nil
        self.assertEqual(ru.cli(s, "setnx", "fresh", "1"), b"1\n")
        self.assertEqual(ru.cli(s, "exists", "k", "fresh", "none"), b"2\n")
        self.assertEqual(ru.cli(s, "getdel", "fresh"), b"1\n")
        self.assertEqual(ru.cli(s, "del", "k", "n", "none"), b"2\n")
        self.assertEqual(ru.cli(s, "dbsize"), b"0\n")
        self.assertIn(b"ERR unknown command 'incr', with args beginning with: 'k'", ru.cli(s, "incr", "k"))
        self.assertIn(b"kvd has no key expiry", ru.cli(s, "set", "k", "v", "ex", "10"))
        self.assertEqual(ru.cli(s, "ping"), b"PONG\n")
        self.assertEqual(ru.cli(s, "wait", "0", "0"), b"0\n")

    def test_pipe_mass_insertion_of_100k_keys(self):
        s = ru.resp_server(self, durability={"mode": "batch"})
        n = 100_000
        payload = b"".join(resp_cmd("SET", "key:%06d" % i, "value-%d" % i) for i in range(n))
        p = subprocess.run([ru.REDIS_CLI, "-s", s.resp_socket, "--pipe"], input=payload, capture_output=True,
                           timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"errors: 0, replies: %d" % n, p.stdout)
        self.assertEqual(ru.cli(s, "dbsize"), b"%d\n" % n)
        self.assertEqual(s.kvctl("count", "--prefix", "key:").out.strip(), str(n))
        for i in random.Random(self.seed).sample(range(n), 50):
            self.assertEqual(s.kvctl("get", "key:%06d" % i).out, "value-%d\n" % i)
        # Still there after a restart (the WAL holds them).
        s.restart()
        self.assertEqual(ru.cli(s, "dbsize"), b"%d\n" % n)

    def test_scan_with_a_pattern_returns_each_matching_key_once(self):
        s = ru.resp_server(self)
        want = set()
        cmds = b""
        for i in range(3000):
            k = ("p" if i % 3 else "q") + "%05d" % i
            if k.startswith("p"):
                want.add(k)
            cmds += resp_cmd("SET", k, "x")
        p = subprocess.run([ru.REDIS_CLI, "-s", s.resp_socket, "--pipe"], input=cmds, capture_output=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = ru.cli(s, "--scan", "--pattern", "p*").decode().split()
        self.assertEqual(len(out), len(want))  # no duplicates
        self.assertEqual(set(out), want)
        self.assertEqual(sorted(ru.cli(s, "keys", "q0001*").decode().split()),
                         sorted(k for k in ["q%05d" % i for i in range(3000) if i % 3 == 0] if k.startswith("q0001")))

    def test_info_sections_come_from_kvd_status(self):
        s = ru.resp_server(self)
        ru.cli(s, "mset", "a", "1", "b", "2", "c", "3")
        info = ru.cli(s, "info").decode()
        for section in ("# Server", "# Clients", "# Memory", "# Persistence", "# Stats", "# Keyspace"):
            self.assertIn(section, info)
        self.assertIn("db0:keys=3,expires=0,avg_ttl=0", info)
        self.assertIn("kvd_durability_mode:sync", info)
        self.assertIn("process_id:%d" % s.pid, info)
        only = ru.cli(s, "info", "keyspace").decode()
        self.assertNotIn("# Server", only)
        self.assertIn("db0:keys=3", only)
        # CONFIG SET through RESP changes kvd's runtime key, as kvctl sees it.
        self.assertEqual(ru.cli(s, "config", "set", "durability.mode", "batch"), b"OK\n")
        self.assertEqual(s.kvctl("config", "get", "durability.mode").out.strip().split()[-1], "batch")
        before = int(ru.cli(s, "lastsave"))
        self.assertEqual(ru.cli(s, "save"), b"OK\n")
        self.assertTrue(s.snapshots())
        self.assertGreaterEqual(int(ru.cli(s, "lastsave")), before)

    def test_resp3_after_hello_3(self):
        s = ru.resp_server(self)
        out = ru.cli(s, "hello", "3", extra=["-3"]).decode()
        self.assertIn("proto", out)
        self.assertIn("3", out)
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(30)
            c.connect(s.resp_socket)
            c.sendall(resp_cmd("GET", "missing") + resp_cmd("HELLO", "3") + resp_cmd("GET", "missing") +
                      resp_cmd("CONFIG", "GET", "durability.mode") + resp_cmd("QUIT"))
            data = recv_until_closed(c)
        self.assertTrue(data.startswith(b"$-1\r\n%7\r\n"), data)  # RESP2 nil, then a RESP3 map
        self.assertTrue(data.endswith(b"_\r\n%1\r\n$15\r\ndurability.mode\r\n$4\r\nsync\r\n+OK\r\n"), data)

    def test_auth_on_a_tcp_listener(self):
        s = ru.resp_server(self, tcp=True, password="s3cret pass")
        base = [ru.REDIS_CLI, "-h", "127.0.0.1", "-p", str(s.resp_port)]
        p = subprocess.run(base + ["set", "k", "v"], capture_output=True, timeout=30)
        self.assertIn(b"NOAUTH Authentication required", p.stdout + p.stderr)
        p = subprocess.run(base + ["--no-auth-warning", "-a", "wrong", "set", "k", "v"], capture_output=True, timeout=30)
        self.assertIn(b"WRONGPASS", p.stdout + p.stderr)
        self.assertEqual(ru.cli(s, "dbsize", extra=["-a", "s3cret pass", "--no-auth-warning"]), b"0\n")
        p = subprocess.run(base + ["--no-auth-warning", "-a", "s3cret pass", "set", "k", "v"], capture_output=True,
                           timeout=30)
        self.assertEqual(p.stdout, b"OK\n")
        self.assertEqual(s.kvctl("get", "k").out, "v\n")

    def test_a_listener_outside_loopback_needs_a_password(self):
        s = ru.resp_server(self, start=False, resp={"listen": "0.0.0.0:%d" % ru.free_port()})
        rc, log = s.start_expect_failure()
        self.assertNotEqual(rc, 0)
        self.assertIn("resp.password", log)
        self.assertIn("0.0.0.0", log)

    def test_hostile_input_is_refused_and_others_are_served(self):
        s = ru.resp_server(self, server={"max_pending_reply_bytes": "1MiB"})
        big = "x" * (512 * 1024)
        self.assertEqual(ru.cli(s, "set", "big", extra=["-x"], input=big.encode()), b"OK\n")
        cases = [
            (b"GET " + b"a" * (70 * 1024), b"-ERR Protocol error: too big inline request\r\n"),
            (b"*1\r\n$99999999999\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
            (b"*1\r\n*1\r\n*1\r\n$4\r\nPING\r\n", b"-ERR Protocol error: expected '$', got '*'\r\n"),
            (b"*2147483647\r\n$3\r\nGET\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
            (b"*2\r\n$3\r\nGET\r\n$100000\r\nabc", None),  # cut off mid-argument and held open
        ]
        held = []
        for data, reply in cases:
            c = socket.socket(socket.AF_UNIX)
            c.settimeout(30)
            c.connect(s.resp_socket)
            c.sendall(data)
            if reply is None:
                held.append(c)
                continue
            self.assertEqual(recv_until_closed(c), reply)
            c.close()
        # A reader that never reads: 200 pipelined GETs of a 512 KiB value.
        slow = socket.socket(socket.AF_UNIX)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(s.resp_socket)
        slow.sendall(resp_cmd("GET", "big") * 200)
        held.append(slow)
        # Everyone else is still served, and kvd holds only a bounded amount for the slow one.
        for i in range(20):
            self.assertEqual(ru.cli(s, "set", "good%d" % i, "v"), b"OK\n")
        self.assertEqual(ru.cli(s, "dbsize"), b"21\n")
        status = s.status()
        self.assertLess(status["connections"]["reply_bytes"], 8 << 20)
        self.assertGreaterEqual(status["connections"]["current"], len(held))
        for c in held:
            c.close()
        # Only the STATUS connection is left once they hung up.
        wait_until(lambda: s.status()["connections"]["current"] == 1 or None, what="held connections closed")


if __name__ == "__main__":
    main()
