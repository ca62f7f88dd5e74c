"""The wire protocol against a real kvd: pipelining, many connections, bad
frames, connection limits and the idle timeout."""

import os
import random
import select
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import Code, KvdTestCase, Op, encode_frame, put_payload, TIMEOUT


class Pipelining(KvdTestCase):
    def test_64_requests_in_flight_answered_in_order(self):
        kvd = self.server()
        with kvd.raw() as c:
            frames, expected = [], []
            ids = self.rng.sample(range(1, 1 << 62), 64)  # arbitrary, non-monotonic ids
            for i in range(32):
                key, value = b"pipe-%02d" % i, b"value-%d-%d" % (i, self.seed)
                frames.append(encode_frame(Op.PUT, put_payload(key, value), ids[2 * i]))
                expected.append((ids[2 * i], Op.PUT, None))
                # the GET right behind its PUT must see it (sync mode: after the PUT's fsync)
                frames.append(encode_frame(Op.GET, key, ids[2 * i + 1]))
                expected.append((ids[2 * i + 1], Op.GET, value))
            c.send(b"".join(frames))  # all 64 in flight before reading any reply
            last_lsn = 0
            for req_id, op, value in expected:
                r = c.recv_reply()
                self.assertEqual((r.request_id, r.opcode), (req_id, op), "replies out of order: %r" % r)
                self.assertEqual(r.status, Code.OK, r)
                if op == Op.PUT:
                    self.assertGreater(r.lsn, last_lsn, "LSNs must grow in request order")
                    last_lsn = r.lsn
                    self.assertGreaterEqual(r.durable_lsn, r.lsn, "sync mode acks only durable writes")
                else:
                    self.assertEqual(r.payload, value)
            self.assertEqual(c.count(b"pipe-"), 32)

    def test_pipelined_mixed_operations(self):
        kvd = self.server()
        with kvd.raw() as c:
            reqs = [
                (Op.PUT, put_payload("a", "1")),
                (Op.DEL, b"a"),
                (Op.GET, b"a"),
                (Op.BATCH, kvdtest.batch_payload([("put", "b", "2"), ("put", "c", "3"), ("del", "b")])),
                (Op.COUNT, b""),
                (Op.FLUSH, b""),
                (Op.PING, b""),
                (Op.GET, b"c"),
            ]
            c.send(b"".join(encode_frame(op, p, 100 + i) for i, (op, p) in enumerate(reqs)))
            replies = [c.recv_reply() for _ in reqs]
        self.assertEqual([r.request_id for r in replies], list(range(100, 100 + len(reqs))))
        self.assertEqual([r.status for r in replies],
                         [Code.OK, Code.OK, Code.NOT_FOUND, Code.OK, Code.OK, Code.OK, Code.OK, Code.OK])
        self.assertEqual(struct.unpack("<Q", replies[4].payload)[0], 1)  # only c is left
        self.assertGreaterEqual(replies[5].lsn, replies[3].lsn, "FLUSH's durable LSN covers the batch")
        self.assertEqual(replies[7].payload, b"3")


    def test_pipelined_reads_see_exactly_the_earlier_writes(self):
        # Random pipelines of PUT/DEL/BATCH/GET over a small key space on two
        # connections at once, so some GETs touch a key an earlier pending
        # write of their connection changes (they must wait and see it) and
        # some do not (kvd may answer them ahead of the writes). Each
        # connection has its own keys, so a sequential model per connection
        # predicts every reply.
        kvd = self.server()
        errors = []

        def run(conn_no):
            rng = random.Random(self.seed + conn_no)
            model = {}
            with kvd.raw() as c:
                for round_no in range(40):
                    frames, expected = [], []
                    for i in range(rng.randrange(1, 48)):
                        key = b"m%d:%d" % (conn_no, rng.randrange(12))
                        req_id = round_no * 1000 + i + 1
                        r = rng.random()
                        if r < 0.5:
                            frames.append(encode_frame(Op.GET, key, req_id))
                            expected.append((req_id, model.get(key)))
                        elif r < 0.75:
                            value = b"%d:%d:%d" % (conn_no, round_no, i)
                            frames.append(encode_frame(Op.PUT, put_payload(key, value), req_id))
                            model[key] = value
                            expected.append((req_id, "write"))
                        elif r < 0.85:
                            frames.append(encode_frame(Op.DEL, key, req_id))
                            model.pop(key, None)
                            expected.append((req_id, "write"))
                        else:
                            other = b"m%d:%d" % (conn_no, rng.randrange(12))
                            value = b"b%d:%d" % (round_no, i)
                            frames.append(encode_frame(Op.BATCH, kvdtest.batch_payload(
                                [("put", key, value), ("del", other)]), req_id))
                            model[key] = value
                            model.pop(other, None)  # in order: may delete what the PUT just wrote
                            expected.append((req_id, "write"))
                    c.send(b"".join(frames))
                    last_durable = 0
                    for req_id, want in expected:
                        rep = c.recv_reply()
                        if rep.request_id != req_id:
                            errors.append(f"conn {conn_no}: reply {rep.request_id} where {req_id} was due")
                            return
                        if rep.durable_lsn < last_durable:
                            errors.append(f"conn {conn_no}: durable_lsn went back to {rep.durable_lsn}")
                        last_durable = rep.durable_lsn
                        if want == "write":
                            if rep.status not in (Code.OK, Code.NOT_FOUND):
                                errors.append(f"conn {conn_no}: write {req_id} failed: {rep}")
                        elif want is None:
                            if rep.status != Code.NOT_FOUND:
                                errors.append(f"conn {conn_no}: GET {req_id} found {rep.payload!r}, expected none")
                        elif rep.status != Code.OK or rep.payload != want:
                            errors.append(f"conn {conn_no}: GET {req_id} got {rep.status} {rep.payload!r}, "
                                          f"expected {want!r}")

        threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        self.assertFalse(errors, f"seed {self.seed}:\n" + "\n".join(errors[:10]))


class ManyConnections(KvdTestCase):
    def test_200_concurrent_connections(self):
        kvd = self.server()
        n, per = 200, 5
        conns = [kvd.client() for _ in range(n)]  # kvd_proto clients, all open at once
        errors = []
        start = threading.Barrier(n)

        def worker(i, c):
            try:
                start.wait(TIMEOUT)
                for j in range(per):
                    c.put(b"c%03d-%d" % (i, j), b"v%d-%d" % (i, j)).check()
                for j in range(per):
                    got = c.get(b"c%03d-%d" % (i, j))
                    if (got.status, got.payload) != (Code.OK, b"v%d-%d" % (i, j)):
                        errors.append("conn %d key %d: got %r" % (i, j, got))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("conn %d: %r" % (i, e))

        threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(conns)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(TIMEOUT * 2)
            self.assertFalse(any(t.is_alive() for t in threads), "workers hung")
            self.assertEqual(errors, [])
            with kvd.raw() as c:
                self.assertEqual(c.count(), n * per)
                status = c.status()
            current = status.get("connections", {}).get("current")
            self.assertIsInstance(current, int, "status.connections.current: %r" % status)
            self.assertGreaterEqual(current, n + 1, "status counts the open connections")
        finally:
            for c in conns:
                c.close()


class BadFrames(KvdTestCase):
    """Each bad frame costs only its own connection; a good client on another
    connection keeps working and kvd keeps running."""

    def setUp(self):
        super().setUp()
        self.kvd = self.server(server={"max_frame_bytes": "64KiB"})
        self.good = self.kvd.raw()
        self.addCleanup(self.good.close)
        self.n = 0

    def good_client_works(self):
        self.n += 1
        key = b"good-%d" % self.n
        self.good.put(key, b"v%d" % self.n)
        self.assertEqual(self.good.get(key), b"v%d" % self.n)
        with self.kvd.raw() as fresh:  # and new clients are still accepted
            fresh.ping()
        self.assertTrue(self.kvd.running(), "kvd died:\n" + self.kvd.log_tail())

    def send_bad(self, data, close_write=False):
        """Sends data on a fresh connection; returns the replies that came
        before kvd closed it (fails if kvd keeps it open)."""
        self.good_client_works()
        with self.kvd.raw(timeout=TIMEOUT) as bad:
            bad.send(data)
            if close_write:
                bad.sock.shutdown(socket.SHUT_WR)
            try:
                replies = bad.wait_closed(TIMEOUT)
            except socket.timeout:
                self.fail("kvd kept the connection open after %r" % data[:40])
        self.good_client_works()
        for r in replies:
            self.assertNotEqual(r.status, Code.OK, "a bad frame got an OK reply: %r" % r)
        return replies

    def assert_one_reply(self, replies, request_id, status):
        """A protocol error gets exactly one error reply before the close
        (docs/wire_protocol.md: kvd can always send it to a client that reads).
        request_id None: the spec leaves it unspecified."""
        self.assertEqual(len(replies), 1, "expected one error reply before the close: %r" % replies)
        self.assertEqual(replies[0].status, status, replies[0])
        if request_id is not None:
            self.assertEqual(replies[0].request_id, request_id, replies[0])
        self.assertTrue(replies[0].payload, "error replies carry a message")

    def test_bad_magic(self):
        self.assert_one_reply(self.send_bad(encode_frame(Op.PING, b"", 7, magic=0x1234)), 7, Code.UNSUPPORTED)

    def test_bad_version(self):
        self.assert_one_reply(self.send_bad(encode_frame(Op.PING, b"", 8, version=99)), 8, Code.UNSUPPORTED)

    def test_unknown_opcode_gets_error_reply(self):
        replies = self.send_bad(encode_frame(0xEE, b"xyz", 42))
        self.assertEqual(len(replies), 1, "an unknown opcode can be answered: %r" % replies)
        self.assertEqual((replies[0].request_id, replies[0].status), (42, Code.UNSUPPORTED))
        self.assertTrue(replies[0].payload, "error replies carry a message")

    def test_truncated_frame_then_close(self):
        frame = encode_frame(Op.PUT, put_payload(b"k", b"v" * 100), 9)
        self.send_bad(frame[:40], close_write=True)
        with self.kvd.raw() as c:
            self.assertIsNone(c.get(b"k"), "a cut-off PUT must not be applied")

    def test_truncated_frame_then_connection_dropped(self):
        self.good_client_works()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.kvd.socket_path)
        s.sendall(encode_frame(Op.PUT, put_payload(b"k2", b"v" * 100), 9)[:30])
        s.close()
        self.good_client_works()
        with self.kvd.raw() as c:
            self.assertIsNone(c.get(b"k2"))

    def test_truncated_payload_inside_frame(self):
        # A whole frame whose PUT payload claims a key longer than the payload:
        # an error reply naming the request (kvd may then close the connection).
        payload = struct.pack("<I", 1000) + b"short"
        self.good_client_works()
        with self.kvd.raw() as bad:
            bad.send(encode_frame(Op.PUT, payload, 11))
            r = bad.recv_reply()
            self.assertEqual((r.request_id, r.status), (11, Code.INVALID_ARGUMENT), r)
        self.good_client_works()
        with self.kvd.raw() as c:
            self.assertEqual(c.count(), self.n, "the malformed PUT must not be applied")

    def test_length_over_max_frame_bytes(self):
        # 1 MiB > 64 KiB limit; only the header is sent: kvd must refuse on the length alone.
        head = struct.pack("<I", 1 << 20) + encode_frame(Op.PUT, b"", 12)[4:]
        self.assert_one_reply(self.send_bad(head), None, Code.TOO_LARGE)

    def test_length_4gib(self):
        replies = self.send_bad(struct.pack("<I", 0xFFFFFFFF) + encode_frame(Op.PING, b"", 13)[4:])
        self.assert_one_reply(replies, None, Code.TOO_LARGE)

    def test_length_too_small_for_header(self):
        self.assert_one_reply(self.send_bad(struct.pack("<I", 3) + b"abc"), None, Code.INVALID_ARGUMENT)

    def test_garbage(self):
        self.send_bad(os.urandom(4) + b"\x00" * 4 + bytes(self.rng.randrange(256) for _ in range(200)))

    def test_pending_good_requests_survive_a_bad_neighbour(self):
        # Pipelined good requests on the good connection while bad ones come and go.
        with self.kvd.raw() as piped:
            frames = b"".join(encode_frame(Op.PUT, put_payload(b"n%d" % i, b"x"), 1000 + i) for i in range(32))
            piped.send(frames)
            self.send_bad(encode_frame(0xEE, b"", 1))
            for i in range(32):
                r = piped.recv_reply()
                self.assertEqual((r.request_id, r.status), (1000 + i, Code.OK))


class ConnectionLimits(KvdTestCase):
    def test_max_connections_exceeded_gets_error_then_close(self):
        kvd = self.server(server={"max_connections": 4})
        conns = [kvd.raw() for _ in range(4)]
        try:
            for c in conns:
                c.ping()  # all four accepted and served
            with kvd.raw() as extra:
                try:
                    replies = extra.wait_closed(TIMEOUT)
                except socket.timeout:
                    self.fail("the 5th connection stayed open")
            self.assertEqual(len(replies), 1, "want one error frame before the close: %r" % replies)
            self.assertEqual(replies[0].status, Code.BUSY)
            self.assertTrue(replies[0].payload, "the error frame carries a message")
            for c in conns:
                c.ping()  # the others are unaffected
            conns.pop().close()

            # Once kvd has seen that close, a new client fits again.
            def fits():
                try:
                    with kvd.raw(timeout=5) as c:
                        c.send(encode_frame(Op.PING, b"", 77))
                        r = c.recv_reply()  # a refused client gets id 0, Busy
                        return (r.request_id, r.status) == (77, Code.OK)
                except (kvdtest.ConnectionClosed, OSError):
                    return False
            kvdtest.wait_until(fits, what="a free connection slot")
        finally:
            for c in conns:
                c.close()

    def test_idle_timeout_closes_idle_connection(self):
        kvd = self.server(server={"idle_timeout": "300ms"})
        with kvd.raw() as busy, kvd.raw() as idle:
            idle.ping()
            busy.ping()
            t0 = time.monotonic()
            # The busy client talks every 50 ms until kvd closes the idle one.
            while not select.select([idle.sock], [], [], 0.05)[0]:
                self.assertLess(time.monotonic() - t0, TIMEOUT, "the idle connection was not closed")
                busy.ping()
            try:
                idle.wait_closed(5)
            except socket.timeout:
                self.fail("the idle connection became readable but was not closed")
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 0.25, "closed before idle_timeout")
            self.assertLess(elapsed, 5, "closed long after idle_timeout")
            busy.ping()  # active for longer than idle_timeout, still open


if __name__ == "__main__":
    kvdtest.main()
