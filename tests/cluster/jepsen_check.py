"""The fault tests' checker (tests/cluster/jepsen_run.py records the
history; jepsen_check_test.py feeds it made-up histories that must pass and
must fail). Python 3 standard library only.

A history is a list of events, each a dict:

    {"process": 3, "type": "invoke", "f": "write", "key": "k1", "value": "v3-17", "time": 12.5}
    {"process": 3, "type": "ok",     "f": "write", "key": "k1", "value": "v3-17", "time": 12.6,
     "node": "k0", "epoch": 7, "lsn": 1042}

One process has at most one operation open: its completion (ok / fail /
info) is its next event. `fail` means the operation certainly did not take
effect (kvd said NotPrimary, Fenced, NoSpace...); `info` means it may or may
not have (a timeout, a dropped connection, a sync gate timeout); an invoke
left without completion counts as info. Reads carry the value read (None:
not found) and "primary": True when the node said it was the primary in the
same epoch right before and after the read (jepsen_run brackets it with
STATUS); only such reads are checked for linearizability. "epoch" is the
epoch the node reported around an acknowledged write, or None if unknown.

`final` is what every node holds after healing:

    {"k0": {"items": {"k1": "v3-17", ...}, "digest": 0x.., "role": "primary"}, "k1": {...}, ...}

check(history, final) proves, over the whole history:

  1. every acknowledged write is present on every node after healing, or
     overwritten by a write that may come after it (not one that completed
     before it was invoked, nor one with a smaller LSN);
  2. no two primaries acknowledged writes in overlapping epochs: one node per
     epoch, the LSNs acknowledged in each epoch lie above those of every
     older epoch, no LSN acknowledged twice, and no write acknowledged in an
     older epoch was invoked after a write of a newer epoch was acknowledged;
  3. single-key reads on the primary are linearizable: a register per key
     (values are unique), searched as Wing & Gong / Lowe do, with memoised
     (linearized set, value) configurations; info writes may or may not take
     effect (one nobody observed is left out: leaving it out can only help);
     the state after healing is a final read of every key;
  4. every node holds the same items and digest.
"""
import math

INF = math.inf


class Op:
    __slots__ = ("id", "process", "f", "key", "value", "start", "end", "status", "node", "epoch", "lsn",
                 "primary")

    def __init__(self, oid, inv):
        self.id, self.process, self.f = oid, inv["process"], inv["f"]
        self.key, self.value, self.start = inv["key"], inv.get("value"), inv["time"]
        self.end, self.status = INF, "info"
        self.node = self.epoch = self.lsn = None
        self.primary = False

    def complete(self, ev):
        self.status = ev["type"]
        self.end = ev["time"] if self.status != "info" else INF
        if self.f == "read" and self.status == "ok":
            self.value = ev.get("value")
        self.node, self.epoch, self.lsn = ev.get("node"), ev.get("epoch"), ev.get("lsn")
        self.primary = bool(ev.get("primary"))

    def __repr__(self):
        v = self.value if not isinstance(self.value, str) or len(self.value) <= 24 else self.value[:24] + "..."
        return "%s %s %r=%r by p%s [%.3f, %.3f] node=%s epoch=%s lsn=%s%s" % (
            self.status, self.f, self.key, v, self.process, self.start, self.end, self.node, self.epoch,
            self.lsn, "" if self.f == "write" else " as-primary" if self.primary else " not-as-primary")


def pair(history):
    """Operations from invoke/completion events, in invocation order."""
    ops, open_ = [], {}
    for ev in history:
        p = ev["process"]
        if ev["type"] == "invoke":
            if p in open_:
                raise ValueError("process %r invoked %r with an operation open" % (p, ev))
            op = Op(len(ops), ev)
            ops.append(op)
            open_[p] = op
        else:
            op = open_.pop(p, None)
            if op is None:
                raise ValueError("completion without invoke: %r" % (ev,))
            if (op.f, op.key) != (ev["f"], ev["key"]):
                raise ValueError("completion %r does not match %r" % (ev, op))
            op.complete(ev)
    return ops


class Result:
    def __init__(self):
        self.errors = []
        self.acked_writes = 0
        self.lost_writes = 0
        self.lost = []  # the acknowledged writes found lost (Op)
        self.reads_checked = 0
        self.keys_checked = 0
        self.unacked_reads = 0  # reads of never-acknowledged writes (left out with unacked_reads)
        self.unacked_reads_allowed = False

    @property
    def ok(self):
        return not self.errors

    def fail(self, kind, msg):
        self.errors.append((kind, msg))

    def kinds(self):
        return sorted({k for k, _ in self.errors})

    def summary(self):
        out = ("acknowledged writes %d, lost %d, linearizable reads checked %d over %d keys, violations %d"
               % (self.acked_writes, self.lost_writes, self.reads_checked, self.keys_checked, len(self.errors)))
        if self.unacked_reads_allowed:
            out += ("; %d primary reads returned a write never acknowledged (left unchecked: unacked_reads)"
                    % self.unacked_reads)
        return out


def check(history, final, final_primary=None, unacked_reads=False):
    """unacked_reads: a read on the primary may return a write not yet
    acknowledged (docs/durability.md: a write is visible once durable locally,
    before the sync replica confirmed it), which a failover may then lose.
    Such reads (of writes that never got an OK) are counted and left out of
    the register check, and prove nothing about their write; every other read
    is checked as before. Off by default: the issue asks for linearizable
    reads."""
    ops = pair(history)
    res = Result()
    res.unacked_reads_allowed = unacked_reads
    writes = [o for o in ops if o.f == "write"]
    res.acked_writes = sum(1 for o in writes if o.status == "ok")
    by_value = {}
    for w in writes:
        if (w.key, w.value) in by_value:
            raise ValueError("write values must be unique per key: %r" % (w,))
        by_value[(w.key, w.value)] = w
    check_reads_name_writes(ops, final, by_value, res)
    check_lost(writes, final, by_value, res)
    check_epochs(ops, res)
    check_linearizable(ops, final, final_primary, res, by_value if unacked_reads else None)
    check_converged(final, res)
    return res


def check_reads_name_writes(ops, final, by_value, res):
    """A value read (or found after healing) was written by a write that did
    not fail."""
    seen = [(o.key, o.value, "read by process %s" % o.process) for o in ops
            if o.f == "read" and o.status == "ok" and o.value is not None]
    for node, st in final.items():
        seen.extend((k, v, "held by node %s" % node) for k, v in st["items"].items())
    for key, value, where in seen:
        w = by_value.get((key, value))
        if w is None:
            res.fail("phantom", "%r=%r %s was never written" % (key, value, where))
        elif w.status == "fail":
            res.fail("failed-write-visible", "%r=%r %s comes from a write that failed: %r" % (key, value, where, w))


def check_lost(writes, final, by_value, res):
    lost = set()
    for node, st in sorted(final.items()):
        items = st["items"]
        for w in writes:
            if w.status != "ok":
                continue
            v = items.get(w.key)
            if v == w.value:
                continue
            f = by_value.get((w.key, v)) if v is not None else None
            why = None
            if f is None:
                why = "missing" if v is None else "replaced by unknown %r" % (v,)
            elif f.status == "fail":
                why = "replaced by a failed write"
            elif f.end < w.start:
                why = "replaced by %r, which completed before it was invoked" % (f,)
            elif f.lsn is not None and w.lsn is not None and f.status == "ok" and f.lsn < w.lsn:
                why = "replaced by %r with a smaller LSN" % (f,)
            if why:
                lost.add(w.id)
                res.fail("lost-write", "node %s: acknowledged %r: %s" % (node, w, why))
        # By the log, not only by the value (a hot key's later write hides a
        # loss): the epoch that owns an acknowledged write's LSN in the node's
        # epoch history must be the one it was acknowledged in.
        hist = sorted(st.get("epoch_history") or [], key=lambda e: e["first_lsn"])
        if not hist:
            continue
        for w in writes:
            if w.status != "ok" or w.epoch is None or w.lsn is None or w.id in lost:
                continue
            owner = [e["epoch"] for e in hist if e["first_lsn"] <= w.lsn]
            if w.lsn > st.get("last_lsn", w.lsn) or not owner or owner[-1] != w.epoch:
                lost.add(w.id)
                res.fail("lost-write", "node %s: acknowledged %r: its LSN belongs to epoch %s in the node's history "
                         "(last LSN %s): cut" % (node, w, owner[-1] if owner else None, st.get("last_lsn")))
    res.lost_writes = len(lost)
    res.lost = [w for w in writes if w.id in lost]


def check_epochs(ops, res):
    acked = [o for o in ops if o.f == "write" and o.status == "ok"]
    by_lsn = {}
    for w in acked:
        if w.lsn is None:
            continue
        if w.lsn in by_lsn:
            res.fail("lsn-twice", "LSN %d acknowledged twice: %r and %r" % (w.lsn, by_lsn[w.lsn], w))
        by_lsn[w.lsn] = w
    # Who acted as primary in each epoch: acknowledged writes and reads the
    # node said it answered as primary.
    nodes, lsns = {}, {}
    for o in ops:
        if o.status != "ok" or o.epoch is None or (o.f == "read" and not o.primary):
            continue
        nodes.setdefault(o.epoch, {}).setdefault(o.node, o)
        if o.f == "write" and o.lsn is not None:
            lo, hi = lsns.get(o.epoch, (o, o))
            lsns[o.epoch] = (o if o.lsn < lo.lsn else lo, o if o.lsn > hi.lsn else hi)
    for e, who in sorted(nodes.items()):
        if len(who) > 1:
            res.fail("two-primaries", "epoch %s: nodes %s all acted as primary, e.g. %s"
                     % (e, sorted(who), "; ".join(repr(o) for o in who.values())))
    epochs = sorted(lsns)
    for i, e in enumerate(epochs):
        for later in epochs[i + 1:]:
            hi, lo = lsns[e][1], lsns[later][0]
            if hi.lsn >= lo.lsn:
                res.fail("epochs-overlap", "epoch %s acknowledged LSN %d (%r) at or above LSN %d of newer epoch "
                         "%s (%r)" % (e, hi.lsn, hi, lo.lsn, later, lo))
    # Real time: once a newer epoch acknowledged, an older one may not take new writes.
    first_ack = {}
    for w in acked:
        if w.epoch is not None:
            first_ack[w.epoch] = min(first_ack.get(w.epoch, INF), w.end)
    for w in acked:
        if w.epoch is None:
            continue
        newer = [(t, e) for e, t in first_ack.items() if e > w.epoch and t < w.start]
        if newer:
            t, e = min(newer)
            res.fail("stale-primary-ack", "%r was acknowledged in epoch %s although epoch %s acknowledged a write at "
                     "%s, before it was invoked" % (w, w.epoch, e, t))


def check_linearizable(ops, final, final_primary, res, unacked_by_value=None):
    def unacked(o):  # with unacked_reads: a read of a write that never got an OK
        if unacked_by_value is None or o.value is None:
            return False
        w = unacked_by_value.get((o.key, o.value))
        return w is not None and w.status != "ok"

    # Evidence that an info write took effect: a checked read or the final
    # state. A read the node did not answer as primary (a deposed primary's
    # own divergent tail, say) proves nothing.
    reads = [o for o in ops if o.f == "read" and o.status == "ok" and o.primary]
    res.unacked_reads = sum(1 for o in reads if unacked(o))
    reads = [o for o in reads if not unacked(o)]
    observed = {(o.key, o.value) for o in reads}
    for st in final.values():
        observed.update(st["items"].items())
    per_key = {}
    for o in ops:
        if o.f == "write" and (o.status == "ok" or (o.status == "info" and (o.key, o.value) in observed)):
            per_key.setdefault(o.key, []).append(o)
    for o in reads:
        per_key.setdefault(o.key, []).append(o)
        res.reads_checked += 1
    if final:
        node = final_primary if final_primary is not None else sorted(final)[0]
        items = final[node]["items"]
        t_end = max([o.start for o in ops] + [o.end for o in ops if o.end != INF] + [0]) + 1
        keys = set(per_key) | set(items)
        for k in keys:
            r = Op(-1, {"process": "final", "f": "read", "key": k, "time": t_end})
            r.complete({"type": "ok", "time": t_end, "value": items.get(k), "primary": True, "node": node})
            per_key.setdefault(k, []).append(r)
    for k in sorted(per_key, key=str):
        res.keys_checked += 1
        if register_linearizable(per_key[k]) is not None:
            bad, around = first_violation(per_key[k])
            res.fail("not-linearizable", "key %r: no linearization once %r is invoked (%d ops on the key); "
                     "the operations open or completed within 1 s before it:\n    %s"
                     % (k, bad, len(per_key[k]), "\n    ".join(repr(o) for o in around)))


def first_violation(ops):
    """The operation whose invocation makes the history non-linearizable (the
    shortest failing prefix in invocation order), and those around it."""
    ops = sorted(ops, key=lambda o: o.start)
    lo, hi = 0, len(ops) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if register_linearizable(ops[:mid + 1]) is None:
            lo = mid + 1
        else:
            hi = mid
    bad = ops[lo]
    around = [o for o in ops[:lo] if o.end > bad.start - 1.0][-12:]
    return bad, around


class _Entry:
    __slots__ = ("op", "bit", "is_call", "match", "prev", "next")

    def __init__(self, op, bit, is_call):
        self.op, self.bit, self.is_call = op, bit, is_call
        self.match = self.prev = self.next = None


def register_linearizable(ops, initial=None):
    """None if ops (one key: writes, reads) have a linearization of a register
    starting at `initial`; else the operation the search could not place.
    Ops with end == INF (info writes) have no return: they may take effect
    any time after their start, or never."""
    events = []
    for i, o in enumerate(ops):
        events.append((o.start, 0, i, _Entry(o, i, True)))
        if o.end != INF:
            events.append((o.end, 1, i, _Entry(o, i, False)))
    # At equal times calls come first: operations that touch are concurrent.
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    calls = {}
    head = _Entry(None, -1, False)
    prev = head
    for _, _, i, ent in events:
        if ent.is_call:
            calls[i] = ent
        else:
            calls[i].match = ent
        prev.next, ent.prev = ent, prev
        prev = ent
    returns_left = sum(1 for e in events if not e[3].is_call)

    def lift(ent):
        ent.prev.next = ent.next
        if ent.next:
            ent.next.prev = ent.prev
        m = ent.match
        if m is not None:
            m.prev.next = m.next
            if m.next:
                m.next.prev = m.prev

    def unlift(ent):
        m = ent.match
        if m is not None:
            m.prev.next = m
            if m.next:
                m.next.prev = m
        ent.prev.next = ent
        if ent.next:
            ent.next.prev = ent

    state, linearized = initial, 0
    stack, cache = [], set()
    entry = head.next
    stuck = None
    while returns_left:
        if entry is not None and entry.is_call:
            op = entry.op
            if op.f == "write" or op.value == state:
                new_state = op.value if op.f == "write" else state
                new_lin = linearized | (1 << entry.bit)
                if (new_lin, new_state) not in cache:
                    cache.add((new_lin, new_state))
                    stack.append((entry, state))
                    state, linearized = new_state, new_lin
                    lift(entry)
                    if entry.match is not None:
                        returns_left -= 1
                    entry = head.next
                    continue
            entry = entry.next
            continue
        # A return reached (or the end) with its operation not linearized: backtrack.
        if stuck is None and entry is not None:
            stuck = entry.op
        if not stack:
            return stuck if stuck is not None else ops[0]
        entry, state = stack.pop()
        linearized &= ~(1 << entry.bit)
        if entry.match is not None:
            returns_left += 1
        unlift(entry)
        entry = entry.next
    return None


def check_converged(final, res):
    nodes = sorted(final)
    if not nodes:
        return
    ref = nodes[0]
    for n in nodes[1:]:
        a, b = final[ref]["items"], final[n]["items"]
        if a != b:
            diff = sorted((k for k in set(a) | set(b) if a.get(k) != b.get(k)), key=str)
            res.fail("diverged", "nodes %s and %s differ on %d keys, e.g. %r: %r vs %r"
                     % (ref, n, len(diff), diff[0], a.get(diff[0]), b.get(diff[0])))
        da, db = final[ref].get("digest"), final[n].get("digest")
        if da is not None and db is not None and da != db:
            res.fail("diverged", "nodes %s and %s: digest %#x vs %#x" % (ref, n, da, db))
