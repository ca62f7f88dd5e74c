"""kvctl the way scripts use it, against a real kvd: socket precedence,
--timeout on a stopped server, exit codes of stdin mode, get's output,
batch, bench that leaves the server as it found it, and error messages."""

import os
import pty
import select
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, run_kvctl, TIMEOUT


def read_pty(master, proc):
    """Everything the child writes to the terminal until it exits."""
    out = bytearray()
    deadline = time.monotonic() + TIMEOUT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("kvctl on a terminal did not finish; got %r" % bytes(out))
        if select.select([master], [], [], left)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(TIMEOUT)
    return bytes(out)


class SocketPrecedence(KvdTestCase):
    def test_explicit_flag_beats_kvd_socket(self):
        a, b = self.server(), self.server()
        r = run_kvctl(["--socket", a.socket_path, "put", "where", "a"], env={"KVD_SOCKET": b.socket_path})
        self.assertEqual(r.rc, 0, r)
        r = run_kvctl(["--config", a.config_path, "put", "via-config", "a"], env={"KVD_SOCKET": b.socket_path})
        self.assertEqual(r.rc, 0, r)
        r = run_kvctl(["put", "via-env", "b"], env={"KVD_SOCKET": b.socket_path})  # no flag: the variable
        self.assertEqual(r.rc, 0, r)
        with a.raw() as ca, b.raw() as cb:
            self.assertEqual((ca.get("where"), ca.get("via-config"), ca.get("via-env")), (b"a", b"a", None))
            self.assertEqual((cb.get("where"), cb.get("via-config"), cb.get("via-env")), (None, None, b"b"))

    def test_help_documents_the_order(self):
        out = run_kvctl(["--help"]).out
        self.assertIn("--socket PATH; --config FILE's [server] socket; the\nKVD_SOCKET environment variable", out)


class Timeout(KvdTestCase):
    def test_stopped_kvd_exit_3_within_the_timeout(self):
        kvd = self.server()
        os.kill(kvd.pid, signal.SIGSTOP)  # the kvd this test started, by its pid
        try:
            for args, bound in ((["--timeout", "1s", "ping"], 1.0), (["ping"], 5.0)):  # 5s: the default
                start = time.monotonic()
                r = kvd.kvctl(*args)
                took = time.monotonic() - start
                self.assertEqual(r.rc, 3, r)
                self.assertGreaterEqual(took, bound * 0.9, "gave up before the timeout: %r" % (r,))
                self.assertLess(took, bound + 3, "the timeout did not bound the command")
                self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
                self.assertIn("timed out after %d ms" % (bound * 1000), r.err)
                self.assertIn("--timeout", r.err)
                self.assertEqual(r.out, "")
            # stdin mode: the same bound per command, an ERR line, exit 3
            r = kvd.kvctl("--timeout", "500ms", input="PING\n")
            self.assertEqual(r.rc, 3, r)
            self.assertTrue(r.out.startswith("ERR ") and "timed out" in r.out, r)
        finally:
            os.kill(kvd.pid, signal.SIGCONT)
        self.assertEqual(kvd.kvctl("ping").rc, 0)

    def test_bad_timeout_is_a_usage_error(self):
        r = run_kvctl(["--timeout", "soon", "ping"])
        self.assertEqual(r.rc, 2, r)


class StdinExitStatus(KvdTestCase):
    def setUp(self):
        super().setUp()
        self.kvd = self.server()

    def test_all_good_is_0_and_a_failed_command_is_not(self):
        r = self.kvd.kvctl(input="PUT a 1\nGET a\nGET nope\nDEL nope\n")
        self.assertEqual((r.rc, r.out), (0, "OK\n1\n(nil)\n(nil)\n"))
        r = self.kvd.kvctl(input="PUT a 1\nFROB\nGET a\n")
        self.assertEqual(r.rc, 2, r)
        self.assertEqual(r.out.splitlines(), ["OK", "ERR unknown command 'FROB' (try HELP)", "1"])
        r = self.kvd.kvctl(input="PUT %s v\nGET a\n" % ("k" * 70000))  # over max_key_bytes: the server refuses
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(len(r.out.splitlines()), 2, r.out)
        r = self.kvd.kvctl(input="CONFIG SET durability.batch_size lots\n")
        self.assertEqual(r.rc, 2, r)
        self.assertTrue(r.out.startswith("ERR "), r.out)

    def test_connection_lost_mid_stream_exits_3(self):
        p = subprocess.Popen([kvdtest.binary("KVCTL_BIN"), "--socket", self.kvd.socket_path],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            p.stdin.write(b"PUT a 1\n")
            p.stdin.flush()
            ready, _, _ = select.select([p.stdout], [], [], TIMEOUT)
            self.assertTrue(ready)
            self.assertEqual(p.stdout.readline(), b"OK\n")
            self.kvd.kill(signal.SIGKILL)
            out, _ = p.communicate(b"PUT b 2\nGET a\n", timeout=TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        lines = out.decode().splitlines()
        self.assertEqual(len(lines), 2, lines)  # still one line per command
        self.assertTrue(all(l.startswith("ERR ") for l in lines), lines)
        self.assertEqual(p.returncode, 3)


class GetOutput(KvdTestCase):
    VALUE = b"red:\x1b[31m\x1b]0;pwned\x07 tab\t nul\x00 caf\xc3\xa9\n"

    def setUp(self):
        super().setUp()
        self.kvd = self.server()
        with self.kvd.raw() as c:
            c.put(b"v", self.VALUE)
            c.put(b"plain", b"hello")

    def test_piped_value_ends_with_a_newline(self):
        self.assertEqual(self.kvd.kvctl("get", "plain").out_bytes, b"hello\n")
        self.assertEqual(self.kvd.kvctl("get", "v").out_bytes, self.VALUE + b"\n")

    def test_raw_is_exactly_the_bytes(self):
        self.assertEqual(self.kvd.kvctl("get", "--raw", "plain").out_bytes, b"hello")
        self.assertEqual(self.kvd.kvctl("get", "--raw", "v").out_bytes, self.VALUE)

    def run_on_pty(self, *args):
        master, slave = pty.openpty()
        p = subprocess.Popen([kvdtest.binary("KVCTL_BIN"), "--socket", self.kvd.socket_path] + list(args),
                             stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.DEVNULL, close_fds=True)
        os.close(slave)
        try:
            return read_pty(master, p), p.returncode
        finally:
            os.close(master)

    def test_terminal_gets_escaped_text(self):
        out, rc = self.run_on_pty("get", "v")
        self.assertEqual(rc, 0)
        # The terminal turns \n into \r\n; one line, no escape or control byte reaches it.
        self.assertEqual(out, b"red:\\x1b[31m\\x1b]0;pwned\\x07 tab\\t nul\\x00 caf\xc3\xa9\\n\r\n")
        out, rc = self.run_on_pty("get", "--raw", "plain")
        self.assertEqual((out, rc), (b"hello", 0))


class Batch(KvdTestCase):
    def setUp(self):
        super().setUp()
        self.kvd = self.server()

    def test_arguments_one_atomic_record(self):
        with self.kvd.raw() as c:
            c.put("gone", "x")
            before = c.put("marker", "1").lsn
        r = self.kvd.kvctl("batch", "put", "a", "1", "put", "b", "2", "del", "gone")
        self.assertEqual((r.rc, r.out), (0, "OK\n"), r)
        with self.kvd.raw() as c:
            after = c.put("marker", "2").lsn
            self.assertEqual((c.get("a"), c.get("b"), c.get("gone")), (b"1", b"2", None))
        self.assertEqual(after - before, 2, "the batch must be one write with one LSN")

    def test_stdin_with_quoted_bytes_and_durable(self):
        script = '# load\nPUT "k\\x00" "two words"\n\ndel nothing\nput plain v\n'
        r = self.kvd.kvctl("batch", "--durable", input=script)
        self.assertEqual((r.rc, r.out), (0, "OK\n"), r)
        with self.kvd.raw() as c:
            self.assertEqual((c.get(b"k\x00"), c.get("plain")), (b"two words", b"v"))

    def test_syntax_error_sends_nothing(self):
        for args, input in ((["batch", "put", "a", "1", "put", "b"], None),
                            (["batch"], "PUT a 1\nGET b\n"),
                            (["batch", "-"], ""),
                            (["batch", "put", "a", "1", "frob", "x"], None)):
            r = self.kvd.kvctl(*args, input=input)
            self.assertEqual(r.rc, 2, "%r: %r" % (args, r))
            self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
            self.assertIn("nothing was sent", r.err)
        with self.kvd.raw() as c:
            self.assertEqual(c.count(), 0)

    def test_help_documents_the_syntax(self):
        out = run_kvctl(["batch", "--help"]).out
        self.assertIn("kvctl batch put user:1 alice put user:2 bob del user:3", out)
        self.assertIn("PUT key value or DEL key", out)


class Bench(KvdTestCase):
    def setUp(self):
        super().setUp()
        self.kvd = self.server(durability={"mode": "batch"})

    def mode(self):
        return str(self.kvd.config_get("durability.mode"))

    def test_per_request_sync_and_clean_up(self):
        with self.kvd.raw() as c:
            c.put("user:1", "mine")
        r = self.kvd.kvctl("bench", "--durability", "sync", "--requests", "300", "--key-space", "100",
                           "--clients", "2", "--no-progress", "--json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.mode(), "batch")
        with self.kvd.raw() as c:
            self.assertEqual(c.count("bench:"), 0, "bench keys left behind")
            self.assertEqual(c.count(), 1)
        r = self.kvd.kvctl("bench", "--requests", "300", "--key-space", "100", "--no-progress", "--keep")
        self.assertEqual(r.rc, 0, r)
        with self.kvd.raw() as c:
            kept = c.count("bench:")
            self.assertGreater(kept, 50)
            self.assertEqual(c.count(), kept + 1)  # every bench key carries the prefix
        r = self.kvd.kvctl("bench", "--durability", "none", "--requests", "10", "--no-progress")
        self.assertEqual(r.rc, 2, r)  # would need a CONFIG SET
        self.assertEqual(self.mode(), "batch")

    def test_killed_bench_leaves_the_configuration_alone(self):
        p = subprocess.Popen([kvdtest.binary("KVCTL_BIN"), "--socket", self.kvd.socket_path, "bench",
                              "--durability", "sync", "--duration", "60s", "--no-progress", "--key-space", "1000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def running():
                with self.kvd.raw() as c:
                    return c.count("bench:") > 0
            kvdtest.wait_until(running, what="bench to write")
            self.assertEqual(self.mode(), "batch")
        finally:
            p.kill()  # by its pid
            p.wait()
        self.assertEqual(self.mode(), "batch")


class Errors(KvdTestCase):
    def test_unknown_command(self):
        r = run_kvctl(["frob"])
        self.assertEqual(r.rc, 2)
        self.assertEqual(r.err, "kvctl: unknown command 'frob' (see kvctl --help)\n")

    def test_config_set_refused_value_exits_2(self):
        kvd = self.server()
        for args in (("durability.batch_size", "lots"), ("durability.mode", "fast"), ("no.such_key", "1")):
            r = kvd.kvctl("config", "set", *args)
            self.assertEqual(r.rc, 2, r)
            self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)

    def test_snapshot_prints_path_and_lsn(self):
        kvd = self.server()
        with kvd.raw() as c:
            lsn = c.put("k", "v").lsn
        r = kvd.kvctl("snapshot")
        self.assertEqual(r.rc, 0, r)
        fields = dict(f.split("=", 1) for f in r.out.split())
        self.assertGreaterEqual(int(fields["lsn"]), lsn)
        self.assertTrue(os.path.isfile(fields["path"]), r.out)
        self.assertEqual(os.path.dirname(fields["path"]), kvd.snapshot_path)
        self.assertEqual(kvdtest.snapshot_lsn(os.path.basename(fields["path"])), int(fields["lsn"]))

    def test_permission_error_names_owner_group_and_mode(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run kvctl as another user")
        kvd = self.server()

        def as_nobody():
            os.setgid(65534)
            os.setgroups([])
            os.setuid(65534)

        def kvctl_as_nobody():
            p = subprocess.run([kvdtest.binary("KVCTL_BIN"), "--socket", kvd.socket_path, "ping"],
                               capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=as_nobody)
            return p.returncode, p.stderr

        rc, err = kvctl_as_nobody()  # the test's temp dir (0700) is in the way
        self.assertEqual(rc, 3, err)
        self.assertIn("permission denied on %s (owner root, group root, mode 0700)" % self.tmp, err)
        for d in (self.tmp, kvd.dir):
            os.chmod(d, 0o755)
        rc, err = kvctl_as_nobody()  # now the socket itself (socket_mode 0660, owned by root)
        self.assertEqual(rc, 3, err)
        self.assertIn("permission denied on %s (owner root, group root, mode 0660)" % kvd.socket_path, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)


if __name__ == "__main__":
    kvdtest.main()
