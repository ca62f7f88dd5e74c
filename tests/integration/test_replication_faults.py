"""Link faults between a replica and its primary (issue 15): through a fault
proxy on loopback (tests/util/fault_proxy.py) the link is cut, stalled past
the peer timeout, slowed to small late pieces, and dropped in the middle of a
WAL record, while a writer loads the primary. Each heals with no loss and no
record applied twice.

How a double application or a gap would show (each check fails on its own):
- the workload writes a counter key with increasing values (1, 2, 3, ...):
  a record applied again later, or one lost at the end, leaves another final
  value; a per-write ledger key (written once each) makes any lost record a
  missing key; a toggled key (PUT on even steps, DEL on odd) makes the final
  state depend on the last record of that key;
- the replica's full key/value set is compared with the primary's and with
  the test's own model of what was written;
- its last LSN equals the primary's, and the replica was empty at start, so
  STATUS records_received (records it appended from WAL messages) must equal
  that LSN: a record appended twice, or a WAL message appended after a cut
  and again after the reconnect, would make it larger;
- a replica refuses records that do not continue its log exactly, logging
  "bad_record": the log must not contain it.

Also: a replica whose HELLO claims an LSN from the future is refused
(`future_lsn`), logged, and clients are unaffected."""

import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, TIMEOUT  # noqa: E402
import kvd_proto  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402

CONVERGE_TIMEOUT = 60
PIPELINE = 16


class Workload:
    """One client writing to the primary in pipelined rounds until stopped (or
    `limit` steps). Step i: PUT ctr=i, PUT led:i, and PUT/DEL tog. The model
    holds what the primary acknowledged."""

    def __init__(self, server, limit=100000):
        self.server, self.limit = server, limit
        self.model = {}
        self.steps = 0
        self.stop = threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self.run)

    def run(self):
        try:
            with self.server.client() as c:
                i = 0
                while not self.stop.is_set() and i < self.limit:
                    reqs = []
                    for _ in range(PIPELINE // 4):
                        i += 1
                        reqs.append((kvd_proto.OP_PUT, kvd_proto.put_payload(b"ctr", b"%d" % i)))
                        reqs.append((kvd_proto.OP_PUT, kvd_proto.put_payload(b"led:%08d" % i, b"v%d" % i)))
                        if i % 2 == 0:
                            reqs.append((kvd_proto.OP_PUT, kvd_proto.put_payload(b"tog", b"t%d" % i)))
                        else:
                            reqs.append((kvd_proto.OP_DEL, b"tog"))
                    for op, payload in reqs:
                        c.send(op, payload)
                    for op, payload in reqs:
                        r = c.recv()
                        if op == kvd_proto.OP_DEL:
                            r.check(allow=(kvd_proto.OK, kvd_proto.NOT_FOUND))
                            self.model.pop(b"tog", None)
                        else:
                            r.check()
                            klen = struct.unpack_from("<I", payload)[0]
                            self.model[payload[4:4 + klen]] = payload[4 + klen:]
                    self.steps = i
        except Exception as e:  # noqa: BLE001 (reported by the test)
            self.errors.append(e)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(60)

    def wait_steps(self, n, what="writes"):
        kvdtest.wait_until(lambda: self.steps >= n or self.errors or not self.thread.is_alive(),
                           timeout=60, what=what)
        self.assertion_free()

    def assertion_free(self):
        if self.errors:
            raise self.errors[0]


def repl_status(server):
    return server.status()["replication"]


def full_scan(server):
    with server.client() as c:
        return dict(c.scan_all())


class LinkFaults(KvdTestCase):
    def setUp(self):
        super().setUp()
        self.p = self.server(replication={"name": "p", "listen": "127.0.0.1:0"})
        self.proxy = FaultProxy(repl_status(self.p)["port"])
        self.addCleanup(self.proxy.close)
        self.r = self.server(replication={"name": "r1", "role": "replica",
                                          "primary": "127.0.0.1:%d" % self.proxy.port})
        self.wait_streaming()

    def wait_streaming(self, since_connects=0):
        kvdtest.wait_until(lambda: repl_status(self.r)["receiver"]["state"] == "streaming"
                           and repl_status(self.r)["receiver"]["connects"] > since_connects,
                           timeout=CONVERGE_TIMEOUT, what="the replica streaming")

    def connects(self):
        return repl_status(self.r)["receiver"]["connects"]

    def check_healed(self, w):
        """No loss, nothing applied twice (see the module's docstring)."""
        w.assertion_free()
        self.assertGreater(w.steps, 0)
        last = self.p.status()["last_lsn"]
        kvdtest.wait_until(lambda: self.r.status()["applied_lsn"] >= last, timeout=CONVERGE_TIMEOUT,
                           what="the replica to apply LSN %d" % last)
        rs = self.r.status()
        self.assertEqual(rs["last_lsn"], last)
        self.assertEqual(rs["applied_lsn"], last)
        self.assertEqual(rs["replication"]["receiver"]["records_received"], last)
        primary_data = full_scan(self.p)
        replica_data = full_scan(self.r)
        self.assertEqual(primary_data, w.model)
        self.assertEqual(replica_data, primary_data)
        self.assertEqual(replica_data[b"ctr"], b"%d" % w.steps)
        self.assertEqual(sum(1 for k in replica_data if k.startswith(b"led:")), w.steps)
        self.assertEqual(b"tog" in replica_data, w.steps % 2 == 0)
        self.assertNotIn("bad_record", self.r.log_text())
        # The replica's ACKs reached the primary: it reports it caught up.
        kvdtest.wait_until(lambda: repl_status(self.p)["replicas"]
                           and repl_status(self.p)["replicas"][0]["durable_lsn"] == last
                           and repl_status(self.p)["replicas"][0]["lag_ms"] == 0, what="the primary to see it")

    def test_cut_mid_stream_three_times(self):
        with Workload(self.p) as w:
            for round_ in range(3):
                w.wait_steps(200 * (round_ + 1))
                before = self.connects()
                self.assertGreaterEqual(self.proxy.cut(), 1)
                self.wait_streaming(since_connects=before)
            w.wait_steps(w.steps + 100)
        self.assertGreaterEqual(self.proxy.accepted, 4)
        self.check_healed(w)

    def test_drop_mid_record_three_times(self):
        with Workload(self.p) as w:
            for n in range(1, 4):
                w.wait_steps(150 * n)
                before = self.connects()
                self.proxy.drop_mid_record()
                kvdtest.wait_until(lambda: self.proxy.drops >= n, what="a WAL message cut inside its records")
                self.wait_streaming(since_connects=before)
            w.wait_steps(w.steps + 100)
        self.assertEqual(self.proxy.drops, 3)
        self.check_healed(w)

    def test_stall_past_the_peer_timeout_then_heal(self):
        # Both ends give up on a link that stays silent for the peer timeout
        # (5 s), close it and the replica reconnects; nothing is lost.
        with Workload(self.p) as w:
            w.wait_steps(100)
            before = self.connects()
            mark = self.r.log_offset()
            self.proxy.stall()
            self.r.wait_for_log(lambda line: "nothing heard from the primary" in line, since=mark, timeout=20)
            self.proxy.resume()
            self.wait_streaming(since_connects=before)
            w.wait_steps(w.steps + 100)
        self.check_healed(w)

    def test_short_stall_heals_without_a_reconnect(self):
        with Workload(self.p) as w:
            w.wait_steps(100)
            before = self.connects()
            self.proxy.stall()
            at = w.steps
            w.wait_steps(at + 60, what="writes on the primary during the stall")  # the primary does not wait
            self.proxy.resume()
            w.wait_steps(w.steps + 100)
        self.check_healed(w)
        self.assertEqual(self.connects(), before)  # the same connection carried on

    def test_slow_link_delivers_frames_in_pieces(self):
        self.proxy.slow(chunk=1500, delay=0.0005)
        with Workload(self.p, limit=800) as w:
            w.thread.join(60)
        self.assertEqual(w.steps, 800)
        self.check_healed(w)
        self.assertEqual(self.connects(), 1)


def crc32c(data, _table=[]):
    if not _table:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _table.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = _table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def repl_frame(msg_type, epoch, body):
    """docs/replication.md section 3: length, type, epoch, body, masked CRC32C."""
    head = struct.pack("<BQ", msg_type, epoch) + body
    return struct.pack("<I", len(head) + 4) + head + struct.pack("<I", masked(crc32c(head)))


def hello(name, last_lsn, durable_lsn, history):
    body = struct.pack("<I", 1) + struct.pack("<H", len(name)) + name
    body += struct.pack("<QQI", last_lsn, durable_lsn, len(history))
    for epoch, first in history:
        body += struct.pack("<QQ", epoch, first)
    return repl_frame(1, history[-1][0] if history else 0, body)


class HostileReplica(KvdTestCase):
    def test_a_replica_claiming_an_lsn_from_the_future_is_refused_and_clients_are_unaffected(self):
        p = self.server(replication={"name": "p", "listen": "127.0.0.1:0"})
        port = repl_status(p)["port"]
        with p.client() as c:
            for i in range(5):
                c.put(b"k%d" % i, b"v").check()
        st = p.status()
        last, epoch = st["last_lsn"], st["epoch"]
        history = [(epoch, 1)] if epoch else []
        mark = p.log_offset()
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(hello(b"liar", last + 1000, last + 1000, history))
            got = b""
            while True:  # an ERROR frame, then the primary closes
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        self.assertIn(b"future_lsn", got)
        self.assertEqual(got[4], 9)  # ERROR
        p.wait_for_log(lambda line: "liar" in line and "future_lsn" in line, since=mark)
        # Nothing changed and clients are served.
        self.assertEqual(p.status()["last_lsn"], last)
        self.assertEqual(p.kvctl("put", "after", "liar").rc, 0)
        self.assertEqual(p.kvctl("count").out, "6\n")
        self.assertEqual(repl_status(p)["replicas"], [])


if __name__ == "__main__":
    kvdtest.main()
