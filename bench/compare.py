#!/usr/bin/env python3
"""kvd vs Redis, side by side in one run on this machine.

Starts kvd and redis-server on Unix sockets in temp dirs and alternates them
on identical workloads (100-byte values, 1 M key space, clients 1/16/64,
pipeline 1/16, PUT-only and 90:10 GET:PUT), three repetitions per row, the
median reported. Pairs: kvd sync vs Redis appendfsync always, kvd batch
(flush_interval 1s) vs Redis everysec, kvd none vs Redis without AOF.
kvctl bench drives kvd; redis-benchmark drives Redis with the same clients,
requests, pipeline, value size and key space. For 90:10 Redis gets two
redis-benchmark processes at once (GET and SET clients split 90:10), since
redis-benchmark cannot mix commands in one run.

Both servers are pinned to the CPU that takes the disk's completion
interrupts; the load generators to the other CPU.

Also measured: the fdatasync-per-write floor, start-to-ready with 1 M keys
(kvd from WAL only and from a snapshot; Redis from AOF and from RDB), and RSS
with 1 M keys. Writes bench/results/compare-<date>.md, .json and a PNG chart.

RESP rows (bench/compare_resp.py): redis-benchmark drives Redis and kvd's
RESP listener with identical flags, and kvctl bench drives kvd's RESP
listener (--resp) and its native protocol, for the RESP / native ratio.

Usage: bench/compare.py [--quick] [--reps N] [--out DIR] [--build DIR] [--resp-only [--resp-targets] | --no-resp]
  --quick  a smoke run of seconds (CI): tiny request counts, one repetition.

Replicated rows (bench/compare_repl.py, issue 15): kvd sync with 0, 1 and 2
replicas and Redis always with 0 and 1 replica, plus the replication lag per
write; written to bench/results/repl-<date>.md. Part of a full run unless
--no-repl; --repl-only runs only them; --quick runs them only with --repl or
--repl-only (the smoke test bench_compare_repl_smoke).
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


# ---- machine facts --------------------------------------------------------------
def disk_irq_cpu():
    """The CPU that takes most of the block device's completion interrupts."""
    best, best_cpu = -1, 0
    try:
        with open("/proc/interrupts") as f:
            header = f.readline().split()
            for line in f:
                if not re.search(r"virtio\d+-req|nvme|blk", line):
                    continue
                cols = line.split()[1:1 + len(header)]
                counts = [int(c) for c in cols if c.isdigit()]
                for cpu, n in enumerate(counts):
                    if n > best:
                        best, best_cpu = n, cpu
    except OSError:
        pass
    return best_cpu


def fs_type(path):
    r = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
    return r.stdout.strip() or "?"


def fdatasync_floor(dirpath, cpu, seconds=2.0, size=128):
    """Appends of `size` bytes each followed by fdatasync into a preallocated,
    zero-filled file, from `cpu`: the best a one-sync-per-request server can do.
    Where the disk's completion interrupt lands matters here, so it is measured
    on both CPUs."""
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        return _fdatasync_loop(dirpath, seconds, size)
    finally:
        os.sched_setaffinity(0, old)


def _fdatasync_loop(dirpath, seconds, size):
    path = os.path.join(dirpath, "floor.dat")
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"\0" * (64 << 20))
        os.fsync(fd)
        buf = b"x" * size
        n, off, lat = 0, 0, []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.perf_counter()
            os.pwrite(fd, buf, off)
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
            off += size
            n += 1
        lat.sort()
        return {"ops_per_sec": n / sum(lat), "p50_us": lat[len(lat) // 2] * 1e6}
    finally:
        os.close(fd)
        os.unlink(path)


# ---- servers ------------------------------------------------------------------
def wait_for_socket(path, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            return
        except OSError:
            time.sleep(0.01)
        finally:
            s.close()
    raise RuntimeError("server did not start listening on " + path)


class Server:
    """A server process started by a subclass's start()."""
    proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=120)
        self.proc = None

    def rss_kib(self):
        return rss_kib(self.proc.pid)


class Kvd(Server):
    def __init__(self, build, workdir, cpu, mode, flush_interval="10ms", batch_size=1024):
        self.bin = os.path.join(build, "daemon", "kvd")
        self.kvctl = os.path.join(build, "ctl", "kvctl")
        self.dir = workdir
        self.sock = os.path.join(workdir, "kvd.sock")
        self.cpu = cpu
        self.conf = os.path.join(workdir, "kvd.toml")
        with open(self.conf, "w") as f:
            f.write(f"""[server]
socket = "{self.sock}"
max_connections = 4096
[storage]
wal_path = "{workdir}/wal"
snapshot_path = "{workdir}/snapshots"
[snapshot]
interval = "0"
wal_bytes = "0"
wal_growth_percent = 0
[durability]
mode = "{mode}"
batch_size = {batch_size}
flush_interval = "{flush_interval}"
[log]
level = "warn"
target = "stderr"
""")
        self.proc = None

    def start(self):
        t = time.monotonic()
        self.log = open(os.path.join(self.dir, "kvd.log"), "ab")
        self.proc = subprocess.Popen(["taskset", "-c", str(self.cpu), self.bin, "--config", self.conf],
                                     stdout=self.log, stderr=self.log)
        wait_for_socket(self.sock, self.proc)
        return time.monotonic() - t


    def ctl(self, *args):
        return run_tool([self.kvctl, "--socket", self.sock, *args])

    def bench(self, cpu, clients, requests, pipeline, ratio, value_size, key_space, resp=None):
        """kvctl bench on the native protocol, or with resp (a RESP socket) on
        kvd's RESP listener: the same generator and flags either way."""
        out = run_tool(
            ["taskset", "-c", str(cpu), self.kvctl, "--socket", self.sock, "bench", "--clients", str(clients),
             "--requests", str(requests), "--pipeline", str(pipeline), "--value-size", str(value_size),
             "--key-space", str(key_space), "--ratio", ratio, "--json", "--no-progress", "--keep"]
            + (["--resp", resp] if resp else []))
        r = json.loads(out.strip().splitlines()[-1])
        return {"ops": r["ops_per_sec"], "p99_us": r["p99_us"], "errors": r["errors"]}


class Redis(Server):
    def __init__(self, workdir, cpu, aof):
        self.dir = workdir
        self.sock = os.path.join(workdir, "redis.sock")
        self.cpu = cpu
        self.aof = aof  # None, "always", "everysec"
        self.proc = None

    def start(self, load_rdb=False):
        args = ["taskset", "-c", str(self.cpu), "redis-server", "--port", "0", "--unixsocket", self.sock,
                "--unixsocketperm", "700", "--dir", self.dir, "--save", "", "--daemonize", "no",
                "--enable-debug-command", "local", "--logfile", os.path.join(self.dir, "redis.log")]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", self.aof, "--aof-use-rdb-preamble", "no"]
        else:
            args += ["--appendonly", "no"]
        if load_rdb:
            args += ["--dbfilename", "dump.rdb"]
        t = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_socket(self.sock, self.proc)
        # Listening is not ready: Redis answers LOADING while it loads.
        while self.cli("PING").strip() != "PONG":
            time.sleep(0.005)
        return time.monotonic() - t

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-s", self.sock, *args], capture_output=True, text=True).stdout


    def bench(self, cpu, clients, requests, pipeline, ratio, value_size, key_space):
        puts, gets = (int(x) for x in ratio.split(":"))
        if gets and clients < 2:
            # redis-benchmark runs one command per process: a mix needs a SET
            # and a GET process, i.e. at least two clients. No fair row here.
            return {"ops": float("nan"), "p99_us": float("nan"), "errors": 0}
        if gets == 0:
            ops, p99 = RedisBenchmark(self.sock, cpu, clients, requests, pipeline, value_size, key_space,
                                      "set").result()
            return {"ops": ops, "p99_us": p99, "errors": 0}
        set_clients = max(1, round(clients * puts / (puts + gets)))
        get_clients = max(1, clients - set_clients)
        set_n = whole_pipelines(requests * puts // (puts + gets), set_clients, pipeline)
        get_n = whole_pipelines(requests - set_n, get_clients, pipeline)
        ps = RedisBenchmark(self.sock, cpu, set_clients, set_n, pipeline, value_size, key_space, "set")
        pg = RedisBenchmark(self.sock, cpu, get_clients, get_n, pipeline, value_size, key_space, "get")
        (sops, sp99), (gops, gp99) = ps.result(), pg.result()
        return {"ops": sops + gops, "p99_us": max(sp99, gp99), "errors": 0}


def run_tool(argv, stdin=None):
    """stdout of a tool that must succeed; its stderr goes into the error when it does not."""
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with status {p.returncode}: "
                           f"{(p.stderr.strip() or p.stdout.strip()[-2000:]) or '(no output)'}")
    return p.stdout


def whole_pipelines(n, clients, pipeline):
    """n rounded up to whole pipelines for every client. redis-benchmark sends a
    pipeline's -P requests at once, so with n not a multiple of -P it answers
    more than n; when its last client is then gone, its 1 ms / 250 ms progress
    timer can see requests_finished != n and exits 1 ("All clients
    disconnected... aborting."), a race the smoke run hit."""
    step = clients * pipeline
    return max(step, -(-n // step) * step)


class RedisBenchmark:
    """One redis-benchmark process against any RESP server (Redis or kvd's
    listener), started at once; result() waits: (ops/s, p99 µs). redis-benchmark
    (7.0) exits 1 on the first error reply, with the reply on stderr."""

    def __init__(self, sock, cpu, clients, requests, pipeline, value_size, key_space, cmd):
        if requests % pipeline:
            raise ValueError(f"redis-benchmark -n {requests} is not whole pipelines of {pipeline}")
        self.argv = ["taskset", "-c", str(cpu), "redis-benchmark", "-s", sock, "-c", str(clients), "-n",
                     str(requests), "-P", str(pipeline), "-d", str(value_size), "-r", str(key_space), "-t", cmd,
                     "--csv", "--precision", "3"]
        # CPU redis-benchmark itself used, from the children's rusage around
        # its run (results are collected one at a time, so no other child is
        # reaped in between): whether the generator, not the server, set the pace.
        self.cpu0 = self._children_cpu()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.cpu_share = math.nan

    @staticmethod
    def _children_cpu():
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    def result(self):
        out, err = self.proc.communicate()
        wall = time.monotonic() - self.t0
        self.cpu_share = (self._children_cpu() - self.cpu0) / wall if wall > 0 else math.nan
        what = " ".join(self.argv[3:])
        if self.proc.returncode != 0:
            raise RuntimeError(f"{what} exited with status {self.proc.returncode}: "
                               f"{err.strip() or '(nothing on stderr)'}; stdout: {out.strip()[-500:]}")
        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
        rows = [l for l in out.splitlines() if l.startswith('"') and not l.startswith('"test"')]
        if not rows:
            raise RuntimeError(f"{what}: no result row in its output: {out.strip()[-500:]} {err.strip()}")
        f = [x.strip('"') for x in rows[-1].split(",")]
        ops, p99 = float(f[1]), float(f[6]) * 1000.0
        if not math.isfinite(ops):
            # It divides by whole milliseconds: a run under 1 ms reports inf.
            raise RuntimeError(f"{what}: rate {f[1]} (the run took under a millisecond; raise -n)")
        return ops, p99


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- the run ------------------------------------------------------------------------
PAIRS = [("sync", "always"), ("batch", "everysec"), ("none", None)]


def requests_for(mode, clients, pipeline, quick):
    """Requests for one run of about 2 s, in whole pipelines. --quick: about
    10 ms and at least 100 round trips, so that redis-benchmark, which divides
    by whole milliseconds, still reports a finite rate against a fast server."""
    per_sec = {"sync": {1: 5000, 16: 40000, 64: 100000}}.get(mode, {1: 40000, 16: 150000, 64: 200000})
    rate = per_sec[clients] * (3 if pipeline > 1 else 1)
    if quick:
        return whole_pipelines(max(int(rate * 0.01), 100 * pipeline), clients, pipeline)
    return whole_pipelines(int(rate * 2), clients, pipeline)


def run(args):
    cpus = os.cpu_count() or 1
    server_cpu = disk_irq_cpu() % cpus
    load_cpu = (server_cpu + 1) % cpus
    tmp = tempfile.mkdtemp(prefix="kvd-compare-", dir=args.tmp)
    results = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
               "machine": {"cores": cpus, "fs": fs_type(tmp).replace("ext2/ext3", "ext4 (statfs: ext2/ext3)"), "kernel": platform.release(),
                           "server_cpu": server_cpu, "load_cpu": load_cpu},
               "rows": []}
    floor_s = 0.3 if args.quick else 2.0
    results["floor"] = fdatasync_floor(tmp, server_cpu, floor_s)         # where kvd's commits run
    results["floor_load_cpu"] = fdatasync_floor(tmp, load_cpu, floor_s)  # the other CPU, for reference
    print(f"fdatasync floor: {results['floor']['ops_per_sec']:.0f}/s on the server's CPU, "
          f"{results['floor_load_cpu']['ops_per_sec']:.0f}/s on the other", flush=True)
    if args.repl_only or (not args.resp_only and (args.repl if args.quick else not args.no_repl)):
        import compare_repl
        results["repl"] = compare_repl.run(args, tmp, server_cpu, load_cpu)
        if args.repl_only:
            shutil.rmtree(tmp, ignore_errors=True)
            return results
    if not args.no_resp:
        import compare_resp
        results["resp_rows"] = compare_resp.run_rows(args, tmp, server_cpu, load_cpu)
    if args.resp_only:
        shutil.rmtree(tmp, ignore_errors=True)
        return results
    clients_list = [1, 16] if args.quick else [1, 16, 64]
    for kvd_mode, redis_aof in PAIRS:
        kdir = tempfile.mkdtemp(dir=tmp)
        rdir = tempfile.mkdtemp(dir=tmp)
        kvd = Kvd(args.build, kdir, server_cpu, kvd_mode,
                  flush_interval="1s" if kvd_mode == "batch" else "10ms",
                  batch_size=100000 if kvd_mode == "batch" else 1024)
        redis = Redis(rdir, server_cpu, redis_aof)
        kvd.start()
        redis.start()
        try:
            for ratio in ("1:0", "1:9"):
                for clients in clients_list:
                    for pipeline in (1, 16):
                        n = requests_for(kvd_mode, clients, pipeline, args.quick)
                        k_runs, r_runs = [], []
                        for _ in range(args.reps):  # alternate the two systems
                            k_runs.append(kvd.bench(load_cpu, clients, n, pipeline, ratio, 100, 1000000))
                            r_runs.append(redis.bench(load_cpu, clients, n, pipeline, ratio, 100, 1000000))
                        row = {"kvd_mode": kvd_mode, "redis": redis_aof or "no AOF", "ratio": ratio,
                               "clients": clients, "pipeline": pipeline, "requests": n,
                               "kvd_ops": statistics.median(r["ops"] for r in k_runs),
                               "kvd_p99_us": statistics.median(r["p99_us"] for r in k_runs),
                               "kvd_errors": sum(r["errors"] for r in k_runs),
                               "redis_ops": statistics.median(r["ops"] for r in r_runs),
                               "redis_p99_us": statistics.median(r["p99_us"] for r in r_runs)}
                        row["ratio_x"] = (row["kvd_ops"] / row["redis_ops"]
                                          if row["redis_ops"] and row["redis_ops"] == row["redis_ops"] else float("nan"))
                        results["rows"].append(row)
                        print(f"{kvd_mode:5} vs {row['redis']:8} {ratio:>4} c={clients:<3} P={pipeline:<3}"
                              f" kvd {row['kvd_ops']:>9.0f}/s p99 {row['kvd_p99_us']:>7.0f}us  redis"
                              f" {row['redis_ops']:>9.0f}/s p99 {row['redis_p99_us']:>7.0f}us  x{row['ratio_x']:.2f}",
                              flush=True)
        finally:
            kvd.stop()
            redis.stop()
    results["original_engine"] = original_engine_table(args, tmp, server_cpu, load_cpu, 500 if args.quick else 10000)
    if not args.quick or args.recovery:
        results["recovery"] = recovery_and_memory(args, tmp, server_cpu, 1000 if args.quick else 1000000)
    shutil.rmtree(tmp, ignore_errors=True)
    return results


def original_engine_table(args, tmp, server_cpu, load_cpu, n):
    """The original engine's table through kvctl's REPL, in batch mode:
    SETBATCH k then BENCH n (n sequential PUTs on one connection)."""
    kvd = Kvd(args.build, tempfile.mkdtemp(dir=tmp), server_cpu, "batch", flush_interval="1s")
    kvd.start()
    out = {"n": n}
    try:
        # The original engine ran in-process; over a socket the round trip
        # counts too, and it depends on whether client and server share a CPU.
        for placement, cpu in (("other_cpu", load_cpu), ("same_cpu", server_cpu)):
            script = "".join(f"SETBATCH {k}\nBENCH {n}\n" for k in (1, 5, 64)) + "EXIT\n"
            text = run_tool(["taskset", "-c", str(cpu), kvd.kvctl, "--socket", kvd.sock], stdin=script)
            rates = [float(m) for m in re.findall(r"([0-9.]+) ops/s", text)]
            out[placement] = {f"SETBATCH {k}": r for k, r in zip((1, 5, 64), rates)}
            print(f"original engine table ({placement}, batch mode, BENCH {n}): {out[placement]}", flush=True)
    finally:
        kvd.stop()
    return out


def recovery_and_memory(args, tmp, cpu, keys):
    out = {"keys": keys}
    kdir = tempfile.mkdtemp(dir=tmp)
    kvd = Kvd(args.build, kdir, cpu, "none")
    kvd.start()
    run_tool([kvd.kvctl, "--socket", kvd.sock, "bench", "--clients", "4", "--pipeline", "64",
              "--requests", "1", "--key-space", str(keys), "--value-size", "100", "--prefill",
              "--ratio", "1:0", "--json", "--no-progress", "--keep"])
    kvd.ctl("flush")
    out["kvd_keys"] = int(kvd.ctl("size").strip())
    out["kvd_rss_mib"] = kvd.rss_kib() / 1024
    kvd.stop()
    out["kvd_ready_from_wal_s"] = kvd.start()
    kvd.ctl("snapshot")
    kvd.stop()
    out["kvd_ready_from_snapshot_s"] = kvd.start()
    kvd.stop()

    rdir = tempfile.mkdtemp(dir=tmp)
    redis = Redis(rdir, cpu, "everysec")
    redis.start()
    redis.cli("DEBUG", "POPULATE", str(keys), "key:00000000", "100")
    out["redis_rss_mib"] = redis.rss_kib() / 1024
    redis.cli("BGREWRITEAOF")
    while "aof_rewrite_in_progress:1" in redis.cli("INFO", "persistence") or \
            "aof_rewrite_scheduled:1" in redis.cli("INFO", "persistence"):
        time.sleep(0.05)
    redis.cli("SAVE")
    redis.stop()
    out["redis_ready_from_aof_s"] = redis.start()
    redis.stop()
    redis.aof = None
    out["redis_ready_from_rdb_s"] = redis.start(load_rdb=True)
    out["redis_keys_rdb"] = int(redis.cli("DBSIZE").strip() or 0)
    redis.stop()
    return out


def write_reports(results, outdir):
    os.makedirs(outdir, exist_ok=True)
    stamp = results["date"][:10]
    base = os.path.join(outdir, f"compare-{stamp}")
    with open(base + ".json", "w") as f:
        json.dump(results, f, indent=2)
    m = results["machine"]
    lines = [f"# kvd vs Redis — {results['date']}", "",
             f"Machine: {m['cores']} cores, data on {m['fs']}, Linux {m['kernel']}. Servers pinned to CPU "
             f"{m['server_cpu']} (the disk's interrupt CPU), load generators to CPU {m['load_cpu']}. "
             "Unix sockets, 100-byte values, 1 M key space, median of the repetitions. PUT:GET 1:9 rows give "
             "Redis a SET and a GET redis-benchmark process at once (it cannot mix commands), so it has no "
             "1-client row there.", "",
             f"fdatasync-per-write floor (128-byte writes into preallocated blocks, a tight loop): "
             f"{results['floor']['ops_per_sec']:.0f}/s (p50 {results['floor']['p50_us']:.0f} µs) on the "
             f"server's CPU, {results['floor_load_cpu']['ops_per_sec']:.0f}/s (p50 "
             f"{results['floor_load_cpu']['p50_us']:.0f} µs) on the other CPU", "",
             "| kvd mode | Redis | PUT:GET | clients | pipeline | kvd ops/s | Redis ops/s | ratio | kvd p99 µs | Redis p99 µs |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|"]
    def num(x, spec=".0f", suffix=""):
        return "n/a" if x != x else format(x, spec) + suffix  # NaN: no fair Redis run

    for r in results["rows"]:
        lines.append(f"| {r['kvd_mode']} | {r['redis']} | {r['ratio']} | {r['clients']} | {r['pipeline']} | "
                     f"{r['kvd_ops']:.0f} | {num(r['redis_ops'])} | {num(r['ratio_x'], '.2f', '×')} | "
                     f"{r['kvd_p99_us']:.0f} | {num(r['redis_p99_us'])} |")
    orig = results.get("original_engine")
    if orig and all(len(orig.get(p, {})) == 3 for p in ("other_cpu", "same_cpu")):
        a, b = orig["other_cpu"], orig["same_cpu"]
        lines += ["", f"The original engine's table: batch mode, `SETBATCH k` then `BENCH {orig['n']}` "
                  "(sequential PUTs on one connection) in kvctl's REPL, with kvctl on the other CPU and on the "
                  "server's CPU:", "",
                  "| setting | ops/s (other CPU) | vs SETBATCH 1 | ops/s (same CPU) | vs SETBATCH 1 |",
                  "|---|---:|---:|---:|---:|"]
        for k in ("SETBATCH 1", "SETBATCH 5", "SETBATCH 64"):
            lines.append(f"| {k} | {a[k]:.0f} | {a[k] / a['SETBATCH 1']:.2f}× | {b[k]:.0f} | "
                         f"{b[k] / b['SETBATCH 1']:.2f}× |")
    rec = results.get("recovery")
    if rec:
        lines += ["", f"Start to ready with {rec['keys']} keys:", "",
                  "| | kvd | Redis |", "|---|---:|---:|",
                  f"| from log (kvd WAL / Redis AOF) | {rec['kvd_ready_from_wal_s']:.2f} s | {rec['redis_ready_from_aof_s']:.2f} s |",
                  f"| from snapshot (kvd snapshot / Redis RDB) | {rec['kvd_ready_from_snapshot_s']:.2f} s | {rec['redis_ready_from_rdb_s']:.2f} s |",
                  f"| RSS with the keys loaded | {rec['kvd_rss_mib']:.0f} MiB | {rec['redis_rss_mib']:.0f} MiB |"]
    lines += targets_section(results)
    import compare_resp
    lines += compare_resp.report_lines(results)
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    chart = plot(results, base) if results["rows"] else None  # --resp-only: nothing to chart
    return base + ".md", chart


def targets_section(results):
    """The issue's targets, each as measured in this run, met or not."""
    def row(mode, ratio, clients, pipeline):
        for r in results["rows"]:
            if (r["kvd_mode"], r["ratio"], r["clients"], r["pipeline"]) == (mode, ratio, clients, pipeline):
                return r
        return None

    out = []

    def target(name, value, goal, ok, detail=""):
        if value is None or value != value:
            return
        out.append(f"| {name} | {value:.2f}× | {goal} | {'met' if ok else '**not met**'} | {detail} |")

    s64, s1 = row("sync", "1:0", 64, 1), row("sync", "1:0", 1, 1)
    if s64:
        target("sync, 64 clients, PUT vs Redis always", s64["ratio_x"], "≥ 1.5×, p99 ≤ Redis",
               s64["ratio_x"] >= 1.5 and s64["kvd_p99_us"] <= s64["redis_p99_us"],
               f"p99 {s64['kvd_p99_us']:.0f} vs {s64['redis_p99_us']:.0f} µs")
    if s1:
        for key, where in (("floor", "server's CPU"), ("floor_load_cpu", "other CPU")):
            f = results[key]["ops_per_sec"]
            target(f"sync, 1 client vs fdatasync floor ({where})", s1["kvd_ops"] / f, "≥ 0.9×",
                   s1["kvd_ops"] / f >= 0.9, f"{s1['kvd_ops']:.0f} vs {f:.0f}/s")
    if s1 and s64:
        g = s64["kvd_ops"] / s1["kvd_ops"]
        target("group commit: sync 64 clients / 1 client", g, "≥ 20×", g >= 20,
               f"{s64['kvd_ops']:.0f} vs {s1['kvd_ops']:.0f}/s")
    for mode in ("batch", "none"):
        rs = [r for r in results["rows"] if r["kvd_mode"] == mode and r["clients"] in (16, 64)
              and r["ratio_x"] == r["ratio_x"]]
        if rs:
            worst = min(rs, key=lambda r: r["ratio_x"])
            target(f"{mode} vs Redis {worst['redis']}, 16 and 64 clients (lowest row)", worst["ratio_x"],
                   "≥ 1.0×", worst["ratio_x"] >= 1.0,
                   f"{worst['ratio']} c{worst['clients']} P{worst['pipeline']}; {len(rs)} rows")
    for pipeline in (1, 16):
        m = row("sync", "1:9", 64, pipeline)
        if m:
            target(f"90:10 GET:PUT, sync, 64 clients, pipeline {pipeline}", m["ratio_x"], "≥ 1.5×",
                   m["ratio_x"] >= 1.5)
    orig = results.get("original_engine")
    for placement, where in (("other_cpu", "other CPU"), ("same_cpu", "server's CPU")):
        a = (orig or {}).get(placement, {})
        if len(a) == 3:
            g5 = a["SETBATCH 5"] / a["SETBATCH 1"]
            target(f"SETBATCH 5 vs SETBATCH 1 (kvctl on the {where})", g5, "≥ 2.66×", g5 >= 2.66,
                   f"SETBATCH 64: {a['SETBATCH 64'] / a['SETBATCH 1']:.2f}×")
    rec = results.get("recovery")
    if rec:
        w = rec["redis_ready_from_aof_s"] / rec["kvd_ready_from_wal_s"]
        target("ready from WAL vs Redis from AOF (speed-up)", w, "> 1×", w > 1,
               f"{rec['kvd_ready_from_wal_s']:.2f} vs {rec['redis_ready_from_aof_s']:.2f} s")
        sn = rec["redis_ready_from_rdb_s"] / rec["kvd_ready_from_snapshot_s"]
        target("ready from snapshot vs Redis from RDB (speed-up)", sn, "> 1×, < 0.5 s",
               sn > 1 and rec["kvd_ready_from_snapshot_s"] < 0.5,
               f"{rec['kvd_ready_from_snapshot_s']:.2f} vs {rec['redis_ready_from_rdb_s']:.2f} s")
        m = rec["kvd_rss_mib"] / rec["redis_rss_mib"]
        target("RSS with 1 M keys, kvd / Redis", m, "≤ 1×", m <= 1,
               f"{rec['kvd_rss_mib']:.0f} vs {rec['redis_rss_mib']:.0f} MiB")
    if not out:
        return []
    return ["", "Targets, as measured in this run:", "",
            "| target | measured | goal | | |", "|---|---:|---|---|---|"] + out


def plot(results, base):
    if shutil.which("gnuplot") is None:
        return None
    data = base + ".dat"
    with open(data, "w") as f:
        for mode, aof in PAIRS:
            rows = [r for r in results["rows"] if r["kvd_mode"] == mode and r["ratio"] == "1:0" and r["pipeline"] == 1]
            f.write(f"# {mode}\n")
            for r in rows:
                f.write(f"{r['clients']} {r['kvd_ops']} {r['redis_ops']} {r['kvd_p99_us']} {r['redis_p99_us']}\n")
            f.write("\n\n")
    png = base + ".png"
    script = f"""
set terminal pngcairo size 1200,500 font ",10"
set output "{png}"
set multiplot layout 1,2 title "kvd vs Redis, PUT, pipeline 1 ({results['date'][:10]})"
set logscale x 2
set xlabel "clients"
set key left top
set ylabel "ops/s"
plot for [i=0:2] "{data}" index i using 1:2 with linespoints title "kvd ".word("sync batch none", i+1), \\
     for [i=0:2] "{data}" index i using 1:3 with linespoints dashtype 2 title "redis ".word("always everysec no-aof", i+1)
set ylabel "p99 latency (µs)"
set logscale y
plot for [i=0:2] "{data}" index i using 1:4 with linespoints title "kvd ".word("sync batch none", i+1), \\
     for [i=0:2] "{data}" index i using 1:5 with linespoints dashtype 2 title "redis ".word("always everysec no-aof", i+1)
unset multiplot
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print("gnuplot failed: " + r.stderr, file=sys.stderr)
        return None
    return png


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--recovery", action="store_true", help="with --quick: also the recovery/RSS part")
    ap.add_argument("--resp-only", action="store_true", help="only the RESP rows (redis-benchmark on both sides)")
    ap.add_argument("--no-resp", action="store_true", help="without the RESP rows")
    ap.add_argument("--resp-targets", action="store_true",
                    help="with --resp-only: only the rows issue 17's targets name (SET, sync vs always, 64 clients), "
                         "with Redis without persistence on the same rows for reference")
    ap.add_argument("--repl-only", action="store_true", help="only the replicated rows (bench/compare_repl.py)")
    ap.add_argument("--no-repl", action="store_true", help="without the replicated rows")
    ap.add_argument("--repl", action="store_true", help="with --quick: also the replicated rows")
    ap.add_argument("--repl-sync-replicas", type=int, default=None,
                    help="sync_replicas of the replicated rows (default: as many as the row's replicas, if kvd "
                         "accepts it; 0 = asynchronous)")
    ap.add_argument("--repl-seconds", type=float, default=2.0, help="replicated rows: about this long a run")
    ap.add_argument("--repl-poll-us", type=int, default=500, help="lag poller: at most one STATUS per replica this often")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--build", default=os.path.join(REPO, "build", "rel"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--tmp", default=None, help="where the servers keep their data (default: $TMPDIR)")
    args = ap.parse_args()
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    for tool in ("redis-server", "redis-benchmark", "redis-cli", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"compare: {tool} not found (run scripts/install-deps.sh)")
    results = run(args)
    if "repl" in results:
        import compare_repl
        print("replicated rows: " + compare_repl.write_report(results, args.out, " ".join(
            ["bench/compare.py"] + sys.argv[1:])))
    if args.repl_only:
        return
    md, png = write_reports(results, args.out)
    print(f"table: {md}" + (f"\nchart: {png}" if png else ""))


if __name__ == "__main__":
    main()
