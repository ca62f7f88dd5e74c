#!/usr/bin/env python3
"""Black-box crash loop against the real kvd (like RocksDB's db_crashtest).

Each cycle starts kvd, runs several writer connections (unique keys,
overwrites of a shared key set, deletes, BATCHes, pipelined bursts), records
every acknowledgement with its LSN in a ledger kept outside the data
directory, kills kvd with SIGKILL at a random moment (sometimes right after
asking for a snapshot, sometimes again while it is starting up and
recovering; small WAL segments make roll-overs frequent), restarts it and
checks the recovered state against the ledger:

  * sync mode: every acknowledged write is there (unless a later
    acknowledged write to the same key replaced it);
  * the state equals the ledger's state at the recovered LSN R >= the last
    acknowledged LSN: a prefix of history -- no holes, nothing reordered, no
    value that was never written (writes in flight at the kill may or may
    not be in it);
  * batch mode: everything up to the durable LSN of the last reply is there,
    and fewer than batch_size acknowledged writes were lost;
  * recovering twice without new writes gives the same digest and contents.

Unique keys older than --unique-window cycles are deleted again by their
writer, so the state stays bounded however many cycles a soak runs.

--power-loss runs kvd on the fault-injecting Env (test builds only) so a
SIGKILL also loses everything not fdatasynced, like a power cut.

Prints cycles, writes acknowledged, writes checked and writes lost (must be 0)
and exits non-zero on any violation.
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
from kvdtest import KvdServer  # noqa: E402

SHARED_KEYS = 64


class Ledger:
    """Acknowledged writes of one cycle, also appended to a file outside the data dir."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.acked = []          # (lsn, ops); ops = [(key, value or None)]
        self.inflight = {}       # token -> ops, sent but not answered
        self.failed = 0          # answered with an error (never applied)
        self.max_durable = 0     # highest durable_lsn seen in any reply
        self.file = open(path, "a")
        self.next_token = 0

    def send(self, ops):
        with self.lock:
            self.next_token += 1
            self.inflight[self.next_token] = ops
            return self.next_token

    def answer(self, token, reply):
        with self.lock:
            ops = self.inflight.pop(token)
            self.max_durable = max(self.max_durable, reply.durable_lsn)
            if reply.status in (kp.OK, kp.NOT_FOUND):
                self.acked.append((reply.lsn, ops))
                self.file.write(f"{reply.lsn} {ops!r}\n")
            else:
                self.failed += 1

    def close_cycle(self):
        self.file.flush()


class Writer(threading.Thread):
    def __init__(self, wid, sock, ledger, rng_seed, cycle, stop, retire):
        super().__init__(daemon=True)
        self.wid, self.sock, self.ledger, self.cycle, self.stop = wid, sock, ledger, cycle, stop
        self.rng = random.Random(rng_seed)
        self.seq = 0
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
            return
        try:
            while not self.stop.is_set():
                depth = 1 if self.rng.random() < 0.6 else self.rng.randrange(2, 16)  # pipelined bursts
                reqs, tokens = [], []
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
                    tokens.append(self.ledger.send(ops))
                c.send_many(reqs)
                for t in tokens:
                    self.ledger.answer(t, c.recv())
        except (OSError, kp.KvdConnectionClosed):
            pass  # kvd was killed: whatever is in flight stays unknown
        finally:
            c.close()


def apply_ops(state, ops):
    for k, v in ops:
        if v is None:
            state.pop(k, None)
        else:
            state[k] = v


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
                                storage={"segment_size": "64KiB"},
                                snapshot={"wal_bytes": "512KiB"},
                                durability=durability,
                                extra_args=["--fault-env", "power-loss"] if args.power_loss else [])
        self.baseline, self.base_lsn = {}, 0
        self.acked = self.checked = self.lost = self.kills_in_recovery = self.snapshot_kills = 0
        self.errors = []

    def fail(self, msg):
        self.errors.append(msg)
        print("VIOLATION: " + msg, file=sys.stderr, flush=True)

    def cycle(self, n):
        ledger = Ledger(self.ledger_path)
        stop = threading.Event()
        retire = self.old_unique_keys(n)
        writers = [Writer(w, self.server.socket_path, ledger, self.rng.random(), n, stop, retire[w])
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
        self.server.kill(signal.SIGKILL)
        stop.set()
        for w in writers:
            w.join(timeout=30)
        ledger.close_cycle()

        if self.rng.random() < 0.2:
            # Kill it again while it starts up (recovery), then start for real.
            self.kills_in_recovery += 1
            self.server.spawn_and_kill(self.rng.uniform(0, 0.02))
        self.server.start()
        self.verify(n, ledger)
        if n % self.args.twice_every == 0:
            self.check_recovers_twice()

    def old_unique_keys(self, n):
        """Per writer, its unique keys written more than --unique-window cycles ago."""
        retire = [[] for _ in range(self.args.writers)]
        for k in sorted(self.baseline):
            parts = k.split(b":")
            if parts[0] == b"u" and int(parts[2]) <= n - self.args.unique_window:
                wid = int(parts[1])
                if wid < len(retire):
                    retire[wid].append(k)
        return retire

    def verify(self, n, ledger):
        st, got = snapshot_state(self.server)
        recovered = lsn_of(st, "last_lsn")
        acked = sorted(ledger.acked)
        self.acked += len(acked)
        last_acked = acked[-1][0] if acked else 0
        late = [a for a in acked if a[0] > recovered]
        if self.args.mode == "sync":
            if late:
                self.lost += len(late)
                self.fail(f"cycle {n}: {len(late)} acknowledged writes above recovered LSN {recovered} "
                          f"(last acknowledged {last_acked})")
        else:
            if recovered < ledger.max_durable:
                self.fail(f"cycle {n}: recovered LSN {recovered} < durable LSN {ledger.max_durable} "
                          "reported before the kill")
            if len(late) >= self.args.batch_size:
                self.fail(f"cycle {n}: {len(late)} acknowledged writes lost, batch_size {self.args.batch_size}")
        expected = dict(self.baseline)
        for lsn, ops in acked:
            if lsn <= recovered:
                apply_ops(expected, ops)
        maybe = {}
        for ops in ledger.inflight.values():
            for k, v in ops:
                maybe.setdefault(k, set()).add(v)
        for k in set(expected) | set(got):
            g, e = got.get(k), expected.get(k)
            if g == e or g in maybe.get(k, ()):
                continue
            if g is not None and k in expected and self.args.mode == "sync":
                self.lost += 1
            self.fail(f"cycle {n}: key {k!r}: recovered {g!r:.60} expected {e!r:.60}")
        # No holes: LSNs (base, recovered] not acknowledged must be writes in flight or failed.
        unexplained = (recovered - self.base_lsn) - sum(1 for a in acked if a[0] <= recovered)
        if unexplained > len(ledger.inflight) + ledger.failed:
            self.fail(f"cycle {n}: {unexplained} LSNs in ({self.base_lsn}, {recovered}] match no write")
        self.checked += sum(1 for a in acked if a[0] <= recovered)
        self.baseline, self.base_lsn = got, recovered

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
                self.cycle(n)
                if self.errors and not self.args.keep_going:
                    break
        finally:
            self.server.terminate_and_wait()
        took = time.monotonic() - t0
        kind = "power-loss" if self.args.power_loss else "process-kill"
        print(f"crash loop ({kind}, {self.args.mode} mode, seed {self.args.seed}): cycles {n}, "
              f"writes acknowledged {self.acked}, writes checked {self.checked}, writes lost {self.lost}, "
              f"kills during snapshot requests {self.snapshot_kills}, kills during start-up "
              f"{self.kills_in_recovery}, keys at the end {len(self.baseline)}, {took:.0f} s")
        if self.errors:
            print(f"FAILED: {len(self.errors)} violations; data kept in {self.work}", file=sys.stderr)
            return 1
        shutil.rmtree(self.work, ignore_errors=True)
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--mode", choices=("sync", "batch"), default="sync")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--power-loss", action="store_true")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--max-run", type=float, default=0.4, help="longest writing phase per cycle, seconds")
    ap.add_argument("--twice-every", type=int, default=5, help="check double recovery every N cycles")
    ap.add_argument("--unique-window", type=int, default=10,
                    help="unique keys older than N cycles are deleted again, bounding the state")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep-going", action="store_true")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    sys.exit(CrashLoop(args).run())


if __name__ == "__main__":
    main()
