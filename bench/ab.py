#!/usr/bin/env python3
"""Two kvd builds side by side: is the new one slower anywhere?

For a change that should not cost speed (a refactor, a new hook that is off),
this runs the throughput rows of bench/compare.py -- durability modes sync,
batch and none; PUT-only and 90:10 GET:PUT; 1, 16 and 64 clients; pipeline 1
and 16 -- against a "before" and an "after" build in one run, alternating the
two on every repetition so that machine noise hits both alike. Both servers
are driven by the same kvctl (the "after" one unless --kvctl says otherwise:
compare.py passes it the current flags), so only the server differs. Each row reports the median of --reps runs and
after/before; a row more than --tolerance slower is marked.

Usage: bench/ab.py --before DIR --after DIR [--reps N] [--tolerance 0.05]
                   [--modes sync,batch,none] [--quick] [--out FILE.md]
                   [--instructions [--requests N]]

--instructions counts instead of timing: every row runs once per build on a
fresh kvd under callgrind (no cache simulation), and the row reports the
server's instructions per request, (run total - an idle start/stop) / N.
Instruction counts do not move with the machine's load, so on a noisy shared
machine this is the comparison that can resolve a few per cent; the timed
rows cannot (run to run they scatter by +-10% there). System-call counts are
not in it: check those with strace -c when a change could alter them.
DIR holds daemon/kvd and ctl/kvctl (a build tree, or a copy of one).
Exit status: 0 when no row is slower than the tolerance, 1 otherwise.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (same directory)


class BenchKvd(compare.Kvd):
    """A kvd of one build, benchmarked with a kvctl that may be another build's."""

    def __init__(self, build, kvctl, workdir, cpu, mode):
        super().__init__(build, workdir, cpu, mode,
                         flush_interval="1s" if mode == "batch" else "10ms",
                         batch_size=100000 if mode == "batch" else 1024)
        self.kvctl = kvctl
        self._drop_keys_unknown_to(build)

    def _drop_keys_unknown_to(self, build):
        """A "before" build may predate a key compare.py sets (wal_growth_percent turns
        automatic snapshots off, which such a build never takes anyway): leave it out."""
        check = subprocess.run([self.bin, "--check-config", "--config", self.conf], capture_output=True, text=True)
        if check.returncode == 0:
            return
        with open(self.conf) as f:
            lines = f.readlines()
        kept = [ln for ln in lines if not ln.startswith("wal_growth_percent")]
        if kept == lines:
            raise RuntimeError(f"{build}: kvd refuses the benchmark config: {check.stderr.strip()}")
        with open(self.conf, "w") as f:
            f.writelines(kept)


def run(args):
    cpus = os.cpu_count() or 1
    server_cpu = compare.disk_irq_cpu() % cpus
    load_cpu = (server_cpu + 1) % cpus
    kvctl = args.kvctl or os.path.join(args.after, "ctl", "kvctl")
    tmp = tempfile.mkdtemp(prefix="kvd-ab-", dir=args.tmp)
    rows = []
    try:
        for mode in args.modes.split(","):
            servers = {name: BenchKvd(build, kvctl, tempfile.mkdtemp(dir=tmp), server_cpu, mode)
                       for name, build in (("before", args.before), ("after", args.after))}
            for s in servers.values():
                s.start()
            try:
                for ratio in ("1:0", "1:9"):
                    for clients in ([1, 16] if args.quick else [1, 16, 64]):
                        for pipeline in (1, 16):
                            n = compare.requests_for(mode, clients, pipeline, args.quick)
                            runs = {"before": [], "after": []}
                            for rep in range(args.reps):
                                # Alternate which build goes first, too.
                                order = ("before", "after") if rep % 2 == 0 else ("after", "before")
                                for name in order:
                                    runs[name].append(servers[name].bench(load_cpu, clients, n, pipeline,
                                                                          ratio, 100, 1000000))
                            row = {"mode": mode, "ratio": ratio, "clients": clients, "pipeline": pipeline}
                            for name in runs:
                                row[name] = statistics.median(r["ops"] for r in runs[name])
                                row[name + "_errors"] = sum(r["errors"] for r in runs[name])
                            row["x"] = row["after"] / row["before"] if row["before"] else float("nan")
                            row["slower"] = row["x"] < 1.0 - args.tolerance
                            rows.append(row)
                            print(f"{mode:5} {ratio:>4} c={clients:<3} P={pipeline:<3} before {row['before']:>9.0f}/s"
                                  f"  after {row['after']:>9.0f}/s  x{row['x']:.3f}"
                                  f"{'  SLOWER' if row['slower'] else ''}", flush=True)
            finally:
                for s in servers.values():
                    s.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


class CallgrindKvd(BenchKvd):
    """A kvd under callgrind: instructions executed, whatever the machine's load."""

    def start(self):
        self.out = os.path.join(self.dir, "callgrind.out")
        self.log = open(os.path.join(self.dir, "kvd.log"), "ab")
        self.proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--cache-sim=no",
                                      f"--callgrind-out-file={self.out}", self.bin, "--config", self.conf],
                                     stdout=self.log, stderr=self.log)
        compare.wait_for_socket(self.sock, self.proc, timeout=300)

    def instructions(self):
        """Total Ir of the run; call after stop()."""
        with open(self.out) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
        raise RuntimeError("no totals in " + self.out)


def run_instructions(args):
    kvctl = args.kvctl or os.path.join(args.after, "ctl", "kvctl")
    tmp = tempfile.mkdtemp(prefix="kvd-ab-ir-", dir=args.tmp)
    builds = (("before", args.before), ("after", args.after))

    def one(build, mode, load):
        k = CallgrindKvd(build, kvctl, tempfile.mkdtemp(dir=tmp), 0, mode)
        k.start()
        try:
            r = load(k) if load else {"errors": 0}
        finally:
            k.stop()
        return k.instructions(), r["errors"]

    rows = []
    try:
        for mode in args.modes.split(","):
            idle = {name: one(build, mode, None)[0] for name, build in builds}
            for ratio in ("1:0", "1:9"):
                for clients in [1, 16, 64]:
                    for pipeline in (1, 16):
                        n = args.requests
                        row = {"mode": mode, "ratio": ratio, "clients": clients, "pipeline": pipeline}
                        for name, build in builds:
                            ir, errors = one(build, mode, lambda k: k.bench(
                                0, clients, n, pipeline, ratio, 100, 1000000))
                            row[name] = (ir - idle[name]) / n
                            row[name + "_errors"] = errors
                        # Fewer instructions is faster: after/before of the rate, as in the timed table.
                        row["x"] = row["before"] / row["after"]
                        row["slower"] = row["x"] < 1.0 - args.tolerance
                        rows.append(row)
                        print(f"{mode:5} {ratio:>4} c={clients:<3} P={pipeline:<3} before {row['before']:>8.0f} Ir/req"
                              f"  after {row['after']:>8.0f} Ir/req  x{row['x']:.3f}"
                              f"{'  SLOWER' if row['slower'] else ''}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def table_instructions(rows, tolerance, requests):
    return table(rows, tolerance, [
        f"Two kvd builds, each row once per build on a fresh kvd under callgrind, {requests} requests:",
        "server instructions per request (run total minus an idle start/stop). x = before/after",
        "(above 1: the after build executes fewer instructions)."], ("Ir/req", "x"))


def table_timed(rows, tolerance, reps):
    return table(rows, tolerance, [
        f"Two kvd builds, {reps} alternating runs per row (median ops/s), same kvctl for both."],
        ("ops/s", "after/before"))


def table(rows, tolerance, intro, units):
    figure, ratio = units
    out = intro + ["",
                   f"| mode | GET:PUT | clients | pipeline | before {figure} | after {figure} | {ratio} |",
                   "|---|---|---|---|---|---|---|"]
    for r in rows:
        mix = "PUT only" if r["ratio"] == "1:0" else "90:10"
        mark = " **slower**" if r["slower"] else ""
        out.append(f"| {r['mode']} | {mix} | {r['clients']} | {r['pipeline']} | {r['before']:.0f} | "
                   f"{r['after']:.0f} | {r['x']:.3f}{mark} |")
    worst = min(rows, key=lambda r: r["x"])
    out += ["", f"Worst row: {worst['mode']} {worst['ratio']} c={worst['clients']} P={worst['pipeline']} "
                f"x{worst['x']:.3f}; tolerance {tolerance:.0%}."]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--kvctl", default=None, help="load generator (default: the after build's kvctl)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument("--modes", default="sync,batch,none")
    ap.add_argument("--quick", action="store_true", help="tiny request counts (a smoke run)")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--instructions", action="store_true",
                    help="count the server's instructions per request under callgrind instead of timing")
    ap.add_argument("--requests", type=int, default=20000, help="with --instructions: requests per row")
    args = ap.parse_args()
    tool = "valgrind" if args.instructions else "taskset"
    if shutil.which(tool) is None:
        sys.exit(f"ab: {tool} not found (run scripts/install-deps.sh)")
    if args.instructions:
        rows = run_instructions(args)
        md = table_instructions(rows, args.tolerance, args.requests)
    else:
        rows = run(args)
        md = table_timed(rows, args.tolerance, args.reps)
    print(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md)
    errors = sum(r["before_errors"] + r["after_errors"] for r in rows)
    if errors:
        print(f"ab: {errors} request errors", file=sys.stderr)
    return 1 if errors or any(r["slower"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
