"""The crash loop's ledger and the checks it applies after every recovery
(tests/crash/crash_loop.py; crash_check_test.py feeds them made-up
histories to show each check can fail).

A Ledger records every write a cycle sent, in sending order, with the
highest LSN acknowledged before it was sent and, once answered, its LSN. A
Checker compares the recovered state with it; what it checks is listed in
crash_loop.py's docstring.
"""
import sys
import threading

import kvd_proto as kp


def apply_ops(state, ops):
    for k, v in ops:
        if v is None:
            state.pop(k, None)
        else:
            state[k] = v


# Errors after which a write may still be in the log (docs/durability.md,
# "A failed fdatasync is final"): its bytes may have reached the disk before
# the failure (a sync that returned before the next segment could not be
# created, say). Such a write is checked like one still in flight. NoSpace,
# by contrast, says the write was cut back and not applied.
INDETERMINATE = (kp.IO_ERROR, kp.WRITES_REFUSED)


class Write:
    """One write request: its ops and where it sits in the history we know of."""

    __slots__ = ("wid", "seq", "ops", "sent", "lower", "lsn", "acked_at", "failed")

    def __init__(self, wid, seq, ops, sent, lower):
        self.wid, self.seq, self.ops = wid, seq, ops  # seq: order on its connection
        self.sent = sent          # ledger clock when sent
        self.lower = lower        # highest LSN acknowledged before it was sent: its LSN is above
        self.lsn = None           # set when acknowledged
        self.acked_at = None      # ledger clock of the acknowledgement
        self.failed = False       # answered with an error that says it was not applied

    def value_of(self, key):
        """The value this write leaves for key (None: deleted); KeyError if it does not touch key."""
        found, v = False, None
        for k, val in self.ops:
            if k == key:
                found, v = True, val
        if not found:
            raise KeyError(key)
        return v


class Ledger:
    """Writes of one cycle, acknowledged ones also appended to a file outside the data dir."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.writes = []         # every write sent, in sending order
        self.max_durable = 0     # highest durable_lsn seen in any reply
        self.max_acked = 0       # highest LSN acknowledged so far
        self.clock = 0
        self.connect_failures = 0
        self.file = open(path, "a") if path else None

    def send(self, wid, seq, ops):
        with self.lock:
            self.clock += 1
            w = Write(wid, seq, ops, self.clock, self.max_acked)
            self.writes.append(w)
            return w

    def answer(self, w, reply):
        with self.lock:
            self.clock += 1
            self.max_durable = max(self.max_durable, reply.durable_lsn)
            if reply.status in (kp.OK, kp.NOT_FOUND):
                w.lsn, w.acked_at = reply.lsn, self.clock
                self.max_acked = max(self.max_acked, reply.lsn)
                if self.file:
                    self.file.write(f"{reply.lsn} {w.ops!r}\n")
            elif reply.status in INDETERMINATE:
                pass  # may or may not be in the log: checked like a write in flight
            else:
                w.failed = True

    def acked(self):
        return sorted((w for w in self.writes if w.lsn is not None), key=lambda w: w.lsn)

    def inflight(self):
        return [w for w in self.writes if w.lsn is None and not w.failed]

    def close_cycle(self):
        if self.file:
            self.file.flush()


class Checker:
    """Cycle-by-cycle checks and the counters of a crash loop run."""

    def __init__(self, mode="sync", batch_size=64, min_acked_per_cycle=10, max_connect_failures=0, quiet=False):
        self.mode, self.batch_size = mode, batch_size
        self.min_acked_per_cycle, self.max_connect_failures = min_acked_per_cycle, max_connect_failures
        self.quiet = quiet
        self.baseline, self.base_lsn = {}, 0
        self.acked = self.checked = self.lost = self.batch_lost = self.unique_checked = 0
        self.connect_failures = 0
        self.errors = []

    def fail(self, msg):
        self.errors.append(msg)
        if not self.quiet:
            print("VIOLATION: " + msg, file=sys.stderr, flush=True)

    def check_cycle(self, n, ledger, recovered, got):
        """Checks the state recovered after cycle n (got: key -> value; recovered:
        kvd's last LSN) against the cycle's ledger; the state becomes the baseline."""
        self.connect_failures += ledger.connect_failures
        acked = ledger.acked()
        self.acked += len(acked)
        last_acked = acked[-1].lsn if acked else 0
        late = [w for w in acked if w.lsn > recovered]
        if self.mode == "sync":
            if late:
                self.lost += len(late)
                self.fail(f"cycle {n}: {len(late)} acknowledged writes above recovered LSN {recovered} "
                          f"(last acknowledged {last_acked})")
        else:
            if recovered < ledger.max_durable:
                self.fail(f"cycle {n}: recovered LSN {recovered} < durable LSN {ledger.max_durable} "
                          "reported before the kill")
            if len(late) >= self.batch_size:
                self.fail(f"cycle {n}: {len(late)} acknowledged writes lost, batch_size {self.batch_size}")
            self.batch_lost += len(late)
        applied = [w for w in acked if w.lsn <= recovered]
        expected, last_write = dict(self.baseline), {}
        for w in applied:
            apply_ops(expected, w.ops)
            for k, _v in w.ops:
                last_write[k] = w.lsn
        inflight = ledger.inflight()
        by_key = {}
        for w in inflight:
            for k, _v in w.ops:
                by_key.setdefault(k, []).append(w)
        shown = set()  # in-flight writes whose value the state shows: they were applied
        for k in set(expected) | set(got):
            g, e = got.get(k), expected.get(k)
            if g == e:
                continue
            # Only in history order: an in-flight write whose LSN can lie above the
            # last acknowledged write to k (and above everything acknowledged before
            # it was sent), at or below the recovered LSN.
            floor = max(last_write.get(k, 0), self.base_lsn)
            fits = [w for w in by_key.get(k, ()) if w.value_of(k) == g and max(w.lower, floor) < recovered]
            if fits:
                if g is not None:  # values are unique: that very write was applied (a delete could be any)
                    shown.add(fits[0])
                continue
            if g is not None and k in expected and self.mode == "sync":
                self.lost += 1
            self.fail(f"cycle {n}: key {k!r}: recovered {g!r:.60} expected {e!r:.60}")
        self.check_no_holes(n, ledger, got)
        # The LSNs (base, recovered] not acknowledged belong to writes in flight,
        # at least to those whose values the state shows.
        unexplained = (recovered - self.base_lsn) - len(applied)
        failed = sum(1 for w in ledger.writes if w.failed)
        if unexplained > len(inflight) + failed or unexplained < len(shown):
            self.fail(f"cycle {n}: {unexplained} LSNs in ({self.base_lsn}, {recovered}] for {len(shown)} in-flight "
                      f"writes shown of {len(inflight)} in flight")
        self.checked += len(applied)
        self.baseline, self.base_lsn = got, recovered

    def check_no_holes(self, n, ledger, got):
        """No holes, judged on contents: a unique key is written once and not
        touched again in its cycle, so its presence shows whether that write was
        applied. One connection's writes are applied in order: if a later one is
        there, every earlier one is. A write acknowledged before another was
        sent comes before it in history."""
        uniques = [w for w in ledger.writes
                   if not w.failed and len(w.ops) == 1 and w.ops[0][0].startswith(b"u:") and w.ops[0][1] is not None
                   and w.ops[0][0].split(b":")[2] == str(n).encode()]
        present = {id(w) for w in uniques if got.get(w.ops[0][0]) == w.ops[0][1]}
        by_writer = {}
        for w in uniques:
            by_writer.setdefault(w.wid, []).append(w)
        for wid, ws in by_writer.items():
            ws.sort(key=lambda w: w.seq)
            last_present = max((i for i, w in enumerate(ws) if id(w) in present), default=-1)
            holes = [w for w in ws[:max(last_present, 0)] if id(w) not in present]
            if holes:
                self.fail(f"cycle {n}: writer {wid}: {len(holes)} writes missing before a later one that is "
                          f"there, e.g. {holes[0].ops[0][0]!r}")
        latest_sent = max((w.sent for w in uniques if id(w) in present), default=0)
        missing = [w for w in uniques if w.acked_at is not None and w.acked_at < latest_sent and id(w) not in present]
        if missing:
            self.fail(f"cycle {n}: {len(missing)} writes acknowledged before a write that is there are missing, "
                      f"e.g. {missing[0].ops[0][0]!r}")
        self.unique_checked += len(uniques)

    def check_work(self, cycles):
        """A run that did too little proves nothing."""
        min_acked = self.min_acked_per_cycle * cycles
        if self.acked < min_acked:
            self.fail(f"only {self.acked} writes acknowledged in {cycles} cycles (at least {min_acked} required)")
        if self.connect_failures > self.max_connect_failures:
            self.fail(f"{self.connect_failures} writer connections failed before the kill "
                      f"(at most {self.max_connect_failures} allowed)")
