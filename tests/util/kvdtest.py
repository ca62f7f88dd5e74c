"""Test harness for the real kvd: start it on a private temp dir, wait for
READY=1 over sd_notify, drive it through kvctl and the wire protocol.

Used by tests/integration/*.py and by the failure tests (crash loops,
corruption, hostile clients). Python 3 standard library only.

Environment: KVD_BIN, KVCTL_BIN (set by ctest), KVD_TEST_TIMEOUT (seconds for
start-up and each operation, default 30), KVD_KEEP_TMP=1 keeps temp dirs.

Nothing here sleeps to synchronise: readiness is the READY=1 datagram, process
exit is observed by a waiter thread, replies are read with socket timeouts.
Where kvd offers no event (a log line, a file disappearing), wait_until()
polls with a deadline so a hang fails instead of blocking CI.
"""

import faulthandler
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import kvd_proto

TIMEOUT = float(os.environ.get("KVD_TEST_TIMEOUT", "30"))

# ---- wire protocol: the codec is kvd_proto's (tests/util/kvd_proto.py) ---------
MAGIC, VERSION, FLAG_DURABLE = kvd_proto.MAGIC, kvd_proto.VERSION, kvd_proto.FLAG_DURABLE
Reply = kvd_proto.Reply
put_payload = kvd_proto.put_payload
batch_payload = kvd_proto.batch_payload
scan_payload = kvd_proto.scan_payload
decode_scan_reply = kvd_proto.decode_scan_reply
config_set_payload = kvd_proto.config_set_payload


class Op:
    PING, GET, PUT, DEL, BATCH, SCAN, COUNT, FLUSH, SNAPSHOT, STATUS, CONFIG_GET, CONFIG_SET = range(1, 13)


class Code:  # kvd::Code
    OK, NOT_FOUND, INVALID_ARGUMENT, TOO_LARGE, WRITES_REFUSED, NO_SPACE = 0, 1, 2, 3, 4, 5
    IO_ERROR, CORRUPTION, BUSY, SHUTTING_DOWN, UNSUPPORTED, INTERNAL = 6, 7, 8, 9, 10, 11


assert (Op.CONFIG_SET, Code.INTERNAL) == (kvd_proto.OP_CONFIG_SET, kvd_proto.INTERNAL)


def _b(x):
    return x.encode() if isinstance(x, str) else bytes(x)


def encode_frame(opcode, payload=b"", req_id=0, flags=0, magic=MAGIC, version=VERSION, length=None):
    """One request frame; `magic`, `version` and the length field may be forged."""
    frame = kvd_proto.encode_request(opcode, payload, req_id, flags, magic, version)
    return frame if length is None else struct.pack("<I", length) + frame[4:]


ConnectionClosed = kvd_proto.KvdConnectionClosed


class RawConn:
    """A protocol connection for tests: convenience calls that return plain
    values and raise KvdError on an unexpected status (get -> bytes | None,
    count -> int, status -> dict), frames with chosen ids or forged fields,
    and wait_closed() to watch kvd drop the connection. Every receive has a
    timeout (socket.timeout on a hang). Socket and codec: kvd_proto."""

    def __init__(self, path, timeout=TIMEOUT):
        self.client = kvd_proto.KvdClient(path, timeout)
        self.sock = self.client.sock
        self.next_id = 1

    def close(self):
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.client.send_raw(data)

    def queue(self, opcode, payload=b"", flags=0, req_id=None):
        """Encodes a request and returns (frame, id) without sending."""
        if req_id is None:
            req_id, self.next_id = self.next_id, self.next_id + 1
        return encode_frame(opcode, payload, req_id, flags), req_id

    def recv_reply(self):
        """The next reply (kvd_proto.Reply); ConnectionClosed at EOF or reset."""
        try:
            return self.client.recv()
        except ConnectionResetError:
            raise ConnectionClosed("kvd reset the connection")

    def wait_closed(self, timeout=TIMEOUT):
        """Reads until kvd closes the connection. Returns the replies received
        before the close; raises socket.timeout if it stays open."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        replies = []
        try:
            while True:
                try:
                    replies.append(self.recv_reply())
                except ConnectionClosed:
                    return replies
        finally:
            self.sock.settimeout(old)

    def call(self, opcode, payload=b"", flags=0):
        frame, req_id = self.queue(opcode, payload, flags)
        self.send(frame)
        reply = self.recv_reply()
        if reply.request_id != req_id:
            raise AssertionError("reply id %d != request id %d" % (reply.request_id, req_id))
        if reply.opcode != opcode:
            raise AssertionError("reply opcode %d != request opcode %d" % (reply.opcode, opcode))
        return reply

    def check(self, opcode, payload=b"", flags=0, allowed=(Code.OK,)):
        reply = self.call(opcode, payload, flags)
        if reply.status not in allowed:
            raise KvdError("opcode %d failed: status %d: %r" % (opcode, reply.status, reply.payload))
        return reply

    # convenience
    def ping(self):
        return self.check(Op.PING)

    def put(self, key, value, durable=False):
        return self.check(Op.PUT, put_payload(key, value), FLAG_DURABLE if durable else 0)

    def get(self, key):
        r = self.check(Op.GET, _b(key), allowed=(Code.OK, Code.NOT_FOUND))
        return r.payload if r.ok else None

    def delete(self, key):
        return self.check(Op.DEL, _b(key), allowed=(Code.OK, Code.NOT_FOUND))

    def batch(self, ops, durable=False):
        return self.check(Op.BATCH, batch_payload(ops), FLAG_DURABLE if durable else 0)

    def scan(self, prefix=None, start=None, end=b"", after=b"", limit=0):
        return decode_scan_reply(self.check(Op.SCAN, scan_payload(prefix, start, end, after, limit)).payload)

    def count(self, prefix=b""):
        return struct.unpack("<Q", self.check(Op.COUNT, _b(prefix)).payload)[0]

    def flush(self):
        return self.check(Op.FLUSH)

    def snapshot(self):
        return self.check(Op.SNAPSHOT)

    def status(self):
        return json.loads(self.check(Op.STATUS).payload.decode())

    def config_get(self, name=""):
        return json.loads(self.check(Op.CONFIG_GET, _b(name)).payload.decode())

    def config_set(self, name, value):
        return self.call(Op.CONFIG_SET, config_set_payload(name, value))


class KvdError(Exception):
    pass


# ---- helpers ---------------------------------------------------------------

def wait_until(pred, timeout=TIMEOUT, interval=0.02, what="condition"):
    """Polls pred() until it returns a truthy value (returned) or the deadline
    passes (AssertionError). For facts kvd announces by no event."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def find_key(obj, name):
    """All values stored under key `name` anywhere in a nested JSON object."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == name:
                found.append(v)
            found.extend(find_key(v, name))
    elif isinstance(obj, list):
        for v in obj:
            found.extend(find_key(v, name))
    return found


def json_strings(obj):
    """Every string and number in a JSON object, as text (for 'names X' checks)."""
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in [str(k)] + json_strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in json_strings(v)]
    return [str(obj)]


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a TOML basic string is a JSON string for our values


def render_toml(config):
    """config: {section: {key: value}}; returns (text, {"section.key": line})."""
    lines, where = [], {}
    for section, keys in config.items():
        if lines:
            lines.append("")
        lines.append("[%s]" % section)
        for k, v in keys.items():
            lines.append("%s = %s" % (k, toml_value(v)))
            where["%s.%s" % (section, k)] = len(lines)
    return "\n".join(lines) + "\n", where


def binary(env_name):
    path = os.environ.get(env_name)
    if not path or not os.access(path, os.X_OK):
        raise AssertionError(
            "%s is not set to an executable (got %r); run through ctest" % (env_name, path))
    return path


class KvctlResult(tuple):
    """(rc, stdout, stderr) as text (surrogateescape keeps raw bytes);
    .out_bytes / .err_bytes hold the raw output."""

    def __new__(cls, rc, out, err):
        self = super().__new__(cls, (rc, out.decode("utf-8", "surrogateescape"),
                                     err.decode("utf-8", "surrogateescape")))
        self.out_bytes, self.err_bytes = out, err
        return self

    rc = property(lambda self: self[0])
    out = property(lambda self: self[1])
    err = property(lambda self: self[2])


def run_kvctl(args, input=None, env=None, timeout=TIMEOUT):
    full_env = {k: v for k, v in os.environ.items() if k != "KVD_SOCKET"}
    full_env.update(env or {})
    p = subprocess.run([binary("KVCTL_BIN")] + [str(a) for a in args], input=_b(input) if input is not None else None,
                       stdin=subprocess.DEVNULL if input is None else None,
                       capture_output=True, env=full_env, timeout=timeout)
    return KvctlResult(p.returncode, p.stdout, p.stderr)


# ---- the server ------------------------------------------------------------

class KvdServer:
    """One kvd process on its own socket and data dirs under `tmpdir`.

    KvdServer(tmpdir, durability={"mode": "batch"}, storage={"segment_size": "64KiB"})
    Overrides are per TOML table; they replace defaults key by key. Pass
    start=False to only write the config. A server may be restarted; its log
    file accumulates every run (log_offset() marks a point to read from).
    """

    def __init__(self, tmpdir=None, start=True, env=None, extra_toml="", extra_args=(), exec_prefix=(), **overrides):
        self._own_tmp = tmpdir is None
        self.dir = tempfile.mkdtemp(prefix="kvdt-") if tmpdir is None else tmpdir
        os.makedirs(self.dir, exist_ok=True)
        self.socket_path = os.path.join(self.dir, "kvd.sock")
        self.wal_path = os.path.join(self.dir, "data", "wal")
        self.snapshot_path = os.path.join(self.dir, "data", "snapshots")
        self.config_path = os.path.join(self.dir, "kvd.toml")
        self.log_path = os.path.join(self.dir, "kvd.log")
        self.env = env or {}
        self.extra_args = list(extra_args)  # e.g. ["--fault-env", "power-loss"] (test builds)
        # Runs kvd through e.g. ["ip", "netns", "exec", NS] (tests/cluster); it must exec, keeping the pid.
        self.exec_prefix = list(exec_prefix)
        self.proc = None
        self.starts = 0
        self.notifications = []  # every sd_notify datagram, in order (text)
        self._cond = threading.Condition()
        self._exited = False
        self._notify_sock = None
        self._closing = False
        self.config = {}
        self.config_lines = {}
        self.write_config(extra_toml=extra_toml, **overrides)
        self._open_notify_socket()
        if start:
            self.start()

    # -- config --
    def default_config(self):
        return {
            "server": {"socket": self.socket_path},
            "storage": {"wal_path": self.wal_path, "snapshot_path": self.snapshot_path},
            "log": {"level": "info", "target": "stderr"},
        }

    def write_config(self, extra_toml="", text=None, **overrides):
        """Writes kvd.toml: defaults + overrides (+ raw extra_toml appended),
        or exactly `text`. Keeps self.config / self.config_lines
        ({"table.key": line number}) for the tests."""
        if text is None:
            config = self.default_config()
            for section, keys in overrides.items():
                config.setdefault(section, {}).update(keys)
            text, self.config_lines = render_toml(config)
            self.config = config
            text += extra_toml
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)
        return text

    # -- sd_notify --
    def _open_notify_socket(self):
        """A fresh socket (and reader) per start: a datagram an earlier kvd
        sent late can never count as this start's READY=1."""
        self._close_notify_socket()
        self.notify_path = os.path.join(self.dir, "notify-%d.sock" % self.starts)
        if os.path.exists(self.notify_path):
            os.unlink(self.notify_path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(self.notify_path)
        s.settimeout(0.2)
        self._notify_sock = s
        self._notify_stop = threading.Event()
        t = threading.Thread(target=self._notify_reader, args=(s, self._notify_stop), name="kvd-notify", daemon=True)
        t.start()
        self._notify_thread = t

    def _close_notify_socket(self):
        """Stops the reader first (shutdown wakes its recv), then closes: a
        reused descriptor number can never be read by the old reader."""
        if self._notify_sock is None:
            return
        self._notify_stop.set()
        try:
            self._notify_sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._notify_thread.join(2)
        self._notify_sock.close()
        self._notify_sock = None
        try:
            os.unlink(self.notify_path)
        except OSError:
            pass

    def _notify_reader(self, sock, stop):
        # A reader thread so kvd never finds the socket buffer full.
        while not self._closing and not stop.is_set():
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if stop.is_set():
                return
            with self._cond:
                self.notifications.extend(
                    [line for line in data.decode("utf-8", "replace").split("\n") if line])
                self._cond.notify_all()

    def wait_notification(self, pred, since=0, timeout=TIMEOUT, fail_on_exit=True):
        """Waits for a notification line (from index `since`) satisfying pred;
        returns its index. Fails if kvd exits first (with its log)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(since, len(self.notifications)):
                    if pred(self.notifications[i]):
                        return i
                if fail_on_exit and self._exited:
                    raise KvdError("kvd exited with %r before the awaited notification; log:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise KvdError("timed out after %.0fs waiting for a notification (got %r); log:\n%s"
                                   % (timeout, self.notifications[since:], self.log_tail()))
                self._cond.wait(left)

    # -- process --
    def _spawn(self):
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(b"=== kvdtest: start #%d ===\n" % self.starts)
        env = {k: v for k, v in os.environ.items()
               if k not in ("JOURNAL_STREAM", "INVOCATION_ID", "LISTEN_FDS", "LISTEN_PID", "WATCHDOG_USEC",
                            "KVD_SOCKET")}
        self._open_notify_socket()
        with self._cond:
            # Marked before the process exists: a kvd that recovers in a few ms
            # can send READY=1 before Popen returns to a busy test thread.
            self._start_mark = len(self.notifications)
        env["NOTIFY_SOCKET"] = self.notify_path
        env.update(self.env)
        log = open(self.log_path, "ab")
        try:
            proc = subprocess.Popen(self.exec_prefix + [binary("KVD_BIN"), "--config", self.config_path] + self.extra_args,
                                    stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, env=env, cwd=self.dir)
        finally:
            log.close()
        with self._cond:
            self.proc = proc
            self._exited = False
        threading.Thread(target=self._waiter, args=(proc,), daemon=True).start()
        return proc

    def _waiter(self, proc):
        proc.wait()
        with self._cond:
            if proc is self.proc:
                self._exited = True
            self._cond.notify_all()

    def start(self, timeout=TIMEOUT):
        """Starts kvd and returns once it sent READY=1."""
        if self.running():
            raise KvdError("kvd is already running")
        self._spawn()
        self.wait_notification(lambda n: n == "READY=1", since=self._start_mark, timeout=timeout)
        return self

    def spawn_and_kill(self, delay, before_kill=None):
        """Starts kvd and SIGKILLs it `delay` seconds later, ready or not (a
        crash during start-up and recovery); before_kill() runs just before
        the signal (e.g. a power cut). Returns the exit code."""
        proc = self._spawn()
        time.sleep(delay)  # a random moment on purpose: nothing is awaited
        if before_kill is not None:
            before_kill()
        proc.kill()
        return self.wait_exit()

    def start_expect_failure(self, timeout=TIMEOUT):
        """Starts kvd expecting it to refuse: returns (exit code, log of this run).
        Fails if it became ready or did not exit within the timeout."""
        self._spawn()
        mark = self._start_mark
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._exited:
                if "READY=1" in self.notifications[mark:]:
                    raise KvdError("kvd became ready although it should refuse to start; log:\n" + self.log_tail())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise KvdError("kvd neither exited nor got ready in %.0fs; log:\n%s" % (timeout, self.log_tail()))
                self._cond.wait(left)
        if "READY=1" in self.notifications[mark:]:
            raise KvdError("kvd sent READY=1 before exiting; log:\n" + self.log_tail())
        return self.proc.returncode, self.log_of_run()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def kill(self, sig=signal.SIGKILL, wait=None):
        """Sends sig. For SIGKILL (or wait=True) waits for the exit and returns
        the exit code."""
        self.proc.send_signal(sig)
        if wait or (wait is None and sig == signal.SIGKILL):
            return self.wait_exit()
        return None

    def wait_exit(self, timeout=TIMEOUT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise KvdError("kvd did not exit within %.0fs (killed); log:\n%s" % (timeout, self.log_tail()))

    def terminate_and_wait(self, sig=signal.SIGTERM, timeout=TIMEOUT):
        """SIGTERM (or sig) and wait: returns the exit code."""
        self.proc.send_signal(sig)
        return self.wait_exit(timeout)

    def stop(self):
        """Best-effort: SIGTERM, then SIGKILL if needed. Never raises."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.terminate()
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self, sig=signal.SIGTERM, timeout=TIMEOUT):
        """Stops kvd with sig if running (SIGKILL: crash), then starts it."""
        if self.running():
            if sig == signal.SIGKILL:
                self.kill(signal.SIGKILL)
            else:
                rc = self.terminate_and_wait(sig)
                if rc != 0:
                    raise KvdError("kvd exited %d on signal %d; log:\n%s" % (rc, sig, self.log_tail()))
        return self.start(timeout)

    def reload(self, timeout=TIMEOUT):
        """SIGHUP. Returns the notification index to wait from."""
        mark = len(self.notifications)
        self.proc.send_signal(signal.SIGHUP)
        return mark

    def close(self):
        """Kills kvd if still running, stops the notify reader, removes the
        temp dir if the harness made it (KVD_KEEP_TMP=1 keeps it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._closing = True
        self._close_notify_socket()
        if self._own_tmp and not os.environ.get("KVD_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- logs --
    def log_offset(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_text(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_of_run(self):
        """The log of the most recent start only."""
        text = self.log_text()
        marker = "=== kvdtest: start #%d ===\n" % self.starts
        return text[text.rfind(marker) + len(marker):] if marker in text else text

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def wait_for_log(self, pred, since=0, timeout=TIMEOUT, what="log line"):
        """Waits until pred(text of the log since `since`) is true; returns that text."""
        def check():
            text = self.log_text(since)
            return text if pred(text) else None
        return wait_until(check, timeout, 0.02, what)

    # -- clients --
    def client(self, **kw):
        """A kvd_proto.KvdClient (the Python client library) on this socket."""
        import kvd_proto
        return kvd_proto.KvdClient(self.socket_path, **kw)

    def raw(self, timeout=TIMEOUT):
        """A byte-exact RawConn on this socket."""
        return RawConn(self.socket_path, timeout)

    def kvctl(self, *args, input=None, env=None, timeout=TIMEOUT):
        """Runs $KVCTL_BIN --socket <this socket> args...: KvctlResult (rc, stdout, stderr)."""
        return run_kvctl(["--socket", self.socket_path] + list(args), input=input, env=env, timeout=timeout)

    def status(self):
        """STATUS over the protocol, as a dict."""
        with self.raw() as c:
            return c.status()

    def config_get(self, name):
        """CONFIG GET name over the protocol: the value (as kvd sent it)."""
        with self.raw() as c:
            obj = c.config_get(name)
        if name in obj:
            return obj[name]
        values = find_key(obj, name.split(".")[-1])
        if len(values) == 1:
            return values[0]
        raise KvdError("CONFIG GET %s returned %r" % (name, obj))

    # -- files --
    def wal_segments(self):
        """Sorted names of wal-*.log files in wal_path."""
        try:
            return sorted(n for n in os.listdir(self.wal_path) if n.startswith("wal-") and n.endswith(".log"))
        except FileNotFoundError:
            return []

    def snapshots(self):
        try:
            return sorted(n for n in os.listdir(self.snapshot_path) if n.startswith("snap-") and n.endswith(".kvs"))
        except FileNotFoundError:
            return []


def segment_first_lsn(name):
    return int(name[len("wal-"):-len(".log")])


def snapshot_lsn(name):
    return int(name[len("snap-"):-len(".kvs")])


# ---- unittest glue -----------------------------------------------------------

class KvdTestCase(unittest.TestCase):
    """Gives each test a fresh temp dir, closes every server it started, and
    prints their logs when the test fails (kept on disk with KVD_KEEP_TMP=1)."""

    def setUp(self):
        self._servers = []
        self.tmp = tempfile.mkdtemp(prefix="kvdt-")
        seed = os.environ.get("KVD_TEST_SEED")
        self.seed = int(seed) if seed else random.randrange(1 << 32)
        self.rng = random.Random(self.seed)

    def server(self, start=True, subdir=None, **overrides):
        d = os.path.join(self.tmp, subdir or "s%d" % len(self._servers))
        s = KvdServer(d, start=False, **overrides)
        self._servers.append(s)
        if start:
            s.start()
        return s

    def run(self, result=None):
        result = result or self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        super().run(result)
        failed = len(result.failures) + len(result.errors) > before
        if failed:
            sys.stderr.write("\n--- %s failed (seed %d; KVD_TEST_SEED=%d reproduces) ---\n"
                             % (self.id(), self.seed, self.seed))
        for s in getattr(self, "_servers", []):
            if failed:
                sys.stderr.write("--- log of kvd in %s (last 80 lines) ---\n%s\n" % (s.dir, s.log_tail(80)))
            s.close()
        if hasattr(self, "tmp"):
            if os.environ.get("KVD_KEEP_TMP"):
                sys.stderr.write("--- temp dir kept: %s ---\n" % self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        return result


# ctest's SKIP_RETURN_CODE for every Python test: a test that could not run
# (no fault injection built, no privilege to mount, a tool missing) is
# reported as skipped, never as passed; scripts/test.sh fails CI on it.
SKIP_EXIT = 77


def main(total_timeout=600):
    """unittest.main with a whole-file watchdog: dumps every thread's stack
    and exits non-zero instead of hanging CI. Exits SKIP_EXIT if a test was
    skipped and none failed, 1 if nothing ran."""
    faulthandler.dump_traceback_later(total_timeout, exit=True)
    result = unittest.main(verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.skipped:
        for test, reason in result.skipped:
            print("SKIPPED: %s: %s" % (test.id(), reason))
        sys.exit(SKIP_EXIT)
    if result.testsRun == 0:
        print("no test ran")
        sys.exit(1)
    sys.exit(0)
