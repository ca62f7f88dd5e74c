"""The RESP rows of bench/compare.py: redis-benchmark drives both Redis and
kvd's RESP listener with identical flags (SET and GET, clients 1/16/64,
pipeline 1/16, each durability pair), and kvctl bench drives kvd's native
protocol on the same rows, so two questions get one answer each:
  - kvd over RESP vs Redis, with the same load generator on both sides;
  - kvd over RESP vs kvd native: what the Redis protocol costs.
GET rows run after the SET rows of the same pair, over the keys they wrote.
"""
import os
import statistics
import subprocess
import tempfile

from compare import PAIRS, Kvd, Redis, RedisBenchmark, requests_for, wait_for_socket


class KvdResp(Kvd):
    """kvd with its [resp] listener on a Unix socket beside the native one."""

    def __init__(self, build, workdir, cpu, mode, **kw):
        super().__init__(build, workdir, cpu, mode, **kw)
        self.resp_sock = os.path.join(workdir, "kvd-resp.sock")
        with open(self.conf) as f:
            text = f.read()
        text = text.replace("[log]", f'[resp]\nsocket = "{self.resp_sock}"\n[log]')
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self):
        t = super().start()
        wait_for_socket(self.resp_sock, self.proc)
        return t


def redis_benchmark(sock, cpu, clients, requests, pipeline, value_size, key_space, cmd):
    """One redis-benchmark run against any RESP server: (ops/s, p99 µs)."""
    return RedisBenchmark(sock, cpu, clients, requests, pipeline, value_size, key_space, cmd).result()


def check_resp_writes(kvd, key_space):
    """The SET rows' keys (redis-benchmark writes key:<12 digits>) are in kvd's
    store, read through the native protocol: a RESP front end that answered +OK
    without writing fails here, not only in the numbers."""
    n = int(kvd.ctl("count", "--prefix", "key:").strip())
    if not 0 < n <= key_space:
        raise RuntimeError(f"kvd holds {n} keys under key: after the RESP SET rows (key space {key_space})")


def run_rows(args, tmp, server_cpu, load_cpu):
    rows = []
    clients_list = [1, 16] if args.quick else [1, 16, 64]
    key_space = 1000 if args.quick else 1000000
    for kvd_mode, redis_aof in PAIRS:
        kvd = KvdResp(args.build, tempfile.mkdtemp(dir=tmp), server_cpu, kvd_mode,
                      flush_interval="1s" if kvd_mode == "batch" else "10ms",
                      batch_size=100000 if kvd_mode == "batch" else 1024)
        redis = Redis(tempfile.mkdtemp(dir=tmp), server_cpu, redis_aof)
        kvd.start()
        redis.start()
        try:
            for cmd, ratio in (("set", "1:0"), ("get", "0:1")):
                for clients in clients_list:
                    for pipeline in (1, 16):
                        n = requests_for(kvd_mode if cmd == "set" else "none", clients, pipeline, args.quick)
                        kr, rr, nr = [], [], []
                        for _ in range(args.reps):  # alternate the three
                            kr.append(redis_benchmark(kvd.resp_sock, load_cpu, clients, n, pipeline, 100,
                                                      key_space, cmd))
                            rr.append(redis_benchmark(redis.sock, load_cpu, clients, n, pipeline, 100, key_space,
                                                      cmd))
                            b = kvd.bench(load_cpu, clients, n, pipeline, ratio, 100, key_space)
                            if b["errors"]:
                                raise RuntimeError(f"kvctl bench: {b['errors']} errors from kvd's native protocol")
                            nr.append((b["ops"], b["p99_us"]))
                        row = {"kvd_mode": kvd_mode, "redis": redis_aof or "no AOF", "cmd": cmd.upper(),
                               "clients": clients, "pipeline": pipeline, "requests": n,
                               "kvd_resp_ops": statistics.median(x[0] for x in kr),
                               "kvd_resp_p99_us": statistics.median(x[1] for x in kr),
                               "redis_ops": statistics.median(x[0] for x in rr),
                               "redis_p99_us": statistics.median(x[1] for x in rr),
                               "kvd_native_ops": statistics.median(x[0] for x in nr),
                               "kvd_native_p99_us": statistics.median(x[1] for x in nr)}
                        row["resp_vs_redis"] = row["kvd_resp_ops"] / row["redis_ops"]
                        row["resp_vs_native"] = row["kvd_resp_ops"] / row["kvd_native_ops"]
                        rows.append(row)
                        print(f"RESP {kvd_mode:5} vs {row['redis']:8} {row['cmd']:3} c={clients:<3} P={pipeline:<3}"
                              f" kvd-resp {row['kvd_resp_ops']:>9.0f}/s  redis {row['redis_ops']:>9.0f}/s"
                              f"  kvd-native {row['kvd_native_ops']:>9.0f}/s  x{row['resp_vs_redis']:.2f} vs redis,"
                              f" x{row['resp_vs_native']:.2f} vs native", flush=True)
                if cmd == "set":
                    check_resp_writes(kvd, key_space)
        finally:
            kvd.stop()
            redis.stop()
    return rows


def report_lines(results):
    rows = results.get("resp_rows")
    if not rows:
        return []
    lines = ["", "redis-benchmark on both sides (kvd's RESP listener vs Redis, identical flags), and kvctl bench "
             "on kvd's native protocol for the same row:", "",
             "| kvd mode | Redis | cmd | clients | pipeline | kvd RESP ops/s | Redis ops/s | RESP / Redis | "
             "kvd native ops/s | RESP / native | kvd RESP p99 µs | Redis p99 µs |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['kvd_mode']} | {r['redis']} | {r['cmd']} | {r['clients']} | {r['pipeline']} | "
                     f"{r['kvd_resp_ops']:.0f} | {r['redis_ops']:.0f} | {r['resp_vs_redis']:.2f}× | "
                     f"{r['kvd_native_ops']:.0f} | {r['resp_vs_native']:.2f}× | {r['kvd_resp_p99_us']:.0f} | "
                     f"{r['redis_p99_us']:.0f} |")
    out = []
    s64 = [r for r in rows if r["kvd_mode"] == "sync" and r["cmd"] == "SET" and r["clients"] == 64]
    for r in s64:
        ok = r["resp_vs_redis"] >= 1.5
        out.append(f"| RESP SET, sync vs Redis always, 64 clients, P{r['pipeline']} | {r['resp_vs_redis']:.2f}× | "
                   f"≥ 1.5× | {'met' if ok else '**not met**'} | |")
    if rows:
        worst = min(rows, key=lambda r: r["resp_vs_native"])
        ok = worst["resp_vs_native"] >= 0.9
        out.append(f"| kvd RESP vs native, same rows (lowest) | {worst['resp_vs_native']:.2f}× | ≥ 0.9× | "
                   f"{'met' if ok else '**not met**'} | {worst['kvd_mode']} {worst['cmd']} c{worst['clients']} "
                   f"P{worst['pipeline']}; {len(rows)} rows |")
    return lines + ["", "RESP targets, as measured in this run:", "",
                    "| target | measured | goal | | |", "|---|---:|---|---|---|"] + out
