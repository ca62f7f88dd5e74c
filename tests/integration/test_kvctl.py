"""kvctl against a real kvd: every command, every exit code, stdin mode with
the original engine's commands and quoted binary keys, and the crash demo."""

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, run_kvctl, TIMEOUT


def quote(data):
    """A kvctl token for arbitrary bytes: double quotes, \\" \\\\ \\xNN escapes."""
    out = ['"']
    for b in data:
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append("\\x%02x" % b)
    out.append('"')
    return "".join(out)


def unquote(token):
    """Inverse of the tokenizer's quoting, for reply lines."""
    if not (len(token) >= 2 and token[0] == '"' and token[-1] == '"'):
        return token.encode("utf-8", "surrogateescape")
    body, out, i = token[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            n = body[i + 1]
            if n == "x":
                out.append(int(body[i + 2:i + 4], 16))
                i += 4
                continue
            out += {"n": b"\n", "t": b"\t", "r": b"\r", "0": b"\0"}.get(n, n.encode())
            i += 2
        else:
            out += c.encode("utf-8", "surrogateescape")
            i += 1
    return bytes(out)


def numbers(text):
    return [int(n) for n in re.findall(r"\d+", text)]


class KvctlCommands(KvdTestCase):
    def setUp(self):
        super().setUp()
        self.kvd = self.server()

    def ok(self, *args, input=None):
        r = self.kvd.kvctl(*args, input=input)
        self.assertEqual(r.rc, 0, "kvctl %r: rc=%d stdout=%r stderr=%r" % (args, r.rc, r.out, r.err))
        return r

    def assert_value(self, out_bytes, expected):
        # Off a terminal: the value's bytes and a newline, like redis-cli and etcdctl.
        self.assertEqual(out_bytes, expected + b"\n")

    def assert_one_line_error(self, r, rc):
        self.assertEqual(r.rc, rc, "stdout=%r stderr=%r" % (r.out, r.err))
        self.assertEqual(len(r.err.strip().splitlines()), 1, "want one stderr line, got %r" % r.err)

    def test_put_get_del(self):
        self.ok("put", "k1", "v1")
        self.assert_value(self.ok("get", "k1").out_bytes, b"v1")
        with self.kvd.raw() as c:
            self.assertEqual(c.get(b"k1"), b"v1")
        self.ok("put", "k1", "v2")  # overwrite
        self.assert_value(self.ok("get", "k1").out_bytes, b"v2")
        self.ok("del", "k1")
        r = self.kvd.kvctl("get", "k1")
        self.assertEqual((r.rc, r.out), (1, ""), "get of a deleted key: %r" % (r,))
        r = self.kvd.kvctl("del", "k1")
        self.assertEqual(r.rc, 1, "del of an absent key: %r" % (r,))
        r = self.kvd.kvctl("get", "never-written")
        self.assertEqual((r.rc, r.out_bytes), (1, b""))

    def test_put_value_from_stdin_is_binary_exact(self):
        value = bytes(range(256)) + b"\n\r\n trailing\n"
        self.ok("put", "bin", "-", input=value)
        with self.kvd.raw() as c:
            self.assertEqual(c.get(b"bin"), value)
        self.assert_value(self.ok("get", "bin").out_bytes, value)
        self.assertEqual(self.ok("get", "--raw", "bin").out_bytes, value)  # exact bytes, binary safe

    def test_size_and_count(self):
        with self.kvd.raw() as c:
            for k in (b"p/1", b"p/2", b"p/3", b"q/1", b"q/2"):
                c.put(k, b"x")
        self.assertEqual(self.ok("size").out.strip(), "5")
        self.assertEqual(self.ok("count").out.strip(), "5")
        self.assertEqual(self.ok("count", "--prefix", "p/").out.strip(), "3")

    def test_scan(self):
        keys = ["a1", "a2", "a3", "a4", "a5", "b1"]
        with self.kvd.raw() as c:
            for k in reversed(keys):
                c.put(k, "val-" + k)

        def scan(*args):
            lines = [l for l in self.ok("scan", *args).out.splitlines() if l.strip()]
            for line in lines:  # each line carries the key and its value
                key = re.split(r"[\s=:]", line, 1)[0]
                self.assertIn("val-" + key.strip('"'), line)
            return [re.split(r"[\s=:]", l, 1)[0].strip('"') for l in lines]

        self.assertEqual(scan(), keys)
        self.assertEqual(scan("--prefix", "a"), keys[:5])
        self.assertEqual(scan("--prefix", "a", "--limit", "2"), ["a1", "a2"])
        self.assertEqual(scan("--prefix", "zz"), [])

    def test_flush_and_snapshot(self):
        with self.kvd.raw() as c:
            last = max(c.put("k%d" % i, "v").lsn for i in range(3))
        self.assertGreaterEqual(last, 3)
        out = self.ok("flush").out
        self.assertTrue(any(n >= last for n in numbers(out)), "flush should print the durable LSN: %r" % out)
        out = self.ok("snapshot").out
        lsns = [n for n in numbers(out) if n >= last]
        self.assertTrue(lsns, "snapshot should print its LSN: %r" % out)
        self.assertIn(lsns[0], [kvdtest.snapshot_lsn(n) for n in self.kvd.snapshots()],
                      "snapshot LSN printed but no snap-<lsn>.kvs file: %r" % self.kvd.snapshots())

    def test_status(self):
        with self.kvd.raw() as c:
            for i in range(3):
                c.put("k%d" % i, "v")
        text = self.ok("status").out
        self.assertIn(str(self.kvd.pid), text)
        self.assertIn("sync", text)
        obj = json.loads(self.ok("status", "--json").out)
        self.assertIsInstance(obj, dict)
        self.assertIn(self.kvd.pid, kvdtest.find_key(obj, "pid"))
        self.assertIn(3, kvdtest.find_key(obj, "keys"), "status --json keys: %r" % obj)
        strings = kvdtest.json_strings(obj)
        for needle in ("version", "uptime", "durable_lsn", "connections"):
            self.assertTrue(any(needle in s for s in strings), "status --json lacks %s: %r" % (needle, obj))

    def test_ping(self):
        self.ok("ping")

    def test_config_get_and_set(self):
        out = self.ok("config", "get", "durability.batch_size").out
        self.assertIn("1024", out)  # the default
        self.ok("config", "set", "durability.batch_size", "77")
        self.assertIn("77", self.ok("config", "get", "durability.batch_size").out)
        self.assertEqual(str(self.kvd.config_get("durability.batch_size")), "77")
        everything = self.ok("config", "get").out
        for key in ("durability.batch_size", "durability.mode", "server.socket"):
            self.assertIn(key, everything)
        # restart-only and unknown keys, bad values: the server refuses what was typed -> usage, exit 2
        self.assert_one_line_error(self.kvd.kvctl("config", "set", "server.socket", "/tmp/elsewhere.sock"), 2)
        self.assert_one_line_error(self.kvd.kvctl("config", "set", "no.such_key", "1"), 2)
        self.assert_one_line_error(self.kvd.kvctl("config", "set", "durability.batch_size", "lots"), 2)
        self.assertEqual(str(self.kvd.config_get("durability.batch_size")), "77")

    def test_help(self):
        out = self.ok("--help").out
        for cmd in ("put", "get", "del", "size", "scan", "flush", "snapshot", "status", "ping", "config"):
            self.assertRegex(out, r"\b%s\b" % cmd)
        for cmd in ("put", "get", "del", "scan", "status", "config"):
            r = run_kvctl([cmd, "--help"])
            self.assertEqual(r.rc, 0, "%s --help: %r" % (cmd, r))
            self.assertTrue(r.out.strip(), "%s --help printed nothing" % cmd)

    def test_usage_errors_exit_2(self):
        for args in (["frobnicate"], ["put", "only-key"], ["get"], ["del"], ["scan", "--limit", "many"],
                     ["--no-such-flag", "ping"], ["config", "set", "durability.batch_size"]):
            r = self.kvd.kvctl(*args)
            self.assertEqual(r.rc, 2, "kvctl %r: %r" % (args, r))
            self.assertTrue(r.err.strip(), "kvctl %r: usage error without a message" % args)

    def test_server_side_error_exit_3(self):
        r = self.kvd.kvctl("put", "k" * 70000, "v")  # over max_key_bytes (64 KiB)
        self.assert_one_line_error(r, 3)

    def test_socket_from_env_and_config(self):  # precedence with both: test_kvctl_scripting.py
        r = run_kvctl(["ping"], env={"KVD_SOCKET": self.kvd.socket_path})
        self.assertEqual(r.rc, 0, r)
        r = run_kvctl(["--config", self.kvd.config_path, "put", "via-config", "1"])
        self.assertEqual(r.rc, 0, r)
        with self.kvd.raw() as c:
            self.assertEqual(c.get("via-config"), b"1")


class KvctlUnreachable(KvdTestCase):
    def test_no_socket_exit_3(self):
        missing = os.path.join(self.tmp, "nobody-here.sock")
        for args in (["ping"], ["get", "k"], ["put", "k", "v"], ["status"]):
            r = run_kvctl(["--socket", missing] + args)
            self.assertEqual(r.rc, 3, "%r: %r" % (args, r))
            self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
            self.assertEqual(r.out, "")

    def test_stale_socket_exit_3(self):
        path = os.path.join(self.tmp, "stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()  # the file stays, nobody listens
        r = run_kvctl(["--socket", path, "ping"])
        self.assertEqual(r.rc, 3, r)


class KvctlStdinMode(KvdTestCase):
    def setUp(self):
        super().setUp()
        self.kvd = self.server()

    def run_lines(self, lines, rc=0):
        r = self.kvd.kvctl(input="".join(l + "\n" for l in lines))
        self.assertEqual(r.rc, rc, r)
        return r.out.split("\n")[:-1] if r.out.endswith("\n") else r.out.split("\n")

    def test_original_commands_one_reply_line_each(self):
        key = b'k\x00\xff "q" \\ end'
        value = b"v\x01\x00\xfe"
        script = [
            ("PUT x 100", lambda l: l == "OK"),
            ("put y 200", lambda l: l == "OK"),
            ("Get x", lambda l: l == "100"),
            ("GET missing", lambda l: l == "(nil)"),
            ("PUT %s %s" % (quote(key), quote(value)), lambda l: l == "OK"),
            ("GET %s" % quote(key), lambda l: unquote(l) == value),
            ('PUT "with space" "a b"', lambda l: l == "OK"),
            ('get "with space"', lambda l: unquote(l) == b"a b"),
            ("SIZE", lambda l: l == "4"),
            ("size", lambda l: l == "4"),
            ("DEL y", lambda l: l == "OK"),
            ("del y", lambda l: l == "(nil)"),
            ("FLUSH", lambda l: re.fullmatch(r"OK lsn=\d+", l)),
            ("SNAP", lambda l: re.fullmatch(r"OK lsn=\d+", l)),
            ("FROBNICATE 1", lambda l: l.startswith("ERR")),
            ("GET", lambda l: l.startswith("ERR")),
            ("SETBATCH 1", lambda l: l == "OK"),
            ("BENCH 20", lambda l: not l.startswith("ERR") and re.search(r"\d", l)),
            ("GET x", lambda l: l == "100"),
        ]
        # FROBNICATE and the bare GET are malformed: ERR in their place, and exit 2.
        replies = self.run_lines([cmd for cmd, _ in script], rc=2)
        self.assertEqual(len(replies), len(script), "one reply line per command:\n%s" % "\n".join(replies))
        for (cmd, check), reply in zip(script, replies):
            self.assertTrue(check(reply), "%r -> %r" % (cmd, reply))
        with self.kvd.raw() as c:  # the quoted key was stored as exact bytes
            self.assertEqual(c.get(key), value)
            self.assertEqual(c.get(b"with space"), b"a b")
        flush_lsn = int(replies[12].split("=")[1])
        self.assertGreaterEqual(flush_lsn, 5)  # 4 PUTs and a DEL came before it
        self.assertEqual(str(self.kvd.config_get("durability.batch_size")), "1")

    def test_exit_stops_reading(self):
        replies = self.run_lines(["PUT a 1", "EXIT", "PUT b 2", "GET a"])
        self.assertEqual(replies[0], "OK")
        self.assertLessEqual(len(replies), 2, "nothing after EXIT may run: %r" % replies)
        with self.kvd.raw() as c:
            self.assertIsNone(c.get("b"))

    def test_reply_is_flushed_after_each_line(self):
        # Interactive pipe: each reply must arrive before the next command is written.
        p = subprocess.Popen([kvdtest.binary("KVCTL_BIN"), "--socket", self.kvd.socket_path],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for cmd, want in (("PUT a 1", b"OK\n"), ("GET a", b"1\n"), ("SIZE", b"1\n")):
                p.stdin.write(cmd.encode() + b"\n")
                p.stdin.flush()
                ready, _, _ = select.select([p.stdout], [], [], TIMEOUT)
                self.assertTrue(ready, "no reply to %r while stdin stays open (not flushed?)" % cmd)
                self.assertEqual(p.stdout.readline(), want, cmd)
            p.stdin.close()
            self.assertEqual(p.wait(TIMEOUT), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()


class KvctlRepl(KvdTestCase):
    def test_repl_on_a_terminal(self):
        kvd = self.server()
        master, slave = os.openpty()
        p = subprocess.Popen([kvdtest.binary("KVCTL_BIN"), "--socket", kvd.socket_path],
                             stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        seen = bytearray()

        def read_until(needle):
            deadline = time.monotonic() + TIMEOUT
            while needle not in seen:
                left = deadline - time.monotonic()
                self.assertGreater(left, 0, "REPL never printed %r; got %r" % (needle, bytes(seen)))
                if select.select([master], [], [], left)[0]:
                    try:
                        seen.extend(os.read(master, 4096))
                    except OSError:  # EIO: the child closed the terminal
                        self.fail("REPL closed the terminal; got %r" % bytes(seen))
            i = seen.index(needle) + len(needle)
            out = bytes(seen[:i])
            del seen[:i]
            return out

        try:
            read_until(b"kvd> ")
            os.write(master, b"PUT a 1\n")
            self.assertIn(b"OK", read_until(b"kvd> "))
            os.write(master, b"get A\n")  # keys are case-sensitive, commands are not
            self.assertIn(b"(nil)", read_until(b"kvd> "))
            os.write(master, b"GET a\n")
            self.assertIn(b"1", read_until(b"kvd> "))
            os.write(master, b"EXIT\n")
            self.assertEqual(p.wait(TIMEOUT), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.close(master)


class CrashDemo(KvdTestCase):
    """The original engine's demo (README), with kvd in place of its in-process engine.
    As in the README, the crash is `kill -9` of that kvd's pid: another kvd on
    the host keeps running."""

    def demo(self, kvd):
        bystander = self.server(subdir="bystander")
        self.assertEqual(self.run_stdin(kvd, ["PUT x 100", "PUT y 200"]), ["OK", "OK"])
        flush = self.run_stdin(kvd, ["FLUSH"])
        self.assertRegex(flush[0], r"^OK lsn=\d+$")
        self.assertGreaterEqual(int(flush[0].split("=")[1]), 2)
        os.kill(kvd.pid, signal.SIGKILL)  # kill -9 $kvd_pid
        kvd.wait_exit()
        self.assertTrue(os.path.exists(kvd.socket_path), "precondition: kill -9 leaves the socket file")
        self.assertTrue(bystander.running(), "the crash demo must not kill other kvds")
        kvd.start()  # replaces the stale socket
        self.assertEqual(self.run_stdin(kvd, ["GET x", "GET y"]), ["100", "200"])

    def run_stdin(self, kvd, lines):
        r = kvd.kvctl(input="".join(l + "\n" for l in lines))
        self.assertEqual(r.rc, 0, r)
        return r.out.splitlines()

    def test_readme_demo_kills_by_pid(self):
        readme = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
        with open(readme) as f:
            text = f.read()
        demo = text[text.index("## The crash demo"):]
        demo = demo[:demo.index("\n## ", 1)]
        commands = [l.strip()[2:].split("#")[0].strip() for l in demo.splitlines() if l.strip().startswith("$ ")]
        self.assertIn("kill -9 $kvd_pid", commands)
        self.assertFalse([c for c in commands if re.match(r"(pkill|killall)\b", c)], commands)
        self.assertTrue(all(c.endswith("& kvd_pid=$!") for c in commands if c.startswith("build/rel/daemon/kvd")),
                        "every kvd the demo starts records its pid: %r" % commands)

    def test_crash_demo_sync_mode(self):
        self.demo(self.server())

    def test_crash_demo_batch_mode(self):
        # Nothing becomes durable on its own here: only FLUSH saves x and y.
        self.demo(self.server(durability={"mode": "batch", "batch_size": 100000, "flush_interval": "1m"}))


if __name__ == "__main__":
    kvdtest.main()
