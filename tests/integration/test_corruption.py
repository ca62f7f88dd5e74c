"""Corrupted files at the daemon level (issue 4, point 3).

One kvd builds real data once (64 KiB segments, several of them, two
snapshots), recording every acknowledged write with its LSN in a ledger. Then,
for each case, a fresh copy of that data directory is damaged between runs:
the last segment truncated at every offset inside its last record (and at a
few places before: a preallocated segment cut short is corruption, not a torn
tail), a byte flipped at every offset of the last record, bytes flipped at
random offsets elsewhere (mid-log records, zero padding, segment headers: a
segment with a damaged header is a stray file, refused in every mode) and
snapshots flipped, truncated, zeroed or deleted.

For each damaged copy, before kvd starts:
  * `kvd --check-data` and `--check-data --json` change no byte of the data
    directory, report the last good LSN of every segment, classify the damage
    (torn tail / corruption) at the right offset, and exit non-zero exactly
    when data would be lost.
Then kvd either
  * starts and serves exactly the ledger's state at some LSN L (so never a
    value that was not written), with L = everything acknowledged before the
    damage point, and its log says what it dropped and where it kept the bad
    bytes (a .broken file that exists), or
  * refuses to start with a message naming the file, the offset and the
    recovery_mode that would accept it; for WAL damage the test then starts it
    in that mode and checks the prefix it serves.
Whether kvd served or refused must match what --check-data predicted.

Runs in well under 3 minutes on a Debug+ASan build; prints the number of
corruption cases tried. KVD_TEST_SEED reproduces the random offsets.
"""

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdError, KvdServer, KvdTestCase, TIMEOUT  # noqa: E402
import kvd_proto  # noqa: E402

SEGMENT_HEADER = 32
# By segment format version (docs/wal_format.md §3): v1 masked crc, payload
# length, type, lsn; v2 adds flags and epoch.
RECORD_HEADERS = {1: struct.Struct("<IIBQ"), 2: struct.Struct("<IIBBQQ")}
WAL_MAGIC = b"kvdWAL\r\n"
CASES_TRIED = [0]
OUTCOMES = {}  # "served (tolerate_tail)", "refused", "served (point_in_time)", ... -> count


def count_outcome(what):
    OUTCOMES[what] = OUTCOMES.get(what, 0) + 1


# ---- what was written ----------------------------------------------------------

class Ledger:
    """Every acknowledged write: lsn -> [(key, value or None for a delete)]."""

    def __init__(self):
        self.ops = {}

    def add(self, lsn, ops):
        assert lsn not in self.ops, "LSN %d acknowledged twice" % lsn
        self.ops[lsn] = ops

    @property
    def last_lsn(self):
        return max(self.ops)

    def state_at(self, lsn):
        state = {}
        for l in sorted(self.ops):
            if l > lsn:
                break
            for key, value in self.ops[l]:
                if value is None:
                    state.pop(key, None)
                else:
                    state[key] = value
        return state


def parse_segment(data):
    """[(offset, size, lsn)] of the records of an undamaged segment."""
    assert data[:8] == WAL_MAGIC, "not a WAL segment"
    (version,) = struct.unpack_from("<I", data, 8)
    header = RECORD_HEADERS[version]
    records, pos = [], SEGMENT_HEADER
    while pos + header.size <= len(data):
        if data[pos:pos + header.size] == bytes(header.size):
            break
        fields = header.unpack_from(data, pos)
        length, lsn = fields[1], fields[3] if version == 1 else fields[4]
        size = header.size + length
        assert pos + size <= len(data), "record at %d runs past the end" % pos
        records.append((pos, size, lsn))
        pos += size
    return records


def tree_digest(root):
    """Hash of every name and byte under root (LOCK files excluded: kvd may create them)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name == "LOCK":
                continue
            path = os.path.join(dirpath, name)
            h.update(os.path.relpath(path, root).encode() + b"\0")
            with open(path, "rb") as f:
                h.update(f.read())
            h.update(b"\0")
    return h.hexdigest()


def flip(path, offset, xor):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ xor]))


def truncate(path, size):
    os.truncate(path, size)


def zero_range(path, offset, length):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(bytes(length))


class Case:
    """One damaged copy.

    floor: the LSN kvd must serve exactly if it starts (everything acknowledged
      before the damage point; nothing after it can be replayed).
    expect: "serve", "refuse" or None (either is acceptable).
    lost: whether recovery would lose data (--check-data's exit code).
    segment/offset/kind: where the WAL damage is and what it is (None: unknown).
    dropped: exact bytes a torn-tail cut drops (None: not checked).
    """

    def __init__(self, name, mutate, floor, expect, lost, segment=None, offset=None, kind=None, dropped=None,
                 snapshot=None, retry=True, stray=False):
        self.name, self.mutate, self.floor, self.expect, self.lost = name, mutate, floor, expect, lost
        self.segment, self.offset, self.kind, self.dropped, self.snapshot = segment, offset, kind, dropped, snapshot
        # After a refusal, start again in the recovery_mode the message names.
        self.retry = retry
        # The segment is no longer one kvd wrote (its header is damaged): no
        # mode reads it; kvd refuses, naming it, until it is moved away.
        self.stray = stray


# ---- the test ------------------------------------------------------------------

class Corruption(KvdTestCase):
    """One test method builds the data once and runs every case on copies."""

    def prepare(self, kvd):
        rng, ledger = self.rng, Ledger()
        shared = [b"shared-%02d" % i for i in range(40)]
        counter = [0]

        def value():
            counter[0] += 1
            return b"v%06d-" % counter[0] + bytes(rng.randrange(97, 123) for _ in range(rng.randrange(120, 260)))

        def write_many(n, c):
            reqs, ops = [], []
            for i in range(n):
                r = rng.random()
                if r < 0.55:
                    k = b"unique-%06d" % (len(ledger.ops) + len(ops))
                    v = value()
                    reqs.append((kvd_proto.OP_PUT, kvd_proto.put_payload(k, v)))
                    ops.append([(k, v)])
                elif r < 0.8:
                    k, v = rng.choice(shared), value()
                    reqs.append((kvd_proto.OP_PUT, kvd_proto.put_payload(k, v)))
                    ops.append([(k, v)])
                elif r < 0.9:
                    k = rng.choice(shared)
                    reqs.append((kvd_proto.OP_DEL, k))
                    ops.append([(k, None)])
                else:
                    batch = [("put", rng.choice(shared), value()) for _ in range(3)] + [("del", rng.choice(shared))]
                    reqs.append((kvd_proto.OP_BATCH, kvd_proto.batch_payload(batch)))
                    ops.append([(op[1], op[2] if op[0] == "put" else None) for op in batch])
            # Pipelined in chunks: group commit, and every reply carries its LSN.
            for start in range(0, len(reqs), 64):
                ids = c.send_many(reqs[start:start + 64])
                for j, rid in enumerate(ids):
                    reply = c.recv()
                    self.assertEqual(reply.request_id, rid)
                    self.assertIn(reply.status, (kvd_proto.OK, kvd_proto.NOT_FOUND), reply)
                    self.assertGreaterEqual(reply.durable_lsn, reply.lsn, "sync mode acknowledged before durable")
                    ledger.add(reply.lsn, ops[start + j])

        with kvd.client() as c:
            write_many(330, c)
            snap1 = c.snapshot().check().lsn
            write_many(40, c)
            snap2 = c.snapshot().check().lsn
            write_many(900, c)
            # A small last record, so every offset of it is a case.
            r = c.put(b"last-key", b"last-value-0123").check()
            ledger.add(r.lsn, [(b"last-key", b"last-value-0123")])
        self.assertEqual(kvd.terminate_and_wait(), 0, kvd.log_tail())
        return ledger, snap1, snap2

    def test_damaged_copies(self):
        kvd = self.server(storage={"segment_size": "64KiB"})
        ledger, snap1, snap2 = self.prepare(kvd)
        self.kvd, self.ledger = kvd, ledger
        data_dir = os.path.dirname(kvd.wal_path)
        self.pristine = os.path.join(self.tmp, "pristine")
        shutil.copytree(data_dir, self.pristine)

        segs = kvd.wal_segments()
        snaps = kvd.snapshots()
        self.assertGreaterEqual(len(segs), 4, "want several segments: %r" % segs)
        self.assertEqual([kvdtest.snapshot_lsn(s) for s in snaps], [snap1, snap2], "both snapshots kept")
        self.snap_lsn = snap2
        # The older snapshot is a usable fallback only if the WAL reaches back to it.
        fallback_ok = kvdtest.segment_first_lsn(segs[0]) <= snap1 + 1
        self.records = {}
        for s in segs:
            with open(os.path.join(kvd.wal_path, s), "rb") as f:
                self.records[s] = parse_segment(f.read())
        last_seg = segs[-1]
        all_lsns = [r[2] for s in segs for r in self.records[s]]
        self.assertEqual(all_lsns, list(range(all_lsns[0], ledger.last_lsn + 1)), "pristine WAL is gap-free")
        self.assertEqual(os.path.getsize(os.path.join(kvd.wal_path, last_seg)),
                         sum(r[1] for r in self.records[last_seg]) + SEGMENT_HEADER,
                         "Close() trims the active segment to its data")

        cases = self.build_cases(segs, snaps, fallback_ok)
        self.assertGreaterEqual(len(cases), 40, "too few corruption cases built to prove anything")
        self.work = os.path.join(self.tmp, "work")
        # Sanitizer builds try the first case of each kind and every STRIDE-th
        # of the rest: ASan makes each kvd start ~4x slower, and the
        # optimised build of the same suite tries them all.
        stride = int(os.environ.get("KVD_CORRUPTION_STRIDE", "1"))
        if stride > 1:
            kinds = set()
            picked = []
            for i, case in enumerate(cases):
                kind = re.split(r"[:0-9(]", case.name)[0].strip()
                if kind not in kinds or i % stride == 0:
                    picked.append(case)
                kinds.add(kind)
            cases = picked
        failures = []
        for case in cases:
            try:
                self.run_case(case)
            except AssertionError as e:
                failures.append("%s: %s" % (case.name, e))
                if len(failures) >= 10:
                    break
            CASES_TRIED[0] += 1
        print("\ncorruption cases tried: %d%s (seed %d): %s" % (
            CASES_TRIED[0], " (the first of each kind and every %dth)" % stride if stride > 1 else "", self.seed, ", ".join("%s %d" % kv for kv in sorted(OUTCOMES.items()))))
        if failures:
            self.fail("%d of %d corruption cases failed:\n%s" % (len(failures), CASES_TRIED[0],
                                                                  "\n\n".join(failures[:10])))

    # -- where damage lands ---------------------------------------------------------------

    def floor_for(self, segs, seg_index, offset):
        """LSN of the last record that ends at or before (segment, offset), and
        of every earlier segment; the snapshot covers what was deleted."""
        floor = 0
        for s in segs[:seg_index]:
            if self.records[s]:
                floor = self.records[s][-1][2]
        for off, size, lsn in self.records[segs[seg_index]]:
            if off + size <= offset:
                floor = lsn
        return max(floor, self.snap_lsn)

    def record_at(self, seg, offset):
        for rec in self.records[seg]:
            if rec[0] <= offset < rec[0] + rec[1]:
                return rec
        return None

    def build_cases(self, segs, snaps, fallback_ok):
        rng, cases = self.rng, []
        wal = lambda s: os.path.join("wal", s)  # noqa: E731
        last = segs[-1]
        li = len(segs) - 1
        with open(os.path.join(self.pristine, "wal", last), "rb") as f:
            last_data = f.read()
        rec_off, rec_size, rec_lsn = self.records[last][-1]

        def torn(name, seg_i, cut_at):
            """Last segment truncated to cut_at bytes."""
            seg = segs[seg_i]
            floor = self.floor_for(segs, seg_i, cut_at)
            rec = self.record_at(seg, cut_at)
            if cut_at < SEGMENT_HEADER:
                # A missing/short header in the last segment is a torn tail; an
                # empty file has no bytes to lose.
                return Case(name, lambda d: truncate(os.path.join(d, wal(seg)), cut_at), floor, "serve",
                            lost=cut_at > 0, segment=seg, offset=0 if cut_at else None,
                            kind="torn_tail" if cut_at else None)
            tail = last_data[rec[0]:cut_at] if rec else b""
            partial = tail.rstrip(b"\0")
            # The last segment was trimmed by a clean stop, but it is marked
            # preallocated: cut inside a record it was shrunk, which a crash
            # does not do: corruption, refused; point_in_time cuts it.
            return Case(name, lambda d: truncate(os.path.join(d, wal(seg)), cut_at), floor,
                        "refuse" if partial else "serve",
                        lost=bool(partial), segment=seg, offset=rec[0] if partial else None,
                        kind="corruption" if partial else "none", dropped=len(partial) if partial else 0)

        # 1. Truncate the last segment at every offset inside its last record.
        for o in range(rec_off, rec_off + rec_size):
            cases.append(torn("truncate %s at %d (last record %d+%d)" % (last, o, rec_off, rec_size), li, o))
        # ... and a few before: record boundaries, inside earlier records, the header.
        earlier = self.records[last][:-1]
        picks = set([0, 8, SEGMENT_HEADER - 1, SEGMENT_HEADER])
        for rec in rng.sample(earlier, min(4, len(earlier))):
            picks.add(rec[0])
            picks.add(rec[0] + rng.randrange(1, rec[1]))
        for o in sorted(picks):
            cases.append(torn("truncate %s at %d (before the last record)" % (last, o), li, o))

        def flipped(name, seg_i, o, expect, kind, kind_of=None):
            seg = segs[seg_i]
            xor = rng.randrange(1, 256)
            if kind_of is not None:
                expect, kind = kind_of(o, xor)
            rec = self.record_at(seg, o)
            floor = self.floor_for(segs, seg_i, o)
            offset = rec[0] if rec else (0 if o < SEGMENT_HEADER else None)
            return Case("%s: %s offset %d ^= %#04x" % (name, seg, o, xor),
                        lambda d: flip(os.path.join(d, wal(seg)), o, xor), floor, expect, lost=True,
                        segment=seg, offset=offset, kind=kind)

        # 2. Flip a byte at every offset of the last record: a torn tail, cut;
        #    unless the length now runs past the end of this trimmed (shorter
        #    than preallocated) segment: shrunk, corruption.
        def last_record_flip(o, xor):
            if rec_off + 4 <= o < rec_off + 8:
                length = bytearray(last_data[rec_off + 4:rec_off + 8])
                length[o - rec_off - 4] ^= xor
                if struct.unpack("<I", bytes(length))[0] > len(last_data) - rec_off - RECORD_HEADERS[2].size:
                    return "refuse", "corruption"
            return "serve", "torn_tail"

        for o in range(rec_off, rec_off + rec_size):
            cases.append(flipped("flip in the last record", li, o, None, None, kind_of=last_record_flip))
        # 3. Earlier records of the last segment: valid records follow, so corruption.
        for rec in rng.sample(earlier, min(6, len(earlier))):
            cases.append(flipped("flip mid last segment", li, rec[0] + rng.randrange(rec[1]), "refuse", "corruption"))
        # 4. Random offsets in earlier segments (records, zero padding): corruption.
        for _ in range(40):
            i = rng.randrange(li)
            size = os.path.getsize(os.path.join(self.pristine, "wal", segs[i]))
            cases.append(flipped("flip mid-log", i, rng.randrange(SEGMENT_HEADER, size), "refuse", "corruption"))
        # 5. Segment headers: not a segment kvd wrote any more, the last
        #    segment's included: refused in every mode, naming the file (only
        #    a header cut short with nothing after it is a torn tail: the
        #    truncation cases above).
        for i in range(len(segs)):
            for o in rng.sample(range(SEGMENT_HEADER), 2):
                c = flipped("flip in header", i, o, "refuse", None)
                c.offset, c.stray, c.retry = None, True, False
                cases.append(c)

        # 6. Snapshots.
        newest, older = (os.path.join("snapshots", s) for s in (snaps[-1], snaps[0]))
        size = os.path.getsize(os.path.join(self.pristine, newest))
        full = self.ledger.last_lsn
        # With a usable fallback nothing is lost: the older snapshot + the WAL.
        fb_expect, fb_floor, fb_lost = ("serve", full, False) if fallback_ok else (None, full, True)

        def snap_case(name, mutate, expect=fb_expect, floor=fb_floor, lost=fb_lost, which=newest):
            return Case(name, mutate, floor, expect, lost, snapshot=which and os.path.basename(which), retry=False)

        for o in sorted(rng.sample(range(size), 10)) + [0, 17, size - 1]:
            xor = rng.randrange(1, 256)
            cases.append(snap_case("flip %s offset %d ^= %#04x" % (newest, o, xor),
                                   lambda d, o=o, x=xor: flip(os.path.join(d, newest), o, x)))
        for o in [0, 20, size // 2, size - 1]:
            cases.append(snap_case("truncate %s at %d" % (newest, o),
                                   lambda d, o=o: truncate(os.path.join(d, newest), o)))
        for o, n in [(0, 64), (size // 3, 4096), (max(0, size - 100), 100)]:
            cases.append(snap_case("zero %s [%d, +%d)" % (newest, o, n),
                                   lambda d, o=o, n=n: zero_range(os.path.join(d, newest), o, n)))
        cases.append(snap_case("delete %s" % newest, lambda d: os.remove(os.path.join(d, newest)), which=None))
        # Both snapshots gone or bad: the WAL no longer reaches back to LSN 1.
        o = rng.randrange(size)
        cases.append(snap_case("flip both snapshots", lambda d: (flip(os.path.join(d, newest), o, 0x5A),
                                                                  flip(os.path.join(d, older), 40, 0x5A)),
                               expect="refuse", floor=full, lost=True))
        cases.append(snap_case("delete both snapshots", lambda d: (os.remove(os.path.join(d, newest)),
                                                                    os.remove(os.path.join(d, older))),
                               expect="refuse", floor=full, lost=True, which=None))
        return cases

    # -- one case --------------------------------------------------------------------------

    def fresh_copy(self, case):
        data = os.path.dirname(self.kvd.wal_path)
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(self.pristine, data)
        case.mutate(data)
        return data

    def check_data(self, data, case):
        """Runs --check-data --json and plain; returns the JSON report."""
        before = tree_digest(data)
        kvd_bin = kvdtest.binary("KVD_BIN")
        pj = subprocess.run([kvd_bin, "--check-data", "--json", "--config", self.kvd.config_path],
                            capture_output=True, timeout=TIMEOUT)
        pt = subprocess.run([kvd_bin, "--check-data", "--config", self.kvd.config_path],
                            capture_output=True, timeout=TIMEOUT)
        self.assertEqual(tree_digest(data), before, "--check-data changed the data directory")
        try:
            report = json.loads(pj.stdout)
        except ValueError:
            raise AssertionError("--check-data --json printed no JSON (exit %d): %r %r"
                                 % (pj.returncode, pj.stdout[:500], pj.stderr[:500]))
        text = pt.stdout.decode(errors="replace")
        ctx = "\n--check-data --json:\n%s\n--check-data:\n%s" % (json.dumps(report, indent=1)[:4000], text[:3000])
        self.assertEqual(pj.returncode, report.get("exit_code"), ctx)
        self.assertEqual(pt.returncode, pj.returncode, "text and JSON verdicts differ" + ctx)
        self.assertEqual(pj.returncode, 1 if case.lost else 0,
                         "exit code must be non-zero exactly when data would be lost" + ctx)
        self.assertIn("verdict", text, ctx)
        # Last good LSN per segment: every segment before the damaged one is intact.
        by_name = {os.path.basename(s["path"]): s for s in report.get("segments", [])}
        for seg in self.kvd.wal_segments() if case.segment is not None or not case.lost else []:
            if seg == case.segment:
                break
            if seg in by_name and self.records.get(seg):
                self.assertEqual(by_name[seg]["last_good_lsn"], self.records[seg][-1][2],
                                 "last good LSN of intact %s" % seg + ctx)
                self.assertEqual(by_name[seg]["damage"], "none", ctx)
                self.assertIn(seg, text, ctx)
        if case.segment is not None and case.kind is not None:
            damaged = [s for s in report.get("segments", []) if s["damage"] != "none"]
            if case.kind == "none":
                self.assertEqual(damaged, [], ctx)
            else:
                self.assertTrue(damaged, "no damage reported" + ctx)
                d = damaged[0]
                self.assertEqual(os.path.basename(d["path"]), case.segment, ctx)
                self.assertEqual(d["damage"], case.kind, ctx)
                if case.offset is not None:
                    self.assertEqual(d["damage_offset"], case.offset, ctx)
                if case.dropped is not None:
                    self.assertEqual(d["dropped_bytes"], case.dropped, ctx)
                self.assertIn("offset %d" % d["damage_offset"], text, ctx)
                self.assertIn(case.kind.replace("_", " "), text.lower(), ctx)
        if case.stray:
            self.assertIn(case.segment, [os.path.basename(f["path"]) for f in report["stray_files"]], ctx)
            self.assertNotIn("alternative", report, ctx)
            self.assertIn(case.segment, text, ctx)
        if case.snapshot is not None:
            snaps = {os.path.basename(s["path"]): s for s in report.get("snapshots", [])}
            if case.snapshot in snaps:
                self.assertFalse(snaps[case.snapshot]["ok"], "damaged snapshot reported ok" + ctx)
                self.assertIn(case.snapshot, text, ctx)
        return report, ctx

    def start(self):
        """(served: bool, exit code or None, log of this run)."""
        try:
            self.kvd.start()
            return True, None, self.kvd.log_of_run()
        except KvdError:
            if self.kvd.running():
                raise
            return False, self.kvd.proc.returncode, self.kvd.log_of_run()

    def verify_served(self, case, ctx, mode):
        kvd = self.kvd
        with kvd.client() as c:
            st = c.status().check().json
            served_lsn = st["last_lsn"]
            items = dict(c.scan_all(prefix=b""))
            count = c.count(b"").check().value
            probe = sorted(items)[:3] + [b"last-key", b"shared-00"]
            gets = {k: c.get(k) for k in probe}
        log = kvd.log_of_run()
        ctx += "\nkvd log:\n" + log[-3000:]
        expected = self.ledger.state_at(served_lsn)
        bad = [k for k in items if expected.get(k) != items[k]]
        self.assertEqual(bad, [], "served values that the ledger does not have at LSN %d (e.g. %r=%r)"
                         % (served_lsn, bad[:1], items.get(bad[0]) if bad else None) + ctx)
        missing = [k for k in expected if k not in items]
        self.assertEqual(missing, [], "LSN %d state lacks acknowledged keys %r" % (served_lsn, missing[:3]) + ctx)
        self.assertEqual(count, len(expected), ctx)
        for k, r in gets.items():
            self.assertEqual(r.payload if r.ok else None, expected.get(k), "GET %r" % k + ctx)
        self.assertEqual(served_lsn, case.floor,
                         "(%s) must serve exactly what was acknowledged before the damage point" % mode + ctx)
        rec = st["recovery"]
        wal_files = os.listdir(kvd.wal_path)
        if rec["truncated"] or rec["set_aside"]:
            self.assertTrue(rec["broken_file"] or rec["set_aside"], ctx)
            kept = [rec["broken_file"]] if rec["broken_file"] else []
            for path in kept + rec["set_aside"]:
                self.assertIn(os.path.basename(path), wal_files, "the bad bytes were not kept" + ctx)
                self.assertIn(os.path.basename(path), log, "log does not say where the bad bytes are" + ctx)
            self.assertIn("offset %d" % rec["truncated_offset"], log, ctx)
            self.assertIn(os.path.basename(rec["truncated_segment"]), log, ctx)
            if case.dropped:
                with open(rec["broken_file"], "rb") as f:
                    self.assertEqual(len(f.read()), case.dropped, ctx)
        elif case.lost and case.snapshot is None:
            self.fail("kvd served after dropping data without logging a cut" + ctx)
        if case.snapshot is not None:
            self.assertIn(case.snapshot, log, "log does not name the rejected snapshot" + ctx)
        kvd.kill()
        count_outcome("served in %s" % mode + (" after a cut" if rec["truncated"] or rec["set_aside"] else ""))
        return st

    def run_case(self, case):
        data = self.fresh_copy(case)
        self.kvd.write_config(storage={"segment_size": "64KiB"})
        report, ctx = self.check_data(data, case)
        ctx = "\n[%s]" % case.name + ctx
        before = tree_digest(data)
        served, rc, log = self.start()
        if served:
            self.assertNotEqual(case.expect, "refuse", "kvd started although it must refuse" + ctx)
            self.assertNotEqual(report["verdict"], "refuse", "--check-data predicted a refusal" + ctx)
            st = self.verify_served(case, ctx, "tolerate_tail")
            self.assertEqual(max(report["start_lsn"], report["last_lsn"]), st["last_lsn"],
                             "--check-data predicted another last LSN" + ctx)
            return
        ctx += "\nkvd log:\n" + log[-3000:]
        count_outcome("refused")
        self.assertNotEqual(case.expect, "serve", "kvd refused to start (exit %r)" % rc + ctx)
        self.assertEqual(report["verdict"], "refuse", "--check-data did not predict the refusal" + ctx)
        self.assertNotEqual(rc, 0, ctx)
        self.assertEqual(tree_digest(data), before, "a refused start changed the data directory" + ctx)
        if case.stray:
            self.assertIn("move them out of the directory", log, ctx)
        else:
            self.assertIn("recovery_mode=", log, "the refusal does not name the recovery_mode that would allow it" + ctx)
        if case.segment is not None:
            self.assertIn(case.segment, log, ctx)
            if case.offset is not None:
                self.assertIn("offset %d" % case.offset, log, ctx)
        if case.snapshot is not None:
            self.assertIn(case.snapshot, log, "the refusal does not name the bad snapshot" + ctx)
        if not case.retry:
            return
        # The mode the message names must accept it and serve the prefix up to the damage.
        m = re.search(r"recovery_mode=(\w+) would", log)
        self.assertIsNotNone(m, ctx)
        self.kvd.write_config(storage={"segment_size": "64KiB", "recovery_mode": m.group(1)})
        served, rc, log2 = self.start()
        self.assertTrue(served, "recovery_mode=%s, named by the refusal, also refused:\n%s" % (m.group(1), log2[-3000:])
                        + ctx)
        st = self.verify_served(case, ctx, m.group(1))
        alt = report.get("alternative") or {}
        self.assertEqual(max(report["start_lsn"], alt.get("last_lsn", -1)), st["last_lsn"],
                         "--check-data's alternative predicted another last LSN" + ctx)


if __name__ == "__main__":
    kvdtest.main(total_timeout=900)
