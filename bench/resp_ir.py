#!/usr/bin/env python3
"""kvd's RESP front end vs its native protocol, measured on the server alone.

The timed RESP rows of bench/compare.py scatter by +-10% run to run on a
shared machine. This counts what
the server itself executes instead: every row runs on a fresh kvd (RESP
listener on) under callgrind (no cache simulation); the counters are zeroed
once the keys are in place and dumped after the load, so a row reports the
server's user-space instructions per request for exactly that load. The same
rows as compare_resp: SET and GET, clients 1/16/64, pipeline 1 and 16.
GET rows read keys that exist (written first by kvctl bench --prefill, under
both generators' key prefixes, so both protocols read hits from one State).

System calls and the kernel's socket work are not in an instruction count:
--syscalls adds an strace -c -f run per row (read/write/epoll calls per
request), the part of the cost that depends on how the load generator
batches its requests rather than on the protocol.

By default kvctl bench drives both protocols (--resp for the RESP rows), so
the clients, batching and keys are the same and only the protocol differs;
--resp-generator redis-benchmark drives the RESP rows with redis-benchmark.

Usage: bench/resp_ir.py --build DIR [--requests N] [--modes none,sync] [--clients 1,16,64]
                        [--resp-generator kvctl|redis-benchmark]
                        [--syscalls] [--out FILE.md]
"""
import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (same directory)
import compare_resp  # noqa: E402

KEY_SPACE = 10000
VALUE_SIZE = 100


class TracedKvd(compare_resp.KvdResp):
    """kvd with its RESP listener, under callgrind or strace instead of taskset."""

    def __init__(self, build, workdir, mode, tool):
        super().__init__(build, workdir, 0, mode, flush_interval="1s" if mode == "batch" else "10ms",
                         batch_size=100000 if mode == "batch" else 1024)
        self.tool = tool
        self.out = os.path.join(workdir, "trace.out")

    def start(self):
        self.log = open(os.path.join(self.dir, "kvd.log"), "ab")
        if self.tool == "callgrind":
            wrap = ["valgrind", "--tool=callgrind", "--cache-sim=no", f"--callgrind-out-file={self.out}"]
        else:
            wrap = ["strace", "-f", "-c", "-o", self.out]
        self.proc = subprocess.Popen(wrap + [self.bin, "--config", self.conf], stdout=self.log, stderr=self.log)
        compare.wait_for_socket(self.sock, self.proc, timeout=300)
        compare.wait_for_socket(self.resp_sock, self.proc, timeout=300)

    def stop(self):
        if self.tool == "strace" and self.proc and self.proc.poll() is None:
            # strace ignores the SIGTERM meant for kvd: send it to kvd, its child.
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                for pid in f.read().split():
                    os.kill(int(pid), signal.SIGTERM)
            self.proc.wait(timeout=120)
        super().stop()

    def zero(self):
        compare.run_tool(["callgrind_control", "--zero", str(self.proc.pid)])

    def dump_instructions(self):
        """Instructions since zero(): callgrind_control --dump writes <out>.<n>."""
        before = set(glob.glob(self.out + ".*"))
        compare.run_tool(["callgrind_control", "--dump", str(self.proc.pid)])
        new = sorted(set(glob.glob(self.out + ".*")) - before)
        if not new:
            raise RuntimeError("callgrind wrote no dump")
        with open(new[-1]) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
        raise RuntimeError("no totals in " + new[-1])

    def syscalls(self):
        """{name: calls} from strace -c; call after stop()."""
        calls = {}
        with open(self.out) as f:
            for line in f:
                cols = line.split()
                if len(cols) >= 5 and cols[0][0].isdigit() and cols[-1] not in ("total",):
                    calls[cols[-1]] = int(cols[3])
        return calls


def load(kvd, proto, cmd, clients, pipeline, n, generator):
    if proto == "resp" and generator == "redis-benchmark":
        compare_resp.redis_benchmark(kvd.resp_sock, 1, clients, n, pipeline, VALUE_SIZE, KEY_SPACE, cmd)
        return
    # kvctl bench on either protocol: the same clients, batching and keys,
    # so the two rows differ only in the protocol the server speaks.
    ratio = "1:0" if cmd == "set" else "0:1"
    r = kvd.bench(1, clients, n, pipeline, ratio, VALUE_SIZE, KEY_SPACE,
                  resp=kvd.resp_sock if proto == "resp" else None)
    if r["errors"]:
        raise RuntimeError(f"kvctl bench: {r['errors']} errors")


def prefill(kvd):
    # Every key either load generator reads: redis-benchmark's key:<12 digits>
    # and kvctl bench's bench:<12 digits>, so that both protocols read hits
    # from the same State.
    for prefix in ("key:", "bench:"):
        compare.run_tool([kvd.kvctl, "--socket", kvd.sock, "bench", "--clients", "4", "--pipeline", "64",
                          "--requests", "1", "--key-space", str(KEY_SPACE), "--value-size", str(VALUE_SIZE),
                          "--prefill", "--prefix", prefix, "--ratio", "1:0", "--json", "--no-progress", "--keep"])


def one(args, tmp, tool, mode, proto, cmd, clients, pipeline, n):
    k = TracedKvd(args.build, tempfile.mkdtemp(dir=tmp), mode, tool)
    k.start()
    try:
        if cmd == "get":
            prefill(k)
        if tool == "callgrind":
            k.zero()
            load(k, proto, cmd, clients, pipeline, n, args.resp_generator)
            return k.dump_instructions() / n
        load(k, proto, cmd, clients, pipeline, n, args.resp_generator)
    finally:
        k.stop()
    calls = k.syscalls()
    return {name: c / n for name, c in calls.items()}


def run(args):
    tmp = tempfile.mkdtemp(prefix="kvd-resp-ir-", dir=args.tmp)
    rows = []
    try:
        for mode in args.modes.split(","):
            for cmd in ("set", "get"):
                for clients in (int(c) for c in args.clients.split(",")):
                    for pipeline in (1, 16):
                        n = compare.whole_pipelines(args.requests, clients, pipeline)
                        row = {"mode": mode, "cmd": cmd.upper(), "clients": clients, "pipeline": pipeline, "n": n}
                        for proto in ("resp", "native"):
                            row[proto] = one(args, tmp, "callgrind", mode, proto, cmd, clients, pipeline, n)
                            if args.syscalls:
                                sc = one(args, tmp, "strace", mode, proto, cmd, clients, pipeline, n)
                                row[proto + "_sys"] = sum(sc.get(s, 0) for s in (
                                    "read", "readv", "write", "writev", "recvfrom", "sendto", "sendmsg",
                                    "recvmsg", "epoll_wait", "epoll_pwait", "epoll_ctl"))
                        row["x"] = row["resp"] / row["native"]
                        rows.append(row)
                        extra = (f"  syscalls/req resp {row['resp_sys']:.2f} native {row['native_sys']:.2f}"
                                 if args.syscalls else "")
                        print(f"{mode:5} {cmd.upper():3} c={clients:<3} P={pipeline:<3} RESP {row['resp']:>7.0f} Ir/req"
                              f"  native {row['native']:>7.0f} Ir/req  RESP/native x{row['x']:.3f}{extra}",
                              flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def table(rows, requests, syscalls, generator):
    head = "| mode | cmd | clients | pipeline | RESP Ir/req | native Ir/req | RESP / native |"
    rule = "|---|---|---|---|---:|---:|---:|"
    if syscalls:
        head += " RESP syscalls/req | native syscalls/req |"
        rule += "---:|---:|"
    out = [f"Server instructions per request (kvd under callgrind, user space only, counters zeroed after the "
           f"keys were written; {requests} requests a row, 100-byte values, {KEY_SPACE} keys): {generator} "
           "on the RESP listener vs kvctl bench on the native socket of the same kvd build.", "", head, rule]
    for r in rows:
        line = (f"| {r['mode']} | {r['cmd']} | {r['clients']} | {r['pipeline']} | {r['resp']:.0f} | "
                f"{r['native']:.0f} | {r['x']:.2f}× |")
        if syscalls:
            line += f" {r['resp_sys']:.2f} | {r['native_sys']:.2f} |"
        out.append(line)
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(compare.REPO, "build", "rel"))
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--modes", default="none,sync")
    ap.add_argument("--clients", default="1,16,64")
    ap.add_argument("--syscalls", action="store_true", help="also count system calls per request (strace -c)")
    ap.add_argument("--resp-generator", choices=["kvctl", "redis-benchmark"], default="kvctl",
                    help="what drives the RESP rows: kvctl bench --resp (default: the native rows' generator) "
                         "or redis-benchmark")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    ap.add_argument("--tmp", default=None)
    args = ap.parse_args()
    for tool in ["valgrind", "callgrind_control", "redis-benchmark"] + (["strace"] if args.syscalls else []):
        if shutil.which(tool) is None:
            sys.exit(f"resp_ir: {tool} not found (run scripts/install-deps.sh)")
    rows = run(args)
    md = table(rows, args.requests, args.syscalls, "kvctl bench --resp" if args.resp_generator == "kvctl"
               else "redis-benchmark")
    print(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md)


if __name__ == "__main__":
    main()
