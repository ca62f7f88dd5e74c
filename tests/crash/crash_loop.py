#!/usr/bin/env python3
"""Black-box crash loop against the real kvd (like RocksDB's db_crashtest).

Each cycle starts kvd, runs several writer connections (unique keys,
overwrites of a shared key set, deletes, BATCHes, pipelined bursts), records
every acknowledgement with its LSN in a ledger kept outside the data
directory, kills kvd with SIGKILL at a random moment (sometimes right after
asking for a snapshot, sometimes again while it is starting up and
recovering; small WAL segments make roll-overs frequent), restarts it and
checks the recovered state against the ledger:

  * replies are matched to requests by request id;
  * sync mode: every acknowledged write is there (unless a later
    acknowledged write to the same key replaced it);
  * the state equals the ledger's state at the recovered LSN R >= the last
    acknowledged LSN: a prefix of history -- nothing reordered, no value that
    was never written. A write in flight at the kill may show only in history
    order: after the last acknowledged write to its key and after everything
    acknowledged before it was sent;
  * no holes, judged on contents: unique keys show which writes were
    applied; on each connection they form a prefix, and nothing acknowledged
    before a write that is there may be missing;
  * batch mode: everything up to the durable LSN of the last reply is there,
    and fewer than batch_size acknowledged writes were lost;
  * recovering twice without new writes gives the same digest and contents;
  * the run did enough: at least --min-acked-per-cycle acknowledged writes per
    cycle, at most --max-connect-failures writer connections failed.

Unique keys older than --unique-window cycles are deleted again by their
writer, so the state stays bounded however many cycles a soak runs.

--power-loss runs kvd on the fault-injecting Env (`--fault-env power-loss`,
test builds only) so a SIGKILL also loses everything not fdatasynced and every
file creation, rename and removal whose directory was not
fsynced, like a power cut (--writeback: pages of unsynced writes also reach
the disk early, in any order). Without fault injection in kvd it exits 77
(skipped).

Prints cycles, writes acknowledged, writes checked and writes lost (must be 0)
and exits non-zero on any violation.
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "util"))
import kvd_proto as kp  # noqa: E402
from kvdtest import KvdError, KvdServer, SKIP_EXIT, binary  # noqa: E402
from crash_check import Checker, Ledger  # noqa: E402

SHARED_KEYS = 64


class Writer(threading.Thread):
    def __init__(self, wid, sock, ledger, rng_seed, cycle, stop, killed, retire):
        super().__init__(daemon=True)
        self.wid, self.sock, self.ledger, self.cycle, self.stop = wid, sock, ledger, cycle, stop
        self.killed = killed  # set just before the SIGKILL: failures after it are expected
        self.rng = random.Random(rng_seed)
        self.seq = 0
        self.errors = []
        self.retire = retire  # this writer's unique keys from old cycles, to delete

    def value(self):
        self.seq += 1
        tag = f"{self.cycle}:{self.wid}:{self.seq}:".encode()
        return tag + b"v" * self.rng.randrange(0, 300)

    def op(self):
        r = self.rng.random()
        if r < 0.3:
            if self.retire and self.rng.random() < 0.5:
                # Deleting old unique keys as fast as new ones appear keeps a long soak's
                # state (and so its scans and snapshots) bounded.
                return kp.OP_DEL, [(self.retire.pop(), None)]
            return kp.OP_PUT, [(f"u:{self.wid}:{self.cycle}:{self.seq}".encode(), self.value())]
        if r < 0.6:
            return kp.OP_PUT, [(f"s:{self.rng.randrange(SHARED_KEYS)}".encode(), self.value())]
        if r < 0.75:
            return kp.OP_DEL, [(f"s:{self.rng.randrange(SHARED_KEYS)}".encode(), None)]
        ops = []
        for _ in range(self.rng.randrange(2, 6)):
            k = f"s:{self.rng.randrange(SHARED_KEYS)}".encode()
            ops.append((k, None) if self.rng.random() < 0.25 else (k, self.value()))
        return kp.OP_BATCH, ops

    def run(self):
        try:
            c = kp.KvdClient(self.sock, timeout=30)
        except OSError:
            if not self.killed.is_set():
                with self.ledger.lock:
                    self.ledger.connect_failures += 1
            return
        n = 0
        try:
            while not self.stop.is_set():
                depth = 1 if self.rng.random() < 0.6 else self.rng.randrange(2, 16)  # pipelined bursts
                reqs, writes = [], []
                for _ in range(depth):
                    opcode, ops = self.op()
                    if opcode == kp.OP_PUT:
                        payload = kp.put_payload(*ops[0])
                    elif opcode == kp.OP_DEL:
                        payload = ops[0][0]
                    else:
                        payload = kp.batch_payload([(kp.BATCH_PUT, k, v) if v is not None else (kp.BATCH_DEL, k)
                                                    for k, v in ops])
                    reqs.append((opcode, payload))
                    n += 1
                    writes.append(self.ledger.send(self.wid, n, ops))
                by_id = dict(zip(c.send_many(reqs), writes))
                while by_id:
                    reply = c.recv()
                    w = by_id.pop(reply.request_id, None)
                    if w is None:  # an answer to nothing we asked, or asked twice
                        self.errors.append(f"writer {self.wid}: reply for unknown request id {reply.request_id}")
                        return
                    self.ledger.answer(w, reply)
        except (OSError, kp.KvdConnectionClosed) as e:
            if not self.killed.is_set():
                self.errors.append(f"writer {self.wid}: connection failed before the kill: {e}")
            # else kvd was killed: whatever is in flight stays unknown
        finally:
            c.close()


def fault_env_built():
    p = subprocess.run([binary("KVD_BIN"), "--help"], capture_output=True, timeout=30)
    return b"--fault-env" in p.stdout


def snapshot_state(server):
    with kp.KvdClient(server.socket_path) as c:
        st = c.status().check().json
        items = dict(c.scan_all())
    return st, items


def lsn_of(status, name):
    """Finds a numeric field anywhere in the STATUS JSON (e.g. last_lsn)."""
    stack = [status]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            for k, v in o.items():
                if k == name and isinstance(v, int):
                    return v
                stack.append(v)
    raise KeyError(name)


class CrashLoop:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = tempfile.mkdtemp(prefix="kvd-crash-")
        self.ledger_path = os.path.join(self.work, "ledger.log")  # outside kvd's data dir
        durability = {"mode": args.mode, "batch_size": args.batch_size, "flush_interval": "50ms"}
        self.server = KvdServer(os.path.join(self.work, "kvd"), start=False,
                                storage={"segment_size": "64KiB", **self.storage_overrides()},
                                snapshot={"wal_bytes": "512KiB"},
                                durability=durability,
                                extra_args=["--fault-env", self.fault_spec()] if args.power_loss else [])
        self.chk = Checker(args.mode, args.batch_size, args.min_acked_per_cycle, args.max_connect_failures)
        self.kills_in_recovery = self.snapshot_kills = 0

    def storage_overrides(self):
        """More [storage] keys (a subclass may put the data elsewhere)."""
        return {}

    def crash(self):
        """The crash itself: SIGKILL (with --power-loss the fault layer drops
        the rest). tests/lazyfs/crash_loop_lazyfs.py cuts the power first."""
        self.server.kill(signal.SIGKILL)

    def crash_during_startup(self):
        self.server.spawn_and_kill(self.rng.uniform(0, 0.02))

    def kind(self):
        return "power-loss" if self.args.power_loss else "process-kill"

    def fault_spec(self):
        return "power-loss,writeback" if self.args.writeback else "power-loss"

    def fail(self, msg):
        self.chk.fail(msg)

    def cycle(self, n):
        ledger = Ledger(self.ledger_path)
        stop, killed = threading.Event(), threading.Event()
        retire = self.old_unique_keys(n)
        writers = [Writer(w, self.server.socket_path, ledger, self.rng.random(), n, stop, killed, retire[w])
                   for w in range(self.args.writers)]
        for w in writers:
            w.start()
        # The kill moment is random on purpose: what is being awaited is nothing.
        time.sleep(self.rng.uniform(0.02, self.args.max_run))
        if self.rng.random() < 0.25:
            self.snapshot_kills += 1
            try:
                c = kp.KvdClient(self.server.socket_path)
                c.send(kp.OP_SNAPSHOT)  # the fork is under way when the kill lands
                time.sleep(self.rng.uniform(0, 0.01))
            except OSError:
                pass
        killed.set()
        self.crash()
        stop.set()
        for w in writers:
            w.join(timeout=30)
            for e in w.errors:
                self.fail(f"cycle {n}: {e}")
        ledger.close_cycle()

        if self.rng.random() < 0.2:
            # Kill it again while it starts up (recovery), then start for real.
            self.kills_in_recovery += 1
            self.crash_during_startup()
        try:
            self.server.start()
        except KvdError as e:
            # Refusing to recover loses every write acknowledged this cycle.
            acked = len(ledger.acked())
            self.chk.acked += acked
            self.chk.lost += acked
            self.fail(f"cycle {n}: kvd did not recover ({acked} acknowledged writes of this cycle lost): {e}")
            return False
        self.verify(n, ledger)
        if n % self.args.twice_every == 0:
            self.check_recovers_twice()

    def old_unique_keys(self, n):
        """Per writer, its unique keys written more than --unique-window cycles ago."""
        retire = [[] for _ in range(self.args.writers)]
        for k in sorted(self.chk.baseline):
            parts = k.split(b":")
            if parts[0] == b"u" and int(parts[2]) <= n - self.args.unique_window:
                wid = int(parts[1])
                if wid < len(retire):
                    retire[wid].append(k)
        return retire

    def verify(self, n, ledger):
        st, got = snapshot_state(self.server)
        self.chk.check_cycle(n, ledger, lsn_of(st, "last_lsn"), got)

    def check_recovers_twice(self):
        st1, items1 = snapshot_state(self.server)
        self.server.kill(signal.SIGKILL)
        self.server.start()
        st2, items2 = snapshot_state(self.server)
        d1, d2 = lsn_of(st1, "digest"), lsn_of(st2, "digest")
        if d1 != d2 or items1 != items2:
            self.fail(f"two recoveries differ: digest {d1:#x} vs {d2:#x}")

    def run(self):
        t0 = time.monotonic()
        self.server.start()
        try:
            for n in range(1, self.args.cycles + 1):
                if self.cycle(n) is False:
                    break
                if self.chk.errors and not self.args.keep_going:
                    break
        finally:
            self.server.terminate_and_wait()
        took = time.monotonic() - t0
        kind = self.kind()
        c = self.chk
        print(f"crash loop ({kind}, {self.args.mode} mode, seed {self.args.seed}): cycles {n}, "
              f"writes acknowledged {c.acked}, writes checked {c.checked}, writes lost {c.lost}, "
              f"acknowledged writes lost within the batch bound {c.batch_lost}, unique-key writes checked "
              f"for holes {c.unique_checked}, kills during snapshot requests {self.snapshot_kills}, kills "
              f"during start-up {self.kills_in_recovery}, failed connects {c.connect_failures}, keys at the "
              f"end {len(c.baseline)}, {took:.0f} s")
        c.check_work(n)
        if c.errors:
            print(f"FAILED: {len(c.errors)} violations; data kept in {self.work}", file=sys.stderr)
            return 1
        shutil.rmtree(self.work, ignore_errors=True)
        return 0


def arg_parser(description=__doc__):
    """The crash loop's options (tests/lazyfs/crash_loop_lazyfs.py adds its own)."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--mode", choices=("sync", "batch"), default="sync")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--power-loss", action="store_true")
    ap.add_argument("--writeback", action="store_true",
                    help="with --power-loss: unsynced pages reach the disk early, in any order (a later page may "
                         "survive an earlier one); not in the default suite: recovery (tolerate_tail) refuses a "
                         "log whose lost page is followed by valid unsynced records")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--max-run", type=float, default=0.4, help="longest writing phase per cycle, seconds")
    ap.add_argument("--twice-every", type=int, default=5, help="check double recovery every N cycles")
    ap.add_argument("--unique-window", type=int, default=10,
                    help="unique keys older than N cycles are deleted again, bounding the state")
    ap.add_argument("--min-acked-per-cycle", type=int, default=10,
                    help="fail unless at least N writes per cycle were acknowledged on average")
    ap.add_argument("--max-connect-failures", type=int, default=0,
                    help="fail if more writer connections than this failed before the kill")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep-going", action="store_true")
    return ap


def main():
    args = arg_parser().parse_args()
    if args.power_loss and not fault_env_built():
        print("SKIPPED: kvd was built without KVD_FAULT_INJECTION: no --fault-env power-loss")
        sys.exit(SKIP_EXIT)
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    sys.exit(CrashLoop(args).run())


if __name__ == "__main__":
    main()
