"""Failover under power loss (docs/replication.md §8): the kill -9 failover of
test_failover.py repeated with `kvd --fault-env power-loss` (test builds:
file data reaches the disk only on fdatasync, so SIGKILL loses exactly what a
power cut would) on the primary and on a synchronous replica.

Each node's fdatasync can be held (`stall-sync-file=PATH`), so the un-fsynced
tail a power cut takes is not left to chance: records written after the
stall began are never synced, and the test knows their LSNs.

- Power loss on the primary: the replication links stall first (a fault
  proxy holds every byte), so the primary has a durable tail no replica has;
  then its fdatasync stalls and it writes more, never synced; then the power
  goes. The most advanced replica is promoted: every acknowledged write is
  there (sync_replicas = 1). The old primary restarts without its un-fsynced
  tail, rejoins as a replica, its durable divergent tail is cut and set
  aside, and all digests converge.
- Power loss on a synchronous replica: its fdatasync stalls while it keeps
  receiving (it ACKs records as written, not as durable); then the power
  goes. It restarts with less than it ACKed as written, never less than it
  ACKed as durable: every write the primary acknowledged is on it. It then
  catches up and converges.

Each scenario also runs with sync_replicas = 0, which must lose acknowledged
writes: the check can fail."""

import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402
from test_failover import Ledger, NO_AUTO_SNAPSHOTS, dead_address, full_scan, repl_status  # noqa: E402

CONVERGE_TIMEOUT = 60


def has_power_loss():
    p = subprocess.run([kvdtest.binary("KVD_BIN"), "--help"], capture_output=True, timeout=kvdtest.TIMEOUT)
    return b"power-loss" in p.stdout and b"stall-sync-file" in p.stdout


def frozen(ledger):
    """The ledger's acknowledged writes as of now (its writers may go on)."""
    with ledger.lock:
        return dict(ledger.acked)


def missing_on(acked, data, last_lsn):
    """Ledger check of acked ({key: (value, lsn)}) against a node's data at
    last_lsn: every write up to last_lsn is there with its value, none after
    it is. Returns the keys of acknowledged writes that are missing."""
    missing = set()
    for key, (value, lsn) in acked.items():
        if lsn <= last_lsn:
            if data.get(key) != value:
                raise AssertionError("acknowledged write %r (LSN %d <= %d) lost or wrong: %r"
                                     % (key, lsn, last_lsn, data.get(key)))
        elif key in data:
            raise AssertionError("write %r has LSN %d > %d yet is present" % (key, lsn, last_lsn))
        else:
            missing.add(key)
    return missing


class FailoverPowerLoss(KvdTestCase):
    def setUp(self):
        super().setUp()
        if not has_power_loss():
            self.skipTest("kvd has no --fault-env power-loss / stall-sync-file (configure with -DKVD_FAULT_INJECTION=ON)")

    def node(self, name, primary_addr=None, sync_replicas=1, fault=None):
        """A node with a replication listen (a replica opens it once
        promoted), no automatic snapshots, and a long sync_timeout: writes
        held while a node is down must not fail."""
        repl = {"name": name, "listen": "127.0.0.1:0", "sync_replicas": sync_replicas, "sync_timeout": "30s"}
        if primary_addr is not None:
            repl.update(role="replica", primary=primary_addr)
        extra = ["--fault-env", fault] if fault else []
        return self.server(subdir=name, replication=repl, snapshot=NO_AUTO_SNAPSHOTS, extra_args=extra)

    def wait_streaming(self, *replicas):
        for r in replicas:
            kvdtest.wait_until(lambda: repl_status(r)["receiver"]["state"] == "streaming", timeout=CONVERGE_TIMEOUT,
                               what="%s streaming" % r.dir)

    def wait_converged(self, primary, replicas):
        """Every replica applied the primary's last LSN; full scans and
        digests equal. Returns the primary's data."""
        last = primary.status()["last_lsn"]
        for r in replicas:
            kvdtest.wait_until(lambda: r.status()["applied_lsn"] >= last, timeout=CONVERGE_TIMEOUT,
                               what="%s to apply LSN %d" % (r.dir, last))
        expected, digest = full_scan(primary), primary.status()["digest"]
        for r in replicas:
            self.assertEqual(full_scan(r), expected, "%s differs from the primary" % r.dir)
            self.assertEqual(r.status()["digest"], digest, "%s: digest differs from the primary's" % r.dir)
        return expected

    # ---- power loss on the primary --------------------------------------------

    def primary_power_loss(self, sync_replicas):
        """Up to the promotion of the best replica and the ledger check.
        Returns what the rest of the scenario needs."""
        tag = "p%d" % sync_replicas
        stall = os.path.join(self.tmp, "stall-" + tag)
        p = self.node(tag, sync_replicas=sync_replicas, fault="power-loss,stall-sync-file=" + stall)
        proxies = [FaultProxy(repl_status(p)["port"]) for _ in range(2)]
        try:
            replicas = [self.node("%s-r%d" % (tag, i), "127.0.0.1:%d" % px.port, sync_replicas=sync_replicas)
                        for i, px in enumerate(proxies)]
            self.wait_streaming(*replicas)
            ledger, late, unsynced = Ledger(p).start(), None, None
            try:
                kvdtest.wait_until(lambda: ledger.count() > 400, what="load")
                # 1. The links stall: what the primary writes from now on
                # reaches no replica. The late writers' records become durable
                # on the primary only (with sync_replicas = 1 they wait).
                for px in proxies:
                    px.stall()
                replica_max = max(r.status()["last_lsn"] for r in replicas)
                late = Ledger(p, n=2, tag=b"late").start()
                kvdtest.wait_until(lambda: p.status()["durable_lsn"] > replica_max + 1,
                                   what="a durable tail on the primary only")
                if sync_replicas == 0:  # acknowledged at once, on the primary alone
                    kvdtest.wait_until(lambda: late.count() > 0, what="late writes acknowledged")
                # 2. The primary's fdatasync stalls: what it writes from now
                # on (after LSN l0) is never synced.
                open(stall, "w").close()
                l0 = p.status()["last_lsn"]
                unsynced = Ledger(p, n=2, tag=b"unsynced").start()
                kvdtest.wait_until(lambda: p.status()["last_lsn"] > l0, what="an un-fsynced tail")
                before = p.status()
                self.assertGreater(before["last_lsn"], before["durable_lsn"])
                # 3. The power goes.
                p.kill()
            finally:
                for lg in (ledger, late, unsynced):
                    if lg is not None:
                        lg.join()
            for px in proxies:
                px.cut()  # what the stalled links held is lost with the power
        finally:
            for px in proxies:
                px.close()
        for lg in (ledger, late, unsynced):
            self.assertEqual(lg.unexpected, [])
        self.assertEqual(unsynced.count(), 0)  # never durable on the primary: never acknowledged
        for r in replicas:
            kvdtest.wait_until(lambda: repl_status(r)["receiver"]["state"] != "streaming", timeout=CONVERGE_TIMEOUT,
                               what="%s to see the primary gone" % r.dir)
        best = max(replicas, key=lambda r: r.status()["durable_lsn"])
        other = [r for r in replicas if r is not best][0]
        res = best.kvctl("promote", "--force")
        self.assertEqual(res.rc, 0, res.err)
        fork = best.status()["last_lsn"]
        # The primary had a durable tail the promoted replica lacks. (Not
        # fork <= replica_max: records already in a replica's socket buffer
        # when the links stalled may still arrive after replica_max was read.)
        self.assertLess(fork, before["durable_lsn"])
        data = full_scan(best)
        acked = {**frozen(ledger), **frozen(late)}
        missing = missing_on(acked, data, fork)
        print("\npower loss on the primary (sync_replicas = %d): %d writes acknowledged, %d lost on the promoted "
              "replica (last LSN %d); the primary had written LSN %d, %d durable"
              % (sync_replicas, len(acked), len(missing), fork, before["last_lsn"], before["durable_lsn"]))
        return {"p": p, "stall": stall, "best": best, "other": other, "fork": fork, "l0": l0, "before": before,
                "missing": missing, "late": frozen(late), "unsynced_keys": {b"unsynced%d:%08d" % (t, 0) for t in (0, 1)}}

    def test_power_loss_on_the_primary(self):
        s = self.primary_power_loss(1)
        self.assertEqual(s["missing"], set(), "acknowledged writes lost with sync_replicas = 1")
        self.assertEqual(s["late"], {})  # durable on the primary only: never acknowledged
        p, best, other, fork, l0, before = s["p"], s["best"], s["other"], s["fork"], s["l0"], s["before"]
        new_addr = "127.0.0.1:%d" % repl_status(best)["port"]
        self.assertEqual(other.kvctl("replicate", "--from", new_addr).rc, 0)
        self.wait_streaming(other)
        with best.client() as c:
            for i in range(100):
                c.put(b"after:%04d" % i, b"epoch2-%d" % i).check()

        # The old primary comes back from the power cut as a replica of the
        # new one (its fdatasync no longer held).
        os.remove(s["stall"])
        p.write_config(replication={"name": "p1", "role": "replica", "primary": new_addr, "listen": "127.0.0.1:0"},
                       snapshot=NO_AUTO_SNAPSHOTS)
        mark = p.log_offset()
        p.start()
        self.wait_streaming(p, other)
        broken = [n for n in os.listdir(p.wal_path) if n.startswith("diverged-")]
        self.assertEqual(len(broken), 1, broken)
        m = re.fullmatch(r"diverged-(\d+)-(\d+)\.broken", broken[0])
        self.assertIsNotNone(m, broken[0])
        first, last = int(m.group(1)), int(m.group(2))
        self.assertEqual(first, fork + 1)
        # Its log ended where its last fdatasync did: the un-fsynced tail
        # vanished, the durable one (the late writes) was there to cut.
        self.assertGreaterEqual(last, before["durable_lsn"])
        self.assertLessEqual(last, l0)
        self.assertLess(last, before["last_lsn"])
        line = p.wait_for_log(lambda t: "divergent tail cut" in t, since=mark)
        self.assertIn("%d record(s) after LSN %d" % (last - fork, fork), line)
        print("old primary: recovered to LSN %d of %d written (%d un-fsynced records gone); %d record(s) after "
              "LSN %d set aside in %s" % (last, before["last_lsn"], before["last_lsn"] - last, last - fork, fork,
                                           broken[0]))

        data = self.wait_converged(best, [other, p])
        self.assertEqual(data[b"after:0099"], b"epoch2-99")
        for key in s["unsynced_keys"]:
            self.assertNotIn(key, data)
        for key in (b"late0:00000000", b"late1:00000000"):
            self.assertNotIn(key, data)  # cut with the tail
        self.assertEqual(p.status()["epoch"], 2)

    def test_power_loss_on_the_primary_async_loses_writes(self):
        """The same power cut with sync_replicas = 0: the writes acknowledged
        while the links stalled are on the old primary only; the promoted
        replica lacks them, so the check can fail."""
        s = self.primary_power_loss(0)
        self.assertGreater(len(s["late"]), 0)
        self.assertGreater(len(s["missing"]), 0, "asynchronous replication lost nothing: the setup proves nothing")
        self.assertTrue(set(s["late"]) <= s["missing"])

    # ---- power loss on a synchronous replica --------------------------------------

    def replica_power_loss(self, sync_replicas):
        """Up to the replica's restart and the ledger check on it."""
        tag = "q%d" % sync_replicas
        stall = os.path.join(self.tmp, "stall-" + tag)
        p = self.node(tag, sync_replicas=sync_replicas)
        p_addr = "127.0.0.1:%d" % repl_status(p)["port"]
        r = self.node(tag + "-r", p_addr, sync_replicas=sync_replicas, fault="power-loss,stall-sync-file=" + stall)
        self.wait_streaming(r)
        ledger = Ledger(p).start()
        late = None
        try:
            kvdtest.wait_until(lambda: ledger.count() > 400, what="load")
            # The replica's fdatasync stalls; it goes on receiving and ACKs
            # what it writes (after LSN l0: never synced) as written only.
            open(stall, "w").close()
            l0 = r.status()["last_lsn"]
            late = Ledger(p, n=2, tag=b"late").start()

            def seen():
                reps = repl_status(p)["replicas"]
                return reps[0] if len(reps) == 1 and reps[0]["written_lsn"] > l0 else None
            kvdtest.wait_until(seen, what="the replica to ACK records it cannot sync")
            if sync_replicas == 0:  # the primary acknowledges what the replica cannot sync
                kvdtest.wait_until(lambda: max(lsn for _, lsn in frozen(ledger).values()) > l0,
                                   what="acknowledged writes after LSN %d" % l0)
            acked_by_r = seen()
            # The power goes on the replica. What was acknowledged up to now
            # is what its ACKs may have covered.
            r.kill()
            acked = {**frozen(ledger), **frozen(late)}
            os.remove(stall)
            # It restarts away from the primary: what survived is looked at
            # before it catches up.
            r.write_config(replication={"name": tag + "-r", "role": "replica", "primary": dead_address(),
                                        "listen": "127.0.0.1:0", "sync_replicas": sync_replicas},
                           snapshot=NO_AUTO_SNAPSHOTS)
            r.start()
            after = r.status()["last_lsn"]
            data = full_scan(r)
            acked_now = {**frozen(ledger), **frozen(late)}  # and replies that were on their way at the kill
        except BaseException:
            ledger.join()
            if late is not None:
                late.join()
            raise
        missing = missing_on(acked, data, after)
        print("\npower loss on a replica (sync_replicas = %d): it ACKed LSN %d written, %d durable; restarted with %d; "
              "%d writes acknowledged, %d missing on it"
              % (sync_replicas, acked_by_r["written_lsn"], acked_by_r["durable_lsn"], after, len(acked), len(missing)))
        return {"p": p, "r": r, "p_addr": p_addr, "ledger": ledger, "late": late, "acked": acked,
                "acked_by_r": acked_by_r, "after": after, "missing": missing,
                "missing_now": missing_on(acked_now, data, after)}

    def test_power_loss_on_a_sync_replica(self):
        s = self.replica_power_loss(1)
        p, r, ledger, late = s["p"], s["r"], s["ledger"], s["late"]
        try:
            # Less than it ACKed as written, never less than it ACKed as durable.
            self.assertLess(s["after"], s["acked_by_r"]["written_lsn"])
            self.assertGreaterEqual(s["after"], s["acked_by_r"]["durable_lsn"])
            # Every write the primary acknowledged was covered by the
            # replica's durable ACK: all on it after the power cut.
            self.assertEqual(s["missing"], set(), "acknowledged writes lost with sync_replicas = 1")
            self.assertEqual(s["missing_now"], set(), "acknowledged writes lost with sync_replicas = 1")
            # It catches up; the writes that waited for it go through.
            mark = p.log_offset()
            self.assertEqual(r.kvctl("replicate", "--from", s["p_addr"]).rc, 0)
            p.wait_for_log(lambda t: "connected at LSN %d" % s["after"] in t, since=mark)
            self.wait_streaming(r)
            at = ledger.count()
            kvdtest.wait_until(lambda: ledger.count() > at + 200, what="writes after the replica caught up")
        finally:
            ledger.join()
            late.join()
        self.assertEqual(ledger.unexpected + late.unexpected, [])
        self.assertGreater(late.count(), 0)  # the writes it held were acknowledged once it had them durable
        data = self.wait_converged(p, [r])
        acked = {**frozen(ledger), **frozen(late)}
        self.assertEqual(missing_on(acked, data, p.status()["last_lsn"]), set())

    def test_power_loss_on_an_async_replica_loses_acknowledged_writes(self):
        """The same power cut with sync_replicas = 0: the primary acknowledged
        writes the replica had not made durable, and it restarts without
        them (promoting it now would lose them): the check can fail."""
        s = self.replica_power_loss(0)
        s["ledger"].join()
        s["late"].join()
        self.assertGreater(len(s["missing"]), 0, "nothing lost without synchronous replication: the setup proves nothing")
        self.assertLess(s["after"], s["acked_by_r"]["written_lsn"])


if __name__ == "__main__":
    kvdtest.main()
