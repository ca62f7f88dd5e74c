"""The replicated rows of bench/compare.py (issue 15): kvd in durability mode
sync as a single node and as a primary with 1 and 2 replicas, beside Redis
(appendonly yes, appendfsync always) as a single node and with one replica,
PUT only, pipeline 1, clients 1/16/64, in the same run; then the replication
lag per write under 64-client load.

Every kvd node has its own data dir and Unix socket; replicas connect to the
primary's [replication] listen port on 127.0.0.1 (docs/replication.md). Redis
replicas use `replicaof` over a 127.0.0.1 TCP port (it cannot replicate over
a Unix socket); clients reach both primaries over their Unix sockets. Every
server, replicas included, is pinned to the server CPU as in compare.py, the
load generators (and the lag poller) to the other CPU. kvctl bench drives
kvd, redis-benchmark drives Redis, as the other rows do.

sync_replicas is a parameter of each row. A row asks for N synchronous
replicas only if `kvd --check-config` accepts sync_replicas = N; otherwise it
runs with sync_replicas = 0 and is labelled async, and the report says why.

Lag: the load generator writes the LSN and the CLOCK_MONOTONIC time of every
acknowledged PUT (kvctl bench --ack-log), while a poller thread per replica
sends STATUS to the replica every --repl-poll-us and keeps (time sent, time
answered, applied_lsn). A write's lag is the answer time of the first poll
whose applied_lsn covers its LSN, minus the time its OK reached the client:
an upper bound; the send time of the poll before it is a lower bound (both
reported; they differ by a poll period plus a STATUS round trip). A write the replica applied before the client had
its OK counts as lag 0 (reported as a share). The pollers run at SCHED_FIFO
priority 1 where allowed (they sleep between polls), so that a busy machine
does not stretch the poll period.
Run sizes: each row's request count comes from the rate of a short probe run
of the same setup (about --repl-seconds a run); --quick uses tiny fixed counts.
"""
import json
import math
import os
import platform
import socket
import statistics
import struct
import subprocess
import tempfile
import threading
import time

from compare import Kvd, Redis, wait_for_socket

OP_STATUS = 10
REQUEST_HEADER = struct.Struct("<HBBHHQ")    # magic version opcode flags reserved request_id
REPLY_HEADER = struct.Struct("<HBBHHQQQ")    # magic version opcode status flags id durable_lsn lsn
MAGIC, VERSION = 0x564B, 1
CATCH_UP_TIMEOUT_S = 120
LAG_TARGET_MS = 5.0
LAG_METHOD = (
    "How lag is measured: `kvctl bench --ack-log` records, for every acknowledged PUT, its LSN and the "
    "CLOCK_MONOTONIC time its OK reached the client. Meanwhile one thread per replica (%s) sends STATUS to the "
    "replica over its Unix socket at most every %d µs and keeps (time sent, time answered, `applied_lsn`). A "
    "write's lag (p50, p99, max) is the answer time of the first poll whose `applied_lsn` covers its LSN minus "
    "its OK time: an upper bound. The previous poll, which did not see the write applied yet, was sent before "
    "the replica applied it, so its send time minus the OK time is a lower bound (the 'lower bound' column); "
    "the truth lies between, and the gap is the poll period plus a STATUS round trip, which grows when the "
    "machine is busy. A write the replica had applied before the client got its OK counts as 0 ms (the "
    "'applied before the OK' share: a replica receives records once the primary wrote them, before its "
    "fdatasync). The polls add load to the replica's CPU, so the throughput rows above come from separate runs "
    "without the poller.")
THROUGHPUT_TARGET_X = 0.6


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)  # the clock kvctl's --ack-log uses


def percentile(sorted_values, p):
    """Nearest rank."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


# ---- kvd ----------------------------------------------------------------------------------
class StatusConn:
    """One connection that sends STATUS (docs/wire_protocol.md) and returns the
    decoded JSON: the lag poller's fast path (no process per poll)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.next_id = 1

    def status(self):
        header = REQUEST_HEADER.pack(MAGIC, VERSION, OP_STATUS, 0, 0, self.next_id)
        self.sock.sendall(struct.pack("<I", len(header)) + header)
        self.next_id += 1
        (length,) = struct.unpack("<I", self._read(4))
        body = self._read(length)
        _magic, _ver, _op, status, _flags, _rid, _durable, _lsn = REPLY_HEADER.unpack_from(body)
        payload = body[REPLY_HEADER.size:]
        if status != 0:
            raise RuntimeError("STATUS failed: %d %r" % (status, payload[:200]))
        return json.loads(payload)

    def _read(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise RuntimeError("kvd closed the STATUS connection")
            buf += chunk
        return bytes(buf)

    def close(self):
        self.sock.close()


class KvdNode(Kvd):
    """kvd in sync mode with a [replication] table (values are TOML literals)."""

    def __init__(self, build, workdir, cpu, replication, name="p"):
        super().__init__(build, workdir, cpu, "sync")
        self.name = name
        if replication:  # none: a plain single node
            with open(self.conf, "a") as f:
                f.write("[replication]\n" + "".join("%s = %s\n" % kv for kv in replication.items()))

    def status(self):
        c = StatusConn(self.sock)
        try:
            return c.status()
        finally:
            c.close()


def check_config(build, tmp, replication):
    """(accepted, kvd's message): whether kvd --check-config takes this [replication] table."""
    d = tempfile.mkdtemp(dir=tmp)
    node = KvdNode(build, d, 0, replication)
    r = subprocess.run([node.bin, "--check-config", "--config", node.conf], capture_output=True, text=True)
    return r.returncode == 0, (r.stderr or r.stdout).strip().replace(node.conf, "kvd.toml")


def toml_str(s):
    return '"%s"' % s


class KvdSet:
    """A kvd primary and `replicas` replicas (none: a plain single node)."""

    def __init__(self, build, tmp, cpu, replicas, sync_replicas):
        self.replicas_n, self.sync_replicas = replicas, sync_replicas
        if replicas == 0:
            self.primary = KvdNode(build, tempfile.mkdtemp(dir=tmp), cpu, {})
        else:
            self.primary = KvdNode(build, tempfile.mkdtemp(dir=tmp), cpu,
                                   {"name": toml_str("p"), "role": toml_str("primary"),
                                    "listen": toml_str("127.0.0.1:0"), "sync_replicas": sync_replicas})
        self.build, self.tmp, self.cpu = build, tmp, cpu
        self.replicas = []

    def start(self):
        self.primary.start()
        if self.replicas_n == 0:
            return
        port = self.primary.status()["replication"]["port"]
        for i in range(self.replicas_n):
            name = "r%d" % (i + 1)
            r = KvdNode(self.build, tempfile.mkdtemp(dir=self.tmp), self.cpu,
                        {"name": toml_str(name), "role": toml_str("replica"),
                         "primary": toml_str("127.0.0.1:%d" % port)}, name)
            r.start()
            self.replicas.append(r)
        wait_until(lambda: all(r.status()["replication"]["receiver"]["state"] == "streaming" for r in self.replicas)
                   and len(self.primary.status()["replication"]["replicas"]) == self.replicas_n,
                   "replicas to stream from the primary")

    def wait_caught_up(self):
        """Every replica applied the primary's last LSN: a run starts with no backlog of the one before."""
        last = self.primary.status()["last_lsn"]
        wait_until(lambda: all(r.status()["applied_lsn"] >= last for r in self.replicas),
                   "replicas to apply LSN %d" % last)
        return last

    def check_converged(self):
        """After catch-up every node holds as many keys as the primary (a smoke check that fails loudly)."""
        self.wait_caught_up()
        want = self.primary.ctl("count").strip()
        for r in self.replicas:
            got = r.ctl("count").strip()
            if got != want:
                raise RuntimeError("kvd replica %s has %s keys, the primary %s" % (r.name, got, want))

    def stop(self):
        for r in self.replicas:
            r.stop()
        self.primary.stop()


def wait_until(pred, what, timeout=CATCH_UP_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.01)


# ---- Redis --------------------------------------------------------------------------------
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RedisNode(Redis):
    """Redis with appendonly yes / appendfsync always, a Unix socket for clients
    and a 127.0.0.1 TCP port for replication."""

    def __init__(self, workdir, cpu, replicaof=None):
        super().__init__(workdir, cpu, "always")
        self.port = free_port()
        self.replicaof = replicaof

    def start(self, load_rdb=False):
        args = ["taskset", "-c", str(self.cpu), "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--unixsocket", self.sock, "--unixsocketperm", "700", "--dir", self.dir, "--save", "",
                "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log"),
                "--appendonly", "yes", "--appendfsync", "always", "--aof-use-rdb-preamble", "no"]
        if self.replicaof:
            args += ["--replicaof", "127.0.0.1", str(self.replicaof)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_socket(self.sock, self.proc)
        wait_until(lambda: self.cli("PING").strip() == "PONG", "Redis to answer PING")

    def info(self, section="replication"):
        out = {}
        for line in self.cli("INFO", section).splitlines():
            if ":" in line:
                k, v = line.strip().split(":", 1)
                out[k] = v
        return out


class RedisSet:
    def __init__(self, tmp, cpu, replicas):
        self.primary = RedisNode(tempfile.mkdtemp(dir=tmp), cpu)
        self.replicas = [RedisNode(tempfile.mkdtemp(dir=tmp), cpu, replicaof=self.primary.port)
                         for _ in range(replicas)]

    def start(self):
        self.primary.start()
        for r in self.replicas:
            r.start()
        wait_until(lambda: all(r.info().get("master_link_status") == "up" for r in self.replicas),
                   "Redis replicas' link to come up")

    def wait_caught_up(self):
        off = int(self.primary.info()["master_repl_offset"])
        wait_until(lambda: all(int(r.info().get("slave_repl_offset", -1)) >= off for r in self.replicas),
                   "Redis replicas to reach offset %d" % off)

    def check_converged(self):
        self.wait_caught_up()
        want = self.primary.cli("DBSIZE").strip()
        for r in self.replicas:
            got = r.cli("DBSIZE").strip()
            if got != want:
                raise RuntimeError("Redis replica has %s keys, the primary %s" % (got, want))

    def stop(self):
        for r in self.replicas:
            r.stop()
        self.primary.stop()


# ---- lag ----------------------------------------------------------------------------------
class Poller(threading.Thread):
    """Polls one replica's applied LSN: (sent_ns, answered_ns, applied_lsn) per poll,
    at most one poll every `interval_s` (bounded load on the replica)."""

    def __init__(self, node, cpu, interval_s):
        super().__init__(daemon=True)
        self.node, self.cpu, self.interval_s = node, cpu, interval_s
        self.samples, self.stop_at_lsn = [], None
        self.stop_flag = threading.Event()
        self.error = None
        self.realtime = False

    def run(self):
        try:
            os.sched_setaffinity(0, {self.cpu})  # this thread only (Linux)
            try:
                # Real-time priority so a poll starts on time on a busy machine;
                # it sleeps between polls, so it cannot starve the CPU.
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
                self.realtime = True
            except OSError:
                self.realtime = False
            conn = StatusConn(self.node.sock)
            try:
                while not self.stop_flag.is_set():
                    t0 = now_ns()
                    applied = conn.status()["applied_lsn"]
                    self.samples.append((t0, now_ns(), applied))
                    if self.stop_at_lsn is not None and applied >= self.stop_at_lsn:
                        return
                    time.sleep(self.interval_s)
            finally:
                conn.close()
        except Exception as e:  # noqa: BLE001 (reported by the caller)
            self.error = e


def read_ack_log(path):
    with open(path) as f:
        header = f.readline()
        dropped = int(header.rsplit("dropped", 1)[1])
        acks = [tuple(int(x) for x in line.split()) for line in f]
    return acks, dropped  # sorted by LSN


def lag_per_write(acks, polls):
    """For acks [(lsn, ack_ns)] sorted by LSN and polls [(sent, answered, applied)] in
    time order: per covered write, bounds on when the replica applied it minus
    its ack_ns, in ns: (previous poll's sent time - ack, answered time of the first
    poll covering it - ack). The previous poll did not see it applied, so it was
    applied after that poll was sent; the covering poll had it by its answer.
    Also how many writes no poll covered."""
    bounds, i = [], 0
    prev_sent = polls[0][0] if polls else 0
    for sent, answered, applied in polls:
        while i < len(acks) and acks[i][0] <= applied:
            bounds.append((prev_sent - acks[i][1], answered - acks[i][1]))
            i += 1
        prev_sent = sent
    return bounds, len(acks) - i


def measure_lag(kset, load_cpu, clients, seconds, interval_s, workdir):
    kset.wait_caught_up()
    log = os.path.join(workdir, "acks.log")
    pollers = [Poller(r, load_cpu, interval_s) for r in kset.replicas]
    for p in pollers:
        p.start()
    k = kset.primary
    out = subprocess.run(
        ["taskset", "-c", str(load_cpu), k.kvctl, "--socket", k.sock, "bench", "--clients", str(clients),
         "--duration", "%gs" % seconds, "--pipeline", "1", "--value-size", "100", "--key-space", "1000000",
         "--ratio", "1:0", "--json", "--no-progress", "--keep", "--ack-log", log],
        capture_output=True, text=True)
    if out.returncode != 0:
        for p in pollers:
            p.stop_flag.set()
        raise RuntimeError("kvctl bench (lag run) failed: " + out.stderr.strip())
    bench = json.loads(out.stdout.strip().splitlines()[-1])
    acks, dropped = read_ack_log(log)
    if not acks:
        raise RuntimeError("the lag run acknowledged no writes")
    for p in pollers:
        p.stop_at_lsn = acks[-1][0]
    for p in pollers:
        p.join(CATCH_UP_TIMEOUT_S)
        if p.is_alive():
            p.stop_flag.set()
            p.join()
        if p.error:
            raise RuntimeError("lag poller: %s" % p.error)
    per_replica = []
    for p in pollers:
        bounds, uncovered = lag_per_write(acks, p.samples)
        if uncovered:
            raise RuntimeError("replica %s never applied %d acknowledged writes" % (p.node.name, uncovered))
        hi = sorted(max(0, b[1]) / 1e6 for b in bounds)
        lo = sorted(max(0, b[0]) / 1e6 for b in bounds)
        gaps = [b[0] - a[0] for a, b in zip(p.samples, p.samples[1:])]
        per_replica.append({"replica": p.node.name, "writes": len(bounds), "realtime_poller": p.realtime,
                            "p50_ms": percentile(hi, 50), "p99_ms": percentile(hi, 99), "max_ms": hi[-1],
                            "p50_lo_ms": percentile(lo, 50), "p99_lo_ms": percentile(lo, 99),
                            "applied_before_ok": sum(1 for b in bounds if b[1] <= 0) / len(bounds),
                            "polls": len(p.samples),
                            "poll_period_ms": statistics.median(gaps) / 1e6 if gaps else float("nan")})
    os.unlink(log)
    return {"clients": clients, "seconds": seconds, "ops": bench["ops_per_sec"], "errors": bench["errors"],
            "acks_dropped": dropped, "replicas": per_replica}


# ---- the run ------------------------------------------------------------------------------
def setups(args, tmp):
    """[(label, replicas, sync_replicas)] and notes on what was asked and what ran."""
    notes, out = [], [("single node", 0, 0)]
    for n in (1, 2):
        want = n if args.repl_sync_replicas is None else min(args.repl_sync_replicas, n)
        sr = want
        if want > 0:
            ok, msg = check_config(args.build, tmp, {"name": toml_str("p"), "listen": toml_str("127.0.0.1:0"),
                                                      "sync_replicas": want})
            if not ok:
                notes.append("sync_replicas = %d was refused by `kvd --check-config` (%s): the %d-replica row ran "
                             "with sync_replicas = 0 (asynchronous) instead; the synchronous row is skipped."
                             % (want, msg.splitlines()[-1] if msg else "no message", n))
                sr = 0
        reps = "%d replica%s" % (n, "" if n == 1 else "s")
        label = "sync, %s (sync_replicas=%d)" % (reps, sr) if sr else "sync, %s (async, sync_replicas=0)" % reps
        out.append((label, n, sr))
    return out, notes


def run(args, tmp, server_cpu, load_cpu):
    clients_list = [1, 16] if args.quick else [1, 16, 64]
    lag_clients = 16 if args.quick else 64
    lag_seconds = 0.5 if args.quick else 2.5 * args.repl_seconds  # 5 s by default
    kvd_setups, notes = setups(args, tmp)
    for n in notes:
        print("repl: " + n, flush=True)
    res = {"loadavg_start": open("/proc/loadavg").read().split()[:3], "notes": notes, "rows": [], "lag": [],
           "poll_interval_us": args.repl_poll_us, "reps": args.reps, "seconds": args.repl_seconds,
           "server_cpu": server_cpu, "load_cpu": load_cpu,
           "kernel": platform.release()}
    ksets = [(label, KvdSet(args.build, tmp, server_cpu, n, sr)) for label, n, sr in kvd_setups]
    rsets = [("Redis always", RedisSet(tmp, server_cpu, 0)), ("Redis always, 1 replica", RedisSet(tmp, server_cpu, 1))]
    try:
        for _, s in ksets + rsets:
            s.start()
        for clients in clients_list:
            # Requests per run: about --repl-seconds at the rate a short probe
            # run (also a warm-up) measured; fdatasync's cost varies a lot
            # between machines. --quick: a smoke run of seconds whatever it costs.
            counts = {}
            for label, s in ksets + rsets:
                probe = 10 * clients
                if not args.quick:
                    s.wait_caught_up()
                    rate = s.primary.bench(load_cpu, clients, probe, 1, "1:0", 100, 1000000)["ops"]
                    probe = max(probe, int(rate * args.repl_seconds))
                counts[label] = probe
            runs = {label: [] for label, _ in ksets + rsets}
            for _ in range(args.reps):  # alternate every setup within a repetition
                for label, s in ksets + rsets:
                    s.wait_caught_up()
                    runs[label].append(s.primary.bench(load_cpu, clients, counts[label], 1, "1:0", 100, 1000000))
            for (label, s), system in [(x, "kvd") for x in ksets] + [(x, "redis") for x in rsets]:
                r = runs[label]
                row = {"system": system, "setup": label, "replicas": len(s.replicas),
                       "sync_replicas": getattr(s, "sync_replicas", 0), "clients": clients, "requests": counts[label],
                       "ops": statistics.median(x["ops"] for x in r),
                       "p99_us": statistics.median(x["p99_us"] for x in r),
                       "errors": sum(x["errors"] for x in r)}
                if row["errors"] or not row["ops"] > 0:
                    raise RuntimeError("%s, %d clients: %d errors, %.0f ops/s" % (label, clients, row["errors"],
                                                                                   row["ops"]))
                res["rows"].append(row)
            for row in res["rows"]:
                if row["clients"] != clients:
                    continue
                base = next(x for x in res["rows"] if x["clients"] == clients and x["system"] == row["system"]
                            and x["replicas"] == 0)
                row["vs_single"] = row["ops"] / base["ops"]
                print("repl %-5s %-38s c=%-3d %9.0f/s p99 %7.0fus x%.2f of single node" % (
                    row["system"], row["setup"], clients, row["ops"], row["p99_us"], row["vs_single"]), flush=True)
        for label, s in ksets:
            if not s.replicas:
                continue
            lag = measure_lag(s, load_cpu, lag_clients, lag_seconds, args.repl_poll_us / 1e6, tmp)
            lag["setup"] = label
            lag["sync_replicas"] = s.sync_replicas
            res["lag"].append(lag)
            for r in lag["replicas"]:
                print("repl lag %-42s %s: p50 %.2f ms p99 %.2f ms (at least %.2f / %.2f) max %.2f ms (%d writes, "
                      "poll period %.2f ms)" % (label, r["replica"], r["p50_ms"], r["p99_ms"], r["p50_lo_ms"],
                                                r["p99_lo_ms"], r["max_ms"], r["writes"], r["poll_period_ms"]),
                      flush=True)
            s.check_converged()
        for _, s in rsets:
            s.check_converged()
    finally:
        for _, s in ksets + rsets:
            s.stop()
    res["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    return res


# ---- the report ---------------------------------------------------------------------------
def report_lines(results, command):
    rep = results["repl"]
    m = results["machine"]
    lines = ["# Replicated rows: kvd with replicas vs Redis with a replica — %s" % results["date"], "",
             "Command: `%s`" % command, "",
             "Machine: %d cores, data on %s, Linux %s. Every server (primaries and replicas) pinned to CPU %d, "
             "the load generators and the lag poller to CPU %d. Load average (1/5/15 min) %s at the start, %s "
             "at the end. All nodes share one disk. PUT only, pipeline 1, 100-byte values, 1 M key space, "
             "median of %d repetitions, the setups alternated within each repetition; each run is about %g s "
             "(its request count from the rate of a short probe run of the same setup). kvd: durability mode "
             "sync on every node, clients over Unix sockets, replicas over 127.0.0.1 TCP. Redis 7: appendonly "
             "yes, appendfsync always on primary and replica, `replicaof` over 127.0.0.1 TCP (Redis "
             "replication is asynchronous; redis-benchmark sends no WAIT)."
             % (m["cores"], m["fs"], m["kernel"], m["server_cpu"], m["load_cpu"], " ".join(rep["loadavg_start"]),
                " ".join(rep["loadavg_end"]), rep["reps"], rep["seconds"])]
    for n in rep["notes"]:
        lines += ["", "**Note:** " + n]
    lines += ["", "| system | setup | clients | ops/s | × single node (same system) | p99 µs |",
              "|---|---|---:|---:|---:|---:|"]
    for r in rep["rows"]:
        lines.append("| %s | %s | %d | %.0f | %.2f× | %.0f |" % (r["system"], r["setup"], r["clients"], r["ops"],
                                                               r["vs_single"], r["p99_us"]))
    if rep["lag"]:
        lines += ["", "Replication lag per acknowledged write, %d clients, %g s of PUTs (method below):" % (
            rep["lag"][0]["clients"], rep["lag"][0]["seconds"]), "",
            "| setup | replica | writes | p50 ms | p99 ms | max ms | p50 / p99 lower bound ms | applied before the OK "
            "| polls (median period ms) | ops/s during the run |",
            "|---|---|---:|---:|---:|---:|---|---:|---|---:|"]
        for lag in rep["lag"]:
            for r in lag["replicas"]:
                lines.append("| %s | %s | %d | %.2f | %.2f | %.2f | %.2f / %.2f | %.0f%% | %d (%.2f) | %.0f |" % (
                    lag["setup"], r["replica"], r["writes"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["p50_lo_ms"],
                    r["p99_lo_ms"], 100 * r["applied_before_ok"], r["polls"], r["poll_period_ms"], lag["ops"]))
        realtime = all(r["realtime_poller"] for lag in rep["lag"] for r in lag["replicas"])
        lines += ["", LAG_METHOD % ("at real-time priority SCHED_FIFO 1, so that polls start on time on a busy machine"
                                    if realtime else "at normal priority: SCHED_FIFO was refused",
                                    rep["poll_interval_us"])]
    lines += ["", "Targets (issue 15), as measured in this run:", "", "| target | measured | goal | | |",
              "|---|---:|---|---|---|"]
    one = [r for r in rep["rows"] if r["system"] == "kvd" and r["replicas"] == 1 and r["clients"] == 64]
    for r in one:
        if r["sync_replicas"] >= 1:
            lines.append("| one synchronous replica, 64 clients, vs single-node sync | %.2f× | ≥ %.1f× | %s | |" % (
                r["vs_single"], THROUGHPUT_TARGET_X, "met" if r["vs_single"] >= THROUGHPUT_TARGET_X else "**not met**"))
        else:
            lines.append("| one synchronous replica, 64 clients, vs single-node sync | — | ≥ %.1f× | not "
                         "measured | sync_replicas ≥ 1 not accepted by this build; the asynchronous replica made "
                         "%.2f× |" % (THROUGHPUT_TARGET_X, r["vs_single"]))
    for lag in rep["lag"]:
        worst = max(x["p99_ms"] for x in lag["replicas"])
        lines.append("| lag p99, %s, %d clients (worst replica) | %.2f ms | < %.0f ms | %s | |" % (
            lag["setup"], lag["clients"], worst, LAG_TARGET_MS, "met" if worst < LAG_TARGET_MS else "**not met**"))
    return lines


def write_report(results, outdir, command):
    os.makedirs(outdir, exist_ok=True)
    base = os.path.join(outdir, "repl-%s" % results["date"][:10])
    with open(base + ".json", "w") as f:
        json.dump({k: results[k] for k in ("date", "machine", "repl")}, f, indent=2)
    with open(base + ".md", "w") as f:
        f.write("\n".join(report_lines(results, command)) + "\n")
    return base + ".md"
