"""Failover by hand (docs/replication.md §5, §7): kvctl promote and kvctl
replicate --from, epochs fencing an old primary, and the divergent tail of
an old primary cut and set aside when it rejoins as a replica.

Real kvd processes on loopback. What clients were told is kept in a ledger
of acknowledged writes (key -> value, LSN); every node's data is compared by
full scans, independently of kvd's own counters. With asynchronous
replication (sync_replicas = 0) a promoted replica may lack acknowledged
writes, and the ledger check must name exactly which ones; with
sync_replicas = 1 it must find every one."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402
import kvd_proto  # noqa: E402

CONVERGE_TIMEOUT = 60
FENCED = 13  # kvd::Code::kFenced
# No automatic snapshot may cover an old primary's tail (it would have to be
# resynced whole, which is snapshot transfer's business).
NO_AUTO_SNAPSHOTS = {"interval": "0", "wal_growth_percent": 0, "wal_bytes": 0}


def full_scan(server):
    with server.client() as c:
        return dict(c.scan_all())


def repl_status(server):
    return server.status()["replication"]


def dead_address():
    """A loopback HOST:PORT nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "127.0.0.1:%d" % port


class Ledger:
    """Writer threads putting unique keys; every acknowledged write is kept
    with its value and LSN. Errors after the primary died are expected (the
    connection closes); they are counted, not acknowledged."""

    def __init__(self, server, n=4, tag=b"w"):
        self.server, self.n, self.tag = server, n, tag
        self.lock = threading.Lock()
        self.acked = {}  # key -> (value, lsn)
        self.stop = threading.Event()
        self.threads = []
        self.unexpected = []

    def _run(self, t):
        i = 0
        try:
            with self.server.client() as c:
                while not self.stop.is_set():
                    key = b"%s%d:%08d" % (self.tag, t, i)
                    value = b"v%d-%d-" % (t, i) * 8
                    r = c.put(key, value)
                    if r.status != kvd_proto.OK:
                        self.unexpected.append(r)
                        return
                    with self.lock:
                        self.acked[key] = (value, r.lsn)
                    i += 1
        except (kvd_proto.KvdConnectionClosed, ConnectionError, OSError):
            return  # the primary went away: later writes were never acknowledged

    def start(self):
        for t in range(self.n):
            th = threading.Thread(target=self._run, args=(t,))
            th.start()
            self.threads.append(th)
        return self

    def count(self):
        with self.lock:
            return len(self.acked)

    def join(self):
        self.stop.set()
        for th in self.threads:
            th.join()

    def check_against(self, data, last_lsn):
        """The ledger check: every acknowledged write up to last_lsn is in
        data with its value; every one after it is missing. Returns the keys
        of the acknowledged writes that are missing."""
        missing = set()
        for key, (value, lsn) in self.acked.items():
            if lsn <= last_lsn:
                if data.get(key) != value:
                    raise AssertionError("acknowledged write %r (LSN %d <= %d) lost or wrong: %r"
                                         % (key, lsn, last_lsn, data.get(key)))
            elif key in data:
                raise AssertionError("write %r has LSN %d > %d yet is present" % (key, lsn, last_lsn))
            else:
                missing.add(key)
        return missing


class Failover(KvdTestCase):
    def node(self, name, primary_port=None, start=True, sync_replicas=0, sync_timeout=None):
        """A primary (primary_port None) or a replica; both with a replication
        listen (a replica opens it once promoted) and no automatic snapshots."""
        repl = {"name": name, "listen": "127.0.0.1:0", "sync_replicas": sync_replicas}
        if sync_timeout is not None:
            repl["sync_timeout"] = sync_timeout
        if primary_port is not None:
            repl.update(role="replica", primary="127.0.0.1:%d" % primary_port)
        return self.server(start=start, subdir=name, replication=repl, snapshot=NO_AUTO_SNAPSHOTS)

    def wait_streaming(self, *replicas):
        for r in replicas:
            kvdtest.wait_until(lambda: repl_status(r)["receiver"]["state"] == "streaming", what="streaming")

    def wait_converged(self, primary, replicas):
        last = primary.status()["last_lsn"]
        for r in replicas:
            kvdtest.wait_until(lambda: r.status()["applied_lsn"] >= last, timeout=CONVERGE_TIMEOUT,
                               what="%s to apply LSN %d" % (r.dir, last))
        expected = full_scan(primary)
        for r in replicas:
            self.assertEqual(full_scan(r), expected, "%s differs from the primary" % r.dir)
        return expected

    def promote(self, node, *args):
        return node.kvctl("promote", *args)

    def test_kill_primary_promote_most_advanced_repoint_and_rejoin_with_tail_cut(self):
        p = self.node("p")
        pport = repl_status(p)["port"]
        r1, r2 = self.node("r1", pport), self.node("r2", pport)
        self.wait_streaming(r1, r2)
        ledger = Ledger(p).start()
        try:
            kvdtest.wait_until(lambda: ledger.count() > 600, what="load")
            # r1 loses its link first, r2 later: r2 is the most advanced.
            # Both happen while writers keep going; what the primary writes
            # after r2 lost its link too exists only there (its tail).
            self.assertEqual(r1.kvctl("replicate", "--from", dead_address()).rc, 0)
            at = ledger.count()
            kvdtest.wait_until(lambda: ledger.count() > at + 300, what="load after r1 left")
            self.assertEqual(r2.kvctl("replicate", "--from", dead_address()).rc, 0)
            at = ledger.count()
            kvdtest.wait_until(lambda: ledger.count() > at + 300, what="load after r2 left")
            p.kill()  # kill -9 under concurrent writers
        finally:
            ledger.join()
        self.assertEqual(ledger.unexpected, [])
        p_last = max(lsn for _, lsn in ledger.acked.values())

        # Neither replica heard from a primary since it was re-pointed: it
        # cannot know what was acknowledged, so promote refuses and says why.
        res = self.promote(r2)
        self.assertNotEqual(res.rc, 0)
        self.assertIn("has not heard from a primary", res.err)
        self.assertIn("--force", res.err)
        self.assertEqual(r2.status()["role"], "replica")

        st1, st2 = r1.status(), r2.status()
        self.assertGreater(st2["durable_lsn"], st1["durable_lsn"])  # r2 is the most advanced
        res = self.promote(r2, "--force")
        self.assertEqual(res.rc, 0, res.err)
        self.assertEqual(res.out.strip(), "epoch=2")
        fork = st2["last_lsn"]

        # The ledger check on the new primary: exactly the acknowledged
        # writes after its last LSN are missing (asynchronous replication's
        # loss, docs/replication.md §8), every other one is there.
        new_data = full_scan(r2)
        missing = ledger.check_against(new_data, fork)
        self.assertEqual(missing, {k for k, (_, lsn) in ledger.acked.items() if lsn > fork})
        self.assertGreaterEqual(len(missing), 300)
        print("\nledger: %d acknowledged writes, %d missing on the promoted replica (LSNs after %d)"
              % (len(ledger.acked), len(missing), fork))

        st = r2.status()
        self.assertEqual(st["role"], "primary")
        self.assertEqual(st["epoch"], 2)
        self.assertEqual(st["replication"]["epoch_history"],
                         [{"epoch": 1, "first_lsn": 1}, {"epoch": 2, "first_lsn": fork + 1}])
        new_port = st["replication"]["port"]
        self.assertGreater(new_port, 0)
        with r2.client() as c:
            for i in range(200):
                c.put(b"after:%04d" % i, b"epoch2-%d" % i).check()

        # The other replica follows the new primary.
        self.assertEqual(r1.kvctl("replicate", "--from", "127.0.0.1:%d" % new_port).rc, 0)
        self.wait_streaming(r1)

        # The old primary comes back as a replica of the new one: its log
        # after the fork point is cut and set aside, and it converges.
        p.write_config(replication={"name": "p", "role": "replica", "primary": "127.0.0.1:%d" % new_port,
                                    "listen": "127.0.0.1:0"}, snapshot=NO_AUTO_SNAPSHOTS)
        mark = p.log_offset()
        p.start()
        self.wait_streaming(p)
        broken = [n for n in os.listdir(p.wal_path) if n.startswith("diverged-")]
        self.assertEqual(len(broken), 1, broken)
        m = re.fullmatch(r"diverged-(\d+)-(\d+)\.broken", broken[0])
        self.assertIsNotNone(m, broken[0])
        first, last = int(m.group(1)), int(m.group(2))
        self.assertEqual(first, fork + 1)
        self.assertGreaterEqual(last, p_last)  # every acknowledged write of the tail (and maybe unanswered ones)
        line = p.wait_for_log(lambda l: "divergent tail cut" in l, since=mark)
        self.assertIn("%d record(s) after LSN %d" % (last - fork, fork), line)
        # The set-aside file holds exactly those records: kvd --salvage reads them.
        out = os.path.join(self.tmp, "tail.kvs")
        res = subprocess.run([kvdtest.binary("KVD_BIN"), "--salvage", os.path.join(p.wal_path, broken[0]),
                              "--out", out], capture_output=True, text=True, timeout=kvdtest.TIMEOUT)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("salvaged %d records, LSN %d..%d (0 LSNs in that range missing)" % (last - fork, first, last),
                      res.stdout)

        data = self.wait_converged(r2, [r1, p])
        for key in missing:
            self.assertNotIn(key, data)
        self.assertEqual(data[b"after:0199"], b"epoch2-199")
        for n in (r1, p):
            self.assertEqual(n.status()["epoch"], 2)


    def kill_primary_and_promote_best(self, sync_replicas):
        """Two replicas behind slow links (fault proxies), writers on the
        primary; the links stall, the primary is killed (-9) and what the
        links held is dropped. The most advanced replica (the highest durable
        LSN; replicas hold prefixes of one log) is promoted. Returns the
        ledger check's missing acknowledged writes."""
        p = self.node("p%d" % sync_replicas, sync_replicas=sync_replicas)
        proxies = [FaultProxy(repl_status(p)["port"]) for _ in range(2)]
        try:
            replicas = [self.node("r%d-%d" % (i, sync_replicas), px.port) for i, px in enumerate(proxies)]
            self.wait_streaming(*replicas)
            for px in proxies:
                px.slow(chunk=97, delay=0.002)  # the replicas fall behind what the primary writes
            ledger = Ledger(p).start()
            try:
                kvdtest.wait_until(lambda: ledger.count() > 600, what="load")
                # The whole machine is lost: its links go silent first, and
                # what they still hold never arrives.
                for px in proxies:
                    px.stall()
                if sync_replicas == 0:
                    # Asynchronous replication goes on acknowledging writes
                    # no replica has: the check below must see them missing.
                    stalled_at = ledger.count()
                    kvdtest.wait_until(lambda: ledger.count() >= stalled_at + 20, what="acks over stalled links")
                p.kill()  # kill -9 under concurrent writers
            finally:
                ledger.join()
            self.assertEqual(ledger.unexpected, [])
            for px in proxies:
                px.cut()
            # Only once a replica saw its link end are their LSNs final.
            for r in replicas:
                kvdtest.wait_until(lambda: repl_status(r)["receiver"]["state"] != "streaming", timeout=60,
                                   what="%s to see the primary gone" % r.dir)
        finally:
            for px in proxies:
                px.close()
        best = max(replicas, key=lambda r: r.status()["durable_lsn"])
        # The replica cannot tell how far the dead primary got, so promote
        # may refuse without --force; the ledger decides what was kept.
        res = self.promote(best, "--force")
        self.assertEqual(res.rc, 0, res.err)
        fork = best.status()["last_lsn"]
        missing = ledger.check_against(full_scan(best), fork)
        print("\nledger (sync_replicas = %d): %d acknowledged writes, %d missing on the promoted replica "
              "(last LSN %d)" % (sync_replicas, len(ledger.acked), len(missing), fork))
        return missing

    def test_sync_replica_promoted_after_kill_has_every_acknowledged_write(self):
        """With sync_replicas = 1 every acknowledged write is durable on at
        least one replica, hence on the most advanced one: nothing is lost
        even though what the links held when the primary died is dropped.
        The same links without it lose writes, which shows the check can
        fail."""
        self.assertEqual(self.kill_primary_and_promote_best(1), set(),
                         "acknowledged writes lost with sync_replicas = 1")
        self.assertGreater(len(self.kill_primary_and_promote_best(0)), 0,
                           "asynchronous replication behind slow links lost nothing: the setup proves nothing")

    def test_old_primary_that_keeps_running_is_fenced_by_a_newer_epoch(self):
        p = self.node("p")
        pport = repl_status(p)["port"]
        r1, r2 = self.node("r1", pport), self.node("r2", pport)
        self.wait_streaming(r1, r2)
        with p.client() as c:
            for i in range(300):
                c.put(b"before:%04d" % i, b"e1-%d" % i).check()
        self.wait_converged(p, [r1, r2])

        p.kill(signal.SIGSTOP)
        try:
            # The link is up but the primary is silent: a stopped primary may
            # still be acknowledging writes, so promote refuses without --force.
            kvdtest.wait_until(lambda: repl_status(r1)["receiver"]["silent_ms"] > 1200, what="silence")
            res = self.promote(r1)
            self.assertNotEqual(res.rc, 0)
            self.assertIn("nothing was heard", res.err)
            res = self.promote(r1, "--force")
            self.assertEqual(res.rc, 0, res.err)
            self.assertEqual(res.out.strip(), "epoch=2")
            new_port = repl_status(r1)["port"]
            self.assertEqual(r2.kvctl("replicate", "--from", "127.0.0.1:%d" % new_port).rc, 0)
            self.wait_streaming(r2)
            with r1.client() as c:
                for i in range(100):
                    c.put(b"epoch2:%04d" % i, b"e2-%d" % i).check()
            self.wait_converged(r1, [r2])
            self.assertEqual(r2.status()["epoch"], 2)
        finally:
            p.kill(signal.SIGCONT, wait=False)

        # The old primary runs on and, knowing nothing yet, takes a write.
        with p.client() as c:
            c.put(b"stale:1", b"from-the-old-primary").check()
        # A replica that follows the new primary is pointed at it (an
        # operator's mistake): its frames carry epoch 2, so the old primary
        # fences itself; the replica refuses the old epoch's records.
        mark_p, mark_r2 = p.log_offset(), r2.log_offset()
        self.assertEqual(r2.kvctl("replicate", "--from", "127.0.0.1:%d" % pport).rc, 0)
        p.wait_for_log(lambda t: "fenced: a newer epoch 2 exists" in t, since=mark_p)
        with p.client() as c:
            r = c.put(b"stale:2", b"refused")
            self.assertEqual(r.status, FENCED, r)
            self.assertIn(b"newer epoch", r.payload)
            self.assertEqual(c.get(b"stale:1").status, kvd_proto.OK)  # reads go on
        st = p.status()
        self.assertEqual(st["role"], "primary")
        self.assertIn("newer epoch", st["replication"]["fenced"])
        # Promote is not how an old primary comes back.
        res = self.promote(p, "--force")
        self.assertNotEqual(res.rc, 0)
        self.assertIn("old primary", res.err)
        self.assertNotIn(b"stale:1", full_scan(r2))
        self.assertEqual(r2.kvctl("replicate", "--from", "127.0.0.1:%d" % new_port).rc, 0)
        self.wait_streaming(r2)

        # Made a replica of the new primary, the old one cuts its tail (the
        # write only it has) and converges.
        mark = p.log_offset()
        self.assertEqual(p.kvctl("replicate", "--from", "127.0.0.1:%d" % new_port).rc, 0)
        self.wait_streaming(p)
        text = p.wait_for_log(lambda t: "divergent tail cut" in t, since=mark)
        fork = 300
        self.assertIn("1 record(s) after LSN %d" % fork, text)
        self.assertTrue(os.path.exists(os.path.join(p.wal_path, "diverged-%d-%d.broken" % (fork + 1, fork + 1))))
        data = self.wait_converged(r1, [r2, p])
        self.assertNotIn(b"stale:1", data)
        self.assertEqual(len(data), 400)
        self.assertEqual(p.status()["role"], "replica")
        with p.client() as c:
            self.assertEqual(c.put(b"x", b"y").status, kvd_proto.NOT_PRIMARY)

    def test_a_sync_primary_fenced_by_a_newer_epoch_fails_the_writes_its_gate_holds_at_once(self):
        """A write the old primary holds for a replica's ACK is not
        acknowledged once a newer epoch fences it: it fails then, not after
        sync_timeout; nothing later is held, and writes stay fenced (the new
        primary's log lacks it; a replica of the old epoch could otherwise
        confirm it on a branch that will be cut)."""
        p = self.node("p", sync_replicas=1, sync_timeout="120s")
        pport = repl_status(p)["port"]
        r1, r2 = self.node("r1", pport), self.node("r2", pport)
        self.wait_streaming(r1, r2)
        with p.client() as c:
            c.put(b"before", b"e1").check()
        self.wait_converged(p, [r1, r2])

        p.kill(signal.SIGSTOP)
        try:
            kvdtest.wait_until(lambda: repl_status(r1)["receiver"]["silent_ms"] > 1200, what="silence")
            res = self.promote(r1, "--force")
            self.assertEqual(res.rc, 0, res.err)
            new_port = repl_status(r1)["port"]
            self.assertEqual(r2.kvctl("replicate", "--from", "127.0.0.1:%d" % new_port).rc, 0)
            self.wait_streaming(r2)
        finally:
            p.kill(signal.SIGCONT, wait=False)
        kvdtest.wait_until(lambda: repl_status(p)["sync"]["connected"] == 0, what="the old primary's links gone")

        # No replica left to ACK: the old primary holds this write.
        with p.client(timeout=60) as held:
            held.send(kvd_proto.OP_PUT, kvd_proto.put_payload(b"held", b"never-acknowledged"))
            kvdtest.wait_until(lambda: repl_status(p)["sync"]["gated_writes"] == 1, what="the write held")
            mark = p.log_offset()
            self.assertEqual(r2.kvctl("replicate", "--from", "127.0.0.1:%d" % pport).rc, 0)
            p.wait_for_log(lambda t: "fenced: a newer epoch 2 exists" in t, since=mark)
            reply = held.recv()  # before this fix: after sync_timeout (120 s), past this client's 60 s
        self.assertEqual(reply.status, FENCED, reply)
        self.assertIn(b"newer epoch 2", reply.payload)
        st = repl_status(p)
        self.assertEqual(st["sync"]["gated_writes"], 0)
        self.assertNotIn("ack_gate", p.status())
        # A FLUSH is not held either, and writes stay fenced.
        with p.client(timeout=60) as c:
            self.assertEqual(c.flush().status, kvd_proto.OK)
            self.assertEqual(c.put(b"after", b"x").status, FENCED)

    def test_a_fenced_old_primary_restarted_remembers_the_newer_epoch(self):
        """The epoch that fenced a primary is saved (wal/seen_epoch) before the
        fence: after kill -9 and a restart as the primary it was, it is still
        fenced, and a later promotion picks an epoch above it."""
        p = self.node("p")
        pport = repl_status(p)["port"]
        r = self.node("r", pport)
        self.wait_streaming(r)
        with p.client() as c:
            for i in range(50):
                c.put(b"k%02d" % i, b"v").check()
        self.wait_converged(p, [r])
        res = self.promote(r, "--force")
        self.assertEqual(res.rc, 0, res.err)
        self.assertEqual(res.out.strip(), "epoch=2")
        # The new primary is pointed back at the old one: its HELLO carries
        # epoch 2, which fences the old primary (which never got a record
        # of epoch 2: only the seen epoch remembers it).
        mark = p.log_offset()
        self.assertEqual(r.kvctl("replicate", "--from", "127.0.0.1:%d" % pport).rc, 0)
        p.wait_for_log(lambda t: "fenced: a newer epoch 2 exists" in t, since=mark)
        r.kill()
        self.assertTrue(os.path.exists(os.path.join(p.wal_path, "seen_epoch")))
        self.assertEqual(p.status()["replication"]["epoch_history"], [{"epoch": 1, "first_lsn": 1}])

        p.kill()
        p.start()  # the same config: role = primary
        st = p.status()
        self.assertEqual(st["role"], "primary")
        self.assertEqual(st["epoch"], 1)
        self.assertEqual(st["replication"]["highest_epoch_seen"], 2)
        self.assertIn("newer epoch 2", st["replication"]["fenced"])
        with p.client() as c:
            w = c.put(b"stale", b"refused")
            self.assertEqual(w.status, FENCED, w)
            self.assertEqual(c.get(b"k00").status, kvd_proto.OK)  # reads go on
        res = self.promote(p, "--force")
        self.assertNotEqual(res.rc, 0)
        self.assertIn("old primary", res.err)
        # Made a replica (of nobody reachable) and promoted: the epoch is
        # above everything seen before the restart, never 2 again.
        self.assertEqual(p.kvctl("replicate", "--from", dead_address()).rc, 0)
        res = self.promote(p, "--force")
        self.assertEqual(res.rc, 0, res.err)
        self.assertEqual(res.out.strip(), "epoch=3")

    def test_old_primary_whose_snapshot_holds_its_tail_resyncs_by_snapshot_transfer(self):
        """The old primary took a snapshot covering its divergent tail before
        it died: TRUNCATE cannot cut it. It asks the new primary for a
        snapshot transfer instead and installs it, its own snapshot and WAL
        moved aside (never deleted, logged), and converges."""
        p = self.node("p")
        pport = repl_status(p)["port"]
        r = self.node("r", pport)
        self.wait_streaming(r)
        with p.client() as c:
            for i in range(300):
                c.put(b"shared:%04d" % i, b"e1-%d" % i).check()
        self.wait_converged(p, [r])
        fork = r.status()["last_lsn"]
        self.assertEqual(r.kvctl("replicate", "--from", dead_address()).rc, 0)
        with p.client() as c:  # the tail only the old primary has
            for i in range(200):
                c.put(b"tail:%04d" % i, b"lost-%d" % i).check()
            c.snapshot().check()
        p_last = p.status()["last_lsn"]
        kvdtest.wait_until(lambda: any(kvdtest.snapshot_lsn(n) == p_last for n in p.snapshots()),
                           what="the old primary's snapshot covering its tail")
        snap_name = "snap-%020d.kvs" % p_last
        self.assertIn(snap_name, p.snapshots())
        with open(os.path.join(p.snapshot_path, snap_name), "rb") as f:
            old_snapshot = f.read()
        p.kill()

        res = self.promote(r, "--force")
        self.assertEqual(res.rc, 0, res.err)
        self.assertEqual(res.out.strip(), "epoch=2")
        new_addr = "127.0.0.1:%d" % repl_status(r)["port"]
        with r.client() as c:
            for i in range(100):
                c.put(b"after:%04d" % i, b"epoch2-%d" % i).check()

        p.write_config(replication={"name": "p", "role": "replica", "primary": new_addr, "listen": "127.0.0.1:0"},
                       snapshot=NO_AUTO_SNAPSHOTS)
        mark = p.log_offset()
        p.start()
        p.wait_for_log(lambda t: "cannot be cut" in t and "asking the primary for a snapshot transfer" in t,
                       since=mark)
        line = p.wait_for_log(lambda t: "resynced from the primary's snapshot" in t, since=mark,
                              timeout=CONVERGE_TIMEOUT)
        self.wait_streaming(p)
        self.assertIn("log up to LSN %d, diverged after LSN %d" % (p_last, fork), line)
        self.assertIn("1 snapshot(s)", line)
        self.assertEqual(repl_status(p)["receiver"]["snapshots_installed"], 1)
        # Nothing of the old state was deleted: the snapshot that held the
        # tail, byte for byte, and the WAL segments are set aside.
        aside = [n for n in os.listdir(p.snapshot_path) if n.startswith("replaced-by-snapshot-")]
        self.assertEqual(len(aside), 1, aside)
        with open(os.path.join(p.snapshot_path, aside[0], snap_name), "rb") as f:
            self.assertEqual(f.read(), old_snapshot)
        self.assertTrue(os.listdir(os.path.join(p.wal_path, aside[0])))
        self.assertNotIn(snap_name, p.snapshots())

        data = self.wait_converged(r, [p])
        self.assertFalse([k for k in data if k.startswith(b"tail:")])
        self.assertEqual(len(data), 400)
        self.assertEqual(p.status()["epoch"], 2)
        with r.client() as c:
            c.put(b"later", b"streamed").check()
        self.assertEqual(self.wait_converged(r, [p])[b"later"], b"streamed")
        # A restart recovers the installed state, not the set-aside one.
        p.restart(signal.SIGKILL)
        self.wait_streaming(p)
        self.assertEqual(self.wait_converged(r, [p]), full_scan(r))

    def test_promote_refuses_a_replica_behind_the_primarys_durable_lsn(self):
        if b"space-limit=" not in subprocess.run([kvdtest.binary("KVD_BIN"), "--help"], capture_output=True,
                                                 timeout=kvdtest.TIMEOUT).stdout:
            self.skipTest("kvd has no --fault-env space-limit=BYTES (a build without KVD_FAULT_INJECTION)")
        p = self.node("p")
        pport = repl_status(p)["port"]
        # The replica's disk fills: it keeps hearing the primary (and its
        # durable LSN) but cannot make the records durable.
        r = self.server(subdir="r", extra_args=["--fault-env", "space-limit=%d" % (3 << 20)],
                        replication={"name": "r", "role": "replica", "primary": "127.0.0.1:%d" % pport,
                                     "listen": "127.0.0.1:0"},
                        storage={"segment_size": "1MiB"}, snapshot=NO_AUTO_SNAPSHOTS)
        self.wait_streaming(r)
        with p.client() as c:
            for i in range(800):
                c.put(b"big:%04d" % i, b"x" * 8192).check()
        p_durable = p.status()["durable_lsn"]
        kvdtest.wait_until(lambda: repl_status(r)["receiver"]["primary_durable_lsn"] >= p_durable,
                           what="the replica to hear the primary's durable LSN")
        own = r.status()["durable_lsn"]
        self.assertLess(own, p_durable)
        res = self.promote(r)
        self.assertNotEqual(res.rc, 0)
        self.assertIn("is behind the primary's durable LSN", res.err)
        self.assertIn("--force", res.err)
        self.assertEqual(r.status()["role"], "replica")

if __name__ == "__main__":
    kvdtest.main()
