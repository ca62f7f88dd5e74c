#!/usr/bin/env python3
"""Replication crash loop: three real kvd nodes on loopback (a primary with
sync_replicas = 1 and two replicas, each with its own data dir and a
`[replication] listen` so any of them can be promoted), kill -9 at random
moments, failover by hand (docs/replication.md §5-§8).

Each cycle waits until both replicas stream, runs crash_loop.py's writers on
the current primary and, at a random moment, kills one node with SIGKILL:

  * usually the primary: once both replicas' receivers see the link down,
    the replica with the highest durable LSN is promoted (`kvctl promote
    --force`) and checked against the ledger with crash_check's Checker,
    exactly as crash_loop.py checks a recovery, with the promoted node's last
    LSN as the recovered one (every acknowledged write present, the state a
    prefix of history, no holes). The other replica is re-pointed with
    `kvctl replicate --from`; the old primary is restarted and made a replica
    of the new one (half the time by its config, half the time by starting
    as the old primary and `kvctl replicate --from`); its divergent tail, if
    any, is cut into wal/diverged-*.broken;
  * sometimes a replica: it is restarted while the writers go on and
    catches up; the primary's state is checked against the ledger.

Every --converge-every cycles (and at the end) it waits until the replicas
have applied the primary's last LSN and compares full scans and digests of
all three nodes.

With sync_replicas = 1 a write is acknowledged only once a replica has it
durable, so the most advanced replica has every acknowledged write. Writes
failing with the sync gate's timeout (kIOError, "not enough synchronous
replicas" / "did not confirm the write within sync_timeout") are
indeterminate: crash_check.INDETERMINATE checks them like writes in flight.
--sync-replicas 0 (asynchronous) is there to show the check can fail: with
--slow-links (each replica follows through tests/util/fault_proxy.py, slowed
while the writers run, so the replicas lag) it loses acknowledged writes and
the loop reports them. On plain loopback the replicas keep up too closely
for asynchronous replication to lose anything to a kill -9.

Prints cycles, writes acknowledged, writes checked, writes lost (must be 0),
failovers, replica kills and tails cut (.broken files), and exits non-zero
on any violation, keeping its data dir.
"""
import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "util"))
import kvd_proto as kp  # noqa: E402
from kvdtest import KvdServer, wait_until  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402
from crash_check import Checker, Ledger  # noqa: E402
from crash_loop import CrashLoop, Writer, lsn_of, snapshot_state  # noqa: E402

WAIT = 60  # seconds for anything awaited (streaming, link down, convergence)


def repl(st):
    return st["replication"]


class Node:
    """One kvd of the set; its config is rewritten before every start."""

    def __init__(self, work, name, sync_replicas):
        self.name, self.sync_replicas = name, sync_replicas
        self.server = KvdServer(os.path.join(work, name), start=False)
        self.proxy = None  # --slow-links: this replica's link to its primary

    def link_to(self, primary, slow_links):
        """The address this replica follows primary at: the primary's own,
        or with slow_links a new fault proxy in front of it."""
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
        if not slow_links:
            return primary.addr()
        self.proxy = FaultProxy(repl(primary.status())["port"])
        return "127.0.0.1:%d" % self.proxy.port

    def configure(self, primary_addr):
        """primary_addr None: starts as a primary; else a replica of it."""
        r = {"name": self.name, "listen": "127.0.0.1:0", "sync_replicas": self.sync_replicas, "sync_timeout": "5s"}
        if primary_addr is not None:
            r.update(role="replica", primary=primary_addr)
        # Small segments and frequent snapshots: WAL recycling and snapshots
        # happen under the replicas too.
        self.server.write_config(storage={"segment_size": "64KiB"}, snapshot={"wal_bytes": "512KiB"},
                                 durability={"mode": "sync"}, replication=r)

    def status(self):
        return self.server.status()

    def addr(self):
        return "127.0.0.1:%d" % repl(self.status())["port"]

    def receiver_state(self):
        return repl(self.status())["receiver"]["state"]

    def scan(self):
        st, items = snapshot_state(self.server)
        return st, items

    def broken_files(self):
        return [n for n in os.listdir(self.server.wal_path) if n.startswith("diverged-") and n.endswith(".broken")]


class ReplCrashLoop(CrashLoop):
    # Reuses CrashLoop's old_unique_keys (bounded state over a long soak) and fail.
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = tempfile.mkdtemp(prefix="kvd-repl-crash-")
        self.ledger_path = os.path.join(self.work, "ledger.log")  # outside every node's data dir
        self.nodes = [Node(self.work, n, args.sync_replicas) for n in ("a", "b", "c")]
        self.primary, self.replicas = self.nodes[0], self.nodes[1:]
        self.chk = Checker("sync", 0, args.min_acked_per_cycle, 0)
        self.failovers = self.replica_kills = self.rejoins_by_command = self.convergence_checks = 0

    def start_set(self):
        self.primary.configure(None)
        self.primary.server.start()
        for r in self.replicas:
            r.configure(r.link_to(self.primary, self.args.slow_links))
            r.server.start()

    def slow(self, on):
        """--slow-links: the replicas fall behind while the writers run;
        whatever waits (streaming, convergence, link down) runs fast."""
        for r in self.replicas:
            if r.proxy is not None:
                if on:
                    r.proxy.slow(chunk=97, delay=0.002)
                else:
                    r.proxy.fast()

    def wait_streaming(self):
        for r in self.replicas:
            wait_until(lambda: r.receiver_state() == "streaming", timeout=WAIT,
                       what="replica %s to stream from %s" % (r.name, self.primary.name))

    def cycle(self, n):
        self.wait_streaming()  # a cycle starts from a healthy set
        self.slow(True)
        ledger = Ledger(self.ledger_path)
        stop, killed = threading.Event(), threading.Event()
        retire = self.old_unique_keys(n)
        writers = [Writer(w, self.primary.server.socket_path, ledger, self.rng.random(), n, stop, killed, retire[w])
                   for w in range(self.args.writers)]
        for w in writers:
            w.start()
        # The kill moment is random on purpose: what is being awaited is nothing.
        time.sleep(self.rng.uniform(0.02, self.args.max_run))
        if self.rng.random() < self.args.primary_kill_share:
            killed.set()  # writers' connections to the dead primary fail: expected
            self.primary.server.kill(signal.SIGKILL)
            self.slow(False)  # what the links still hold reaches the replicas
            self.join(n, writers, stop, ledger)
            self.failover(n, ledger)
        else:
            victim = self.rng.choice(self.replicas)
            victim.server.kill(signal.SIGKILL)
            self.replica_kills += 1
            time.sleep(self.rng.uniform(0, self.args.max_run))  # writers go on with one replica
            victim.configure(victim.link_to(self.primary, self.args.slow_links))
            victim.server.start()
            time.sleep(self.rng.uniform(0, self.args.max_run))  # and while it catches up
            self.slow(False)
            self.join(n, writers, stop, ledger)
            st, got = self.primary.scan()
            self.chk.check_cycle(n, ledger, lsn_of(st, "last_lsn"), got)
        if n % self.args.converge_every == 0:
            self.check_converged(n)

    def join(self, n, writers, stop, ledger):
        stop.set()
        for w in writers:
            w.join(timeout=WAIT)
            if w.is_alive():
                self.fail(f"cycle {n}: writer {w.wid} still running {WAIT} s after stop")
            for e in w.errors:
                self.fail(f"cycle {n}: {e}")
        ledger.close_cycle()

    def failover(self, n, ledger):
        old = self.primary
        # Each replica has read all the dead primary sent once its link is
        # down: only then are the LSNs to compare final.
        for r in self.replicas:
            wait_until(lambda: r.receiver_state() != "streaming", timeout=WAIT,
                       what=f"replica {r.name} to see the primary gone")
        sts = {r.name: r.status() for r in self.replicas}
        best = max(self.replicas, key=lambda r: (sts[r.name]["durable_lsn"], sts[r.name]["last_lsn"]))
        other = [r for r in self.replicas if r is not best][0]
        # Everything received is applied before the scan: the state at its last LSN.
        # Scanned while it is still a replica: promoted, with no replica
        # confirming its records yet, its reads wait for the sync watermark
        # (the read barrier, docs/replication.md §6). Promotion changes no key.
        wait_until(lambda: (lambda s: s["applied_lsn"] >= s["last_lsn"])(best.status()), timeout=WAIT,
                   what=f"{best.name} to apply what it received")
        st, got = best.scan()
        res = best.server.kvctl("promote", "--force")
        if res.rc != 0:
            raise AssertionError(f"cycle {n}: promote of {best.name} failed: {res.err}")
        self.failovers += 1
        self.primary = best
        self.chk.check_cycle(n, ledger, lsn_of(st, "last_lsn"), got)
        if best.proxy is not None:
            best.proxy.close()
            best.proxy = None
        addr = other.link_to(best, self.args.slow_links)
        other.configure(addr)  # for its next restart
        res = other.server.kvctl("replicate", "--from", addr)
        if res.rc != 0:
            raise AssertionError(f"cycle {n}: replicate --from on {other.name} failed: {res.err}")
        addr = old.link_to(best, self.args.slow_links)
        if self.rng.random() < 0.5:
            old.configure(addr)
            old.server.start()
        else:
            # It comes back as the old primary it was (epoch and tail
            # intact), and is turned into a replica by command.
            old.configure(None)
            old.server.start()
            res = old.server.kvctl("replicate", "--from", addr)
            if res.rc != 0:
                raise AssertionError(f"cycle {n}: replicate --from on old primary {old.name} failed: {res.err}")
            old.configure(addr)
            self.rejoins_by_command += 1
        self.replicas = [other, old]

    def check_converged(self, n):
        self.wait_streaming()
        last = self.primary.status()["last_lsn"]
        for r in self.replicas:
            wait_until(lambda: r.status()["applied_lsn"] >= last, timeout=WAIT,
                       what=f"replica {r.name} to apply LSN {last}")
        st, expected = self.primary.scan()
        digest = lsn_of(st, "digest")
        for r in self.replicas:
            rst, items = r.scan()
            if items != expected or lsn_of(rst, "digest") != digest:
                diff = {k for k in set(items) | set(expected) if items.get(k) != expected.get(k)}
                self.fail(f"cycle {n}: replica {r.name} differs from primary {self.primary.name} at LSN {last}: "
                          f"digest {lsn_of(rst, 'digest'):#x} vs {digest:#x}, {len(diff)} keys differ, "
                          f"e.g. {sorted(diff)[:3]!r}")
        self.convergence_checks += 1

    def run(self):
        t0 = time.monotonic()
        n = 0
        try:
            self.start_set()
            for n in range(1, self.args.cycles + 1):
                self.cycle(n)
                if self.chk.errors and not self.args.keep_going:
                    break
                if self.args.max_seconds and time.monotonic() - t0 > self.args.max_seconds:
                    print(f"time budget of {self.args.max_seconds} s spent after {n} cycles")
                    break
            if not self.chk.errors and n % self.args.converge_every != 0:
                self.check_converged(n)
        except (AssertionError, kp.KvdConnectionClosed, OSError) as e:
            self.fail(f"cycle {n}: {e}")
        finally:
            for node in self.nodes:
                if node.server.running():
                    node.server.kill(signal.SIGKILL)
                if node.proxy is not None:
                    node.proxy.close()
        tails = sum(len(node.broken_files()) for node in self.nodes)
        took = time.monotonic() - t0
        c = self.chk
        links = ", slow links" if self.args.slow_links else ""
        print(f"replication crash loop (sync_replicas {self.args.sync_replicas}{links}, seed {self.args.seed}): "
              f"cycles {n}, "
              f"writes acknowledged {c.acked}, writes checked {c.checked}, writes lost {c.lost}, failovers "
              f"{self.failovers} ({self.rejoins_by_command} old primaries rejoined by replicate --from), replica "
              f"kills {self.replica_kills}, tails cut {tails}, convergence checks {self.convergence_checks}, "
              f"keys at the end {len(c.baseline)}, {took:.0f} s")
        c.check_work(max(n, 1))
        if c.errors:
            print(f"FAILED: {len(c.errors)} violations; data kept in {self.work}", file=sys.stderr)
            return 1
        shutil.rmtree(self.work, ignore_errors=True)
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--max-seconds", type=float, default=0, help="start no new cycle after this many seconds (0: no limit)")
    ap.add_argument("--sync-replicas", type=int, default=1, help="0 only to show the check fails (async loses writes)")
    ap.add_argument("--slow-links", action="store_true",
                    help="each replica follows through a fault proxy that slows the stream while writers run")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--max-run", type=float, default=0.4, help="longest writing phase per cycle, seconds")
    ap.add_argument("--primary-kill-share", type=float, default=0.7, help="share of cycles that kill the primary")
    ap.add_argument("--converge-every", type=int, default=3, help="compare all nodes' scans every N cycles")
    ap.add_argument("--unique-window", type=int, default=10,
                    help="unique keys older than N cycles are deleted again, bounding the state")
    ap.add_argument("--min-acked-per-cycle", type=int, default=10)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep-going", action="store_true")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    sys.exit(ReplCrashLoop(args).run())


if __name__ == "__main__":
    main()
