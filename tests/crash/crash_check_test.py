#!/usr/bin/env python3
"""The crash loop's checks fail on the histories they exist to catch.

Each test builds a cycle's ledger by hand (writes sent, some answered with an
LSN), a "recovered" state and LSN, and runs crash_check.Checker on it: a
correct recovery passes, and each kind of wrong recovery is reported. No kvd
is started.
"""
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "util"))
import kvd_proto as kp  # noqa: E402
from crash_check import Checker, Ledger  # noqa: E402


def ok(lsn, durable=None):
    return kp.Reply(kp.OP_PUT, kp.OK, 0, lsn if durable is None else durable, lsn, b"")


def put(key, value):
    return [(key.encode(), value.encode())]


class History:
    """One cycle: writes sent and answered in the order the test calls them."""

    def __init__(self):
        self.ledger = Ledger(None)
        self.seq = {}

    def send(self, wid, ops):
        self.seq[wid] = self.seq.get(wid, 0) + 1
        return self.ledger.send(wid, self.seq[wid], ops)

    def ack(self, w, lsn, durable=None):
        self.ledger.answer(w, ok(lsn, durable))


def check(h, recovered, got, mode="sync", batch_size=64, baseline=None, base_lsn=0):
    c = Checker(mode, batch_size, quiet=True)
    c.baseline, c.base_lsn = dict(baseline or {}), base_lsn
    c.check_cycle(1, h.ledger, recovered, {k.encode(): v.encode() for k, v in got.items()})
    return c.errors


class CheckerTest(unittest.TestCase):
    def test_a_correct_recovery_passes(self):
        h = History()
        a = h.send(0, put("u:0:1:1", "a"))
        h.ack(a, 1)
        b = h.send(1, put("s:1", "b"))
        h.ack(b, 2)
        h.send(1, put("s:1", "c"))  # in flight, applied
        self.assertEqual(check(h, 3, {"u:0:1:1": "a", "s:1": "c"}), [])
        self.assertEqual(check(h, 2, {"u:0:1:1": "a", "s:1": "b"}), [])

    def test_a_write_failed_by_an_io_error_may_be_there_one_refused_for_space_may_not(self):
        h = History()
        h.ack(h.send(0, put("s:1", "a")), 1)
        w = h.send(1, put("s:1", "b"))
        h.ledger.answer(w, kp.Reply(kp.OP_PUT, kp.WRITES_REFUSED, 0, 1, 0, b"a WAL write failed"))
        # Its bytes reached the disk before the failure: fine, in history order.
        self.assertEqual(check(h, 2, {"s:1": "b"}), [])
        self.assertEqual(check(h, 1, {"s:1": "a"}), [])
        h2 = History()
        h2.ack(h2.send(0, put("s:1", "a")), 1)
        w2 = h2.send(1, put("s:1", "b"))
        h2.ledger.answer(w2, kp.Reply(kp.OP_PUT, kp.NO_SPACE, 0, 1, 0, b"disk full"))
        errors = check(h2, 2, {"s:1": "b"})
        self.assertTrue(any("key b's:1'" in e for e in errors), errors)

    def test_a_lost_acknowledged_write_fails(self):
        h = History()
        h.ack(h.send(0, put("u:0:1:1", "a")), 1)
        h.ack(h.send(0, put("u:0:1:2", "b")), 2)
        errors = check(h, 1, {"u:0:1:1": "a"})
        self.assertTrue(any("acknowledged writes above recovered LSN" in e for e in errors), errors)

    def test_an_in_flight_value_out_of_history_order_fails(self):
        # W was sent after the write at LSN 5 was acknowledged, so its LSN is
        # above 5: with the state recovered to LSN 5 its value cannot show.
        h = History()
        a = h.send(0, put("s:7", "acked"))
        h.ack(a, 5)
        h.send(1, put("s:7", "inflight"))
        errors = check(h, 5, {"s:7": "inflight"}, base_lsn=4)
        self.assertTrue(any("key b's:7'" in e for e in errors), errors)
        # Recovered to LSN 6, the same value is fine: W got LSN 6.
        self.assertEqual(check(h, 6, {"s:7": "inflight"}, base_lsn=4), [])

    def test_an_in_flight_value_older_than_the_last_acknowledged_write_fails(self):
        # W went out before A was acknowledged (either order is possible), but
        # A is acknowledged at LSN 3 and the state goes up to LSN 3 only: W, in
        # flight, could have an LSN below 3 only if A's value were on top.
        h = History()
        h.send(1, put("s:2", "old-inflight"))
        a = h.send(0, put("s:2", "acked"))
        h.ack(a, 3)
        errors = check(h, 3, {"s:2": "old-inflight"}, base_lsn=2)
        self.assertTrue(any("key b's:2'" in e for e in errors), errors)

    def test_a_hole_on_one_connection_fails(self):
        # Writer 0's second write is missing while its third is there.
        h = History()
        h.ack(h.send(0, put("u:0:1:1", "a")), 1)
        h.send(0, put("u:0:1:2", "b"))
        h.send(0, put("u:0:1:3", "c"))
        errors = check(h, 3, {"u:0:1:1": "a", "u:0:1:3": "c"})
        self.assertTrue(any("missing before a later one" in e for e in errors), errors)

    def test_a_write_acknowledged_before_one_that_is_there_must_be_there(self):
        # Batch mode may lose acknowledged writes, but only a suffix: writer 1's
        # write went out after writer 0's was acknowledged, so if it is there,
        # writer 0's must be too.
        h = History()
        a = h.send(0, put("u:0:1:1", "a"))
        h.ack(a, 1, durable=0)
        b = h.send(1, put("u:1:1:1", "b"))
        h.ack(b, 2, durable=0)
        errors = check(h, 2, {"u:1:1:1": "b"}, mode="batch")
        self.assertTrue(any("acknowledged before a write that is there" in e for e in errors), errors)
        self.assertEqual(check(h, 0, {}, mode="batch"), [])  # both lost: within the bound

    def test_batch_mode_loss_bound(self):
        h = History()
        for i in range(1, 5):
            h.ack(h.send(0, put("u:0:1:%d" % i, "v%d" % i)), i, durable=0)
        self.assertEqual(check(h, 0, {}, mode="batch", batch_size=5), [])
        errors = check(h, 0, {}, mode="batch", batch_size=4)
        self.assertTrue(any("acknowledged writes lost, batch_size 4" in e for e in errors), errors)

    def test_more_in_flight_values_than_lsns_fails(self):
        # Two in-flight writes show, but the recovered LSN leaves room for one.
        h = History()
        h.send(0, put("s:1", "x"))
        h.send(1, put("s:2", "y"))
        errors = check(h, 1, {"s:1": "x", "s:2": "y"})
        self.assertTrue(any("LSNs in (0, 1]" in e for e in errors), errors)

    def test_too_little_work_fails(self):
        c = Checker(min_acked_per_cycle=10, max_connect_failures=0, quiet=True)
        c.acked = 99
        c.check_work(10)
        self.assertTrue(any("only 99 writes acknowledged" in e for e in c.errors), c.errors)
        c = Checker(min_acked_per_cycle=10, max_connect_failures=0, quiet=True)
        c.acked, c.connect_failures = 100, 1
        c.check_work(10)
        self.assertTrue(any("connections failed" in e for e in c.errors), c.errors)


if __name__ == "__main__":
    unittest.main(verbosity=2)
