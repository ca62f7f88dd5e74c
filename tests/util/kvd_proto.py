"""kvd wire protocol (docs/wire_protocol.md) in Python 3, standard library only.

Used by the integration, crash and hostile-client tests. An independent
implementation of the spec, so it also cross-checks the C++ codec.

    c = KvdClient("/tmp/kvd.sock")
    r = c.put(b"k", b"v", durable=True)      # Reply(status=0, lsn=.., durable_lsn=..)
    c.get(b"k").payload                       # b"v"  (status NOT_FOUND if absent)
    ids = [c.send(OP_GET, b"k") for _ in range(64)]   # pipelining
    replies = [c.recv() for _ in ids]

Every call returns a Reply with the header fields; nothing raises on a
non-OK status (check reply.ok or use reply.check()). Socket errors raise
OSError/KvdConnectionClosed.
"""

import json
import socket
import struct

MAGIC = 0x564B
VERSION = 1
REQUEST_HEADER = struct.Struct("<HBBHHQ")        # magic version opcode flags reserved request_id
REPLY_HEADER = struct.Struct("<HBBHHQQQ")        # magic version opcode status flags id durable_lsn lsn
FLAG_DURABLE = 1
FLAG_MIN_LSN = 2  # GET, SCAN, COUNT: the payload starts with a u64 minimum LSN
MAX_SCAN_LIMIT = 10000

OP_PING, OP_GET, OP_PUT, OP_DEL, OP_BATCH, OP_SCAN, OP_COUNT = 1, 2, 3, 4, 5, 6, 7
OP_FLUSH, OP_SNAPSHOT, OP_STATUS, OP_CONFIG_GET, OP_CONFIG_SET = 8, 9, 10, 11, 12
OP_DEL_RANGE, OP_BACKUP_BEGIN, OP_BACKUP_READ, OP_BACKUP_END = 13, 14, 15, 16
OPCODE_NAMES = {1: "PING", 2: "GET", 3: "PUT", 4: "DEL", 5: "BATCH", 6: "SCAN", 7: "COUNT",
                8: "FLUSH", 9: "SNAPSHOT", 10: "STATUS", 11: "CONFIG_GET", 12: "CONFIG_SET",
                13: "DEL_RANGE", 14: "BACKUP_BEGIN", 15: "BACKUP_READ", 16: "BACKUP_END"}

# Status codes (kvd::Code).
OK, NOT_FOUND, INVALID_ARGUMENT, TOO_LARGE, WRITES_REFUSED, NO_SPACE = 0, 1, 2, 3, 4, 5
IO_ERROR, CORRUPTION, BUSY, SHUTTING_DOWN, UNSUPPORTED, INTERNAL = 6, 7, 8, 9, 10, 11
NOT_PRIMARY, FENCED, TIMED_OUT = 12, 13, 14
STATUS_NAMES = {0: "OK", 1: "NotFound", 2: "InvalidArgument", 3: "TooLarge", 4: "WritesRefused",
                5: "NoSpace", 6: "IOError", 7: "Corruption", 8: "Busy", 9: "ShuttingDown",
                10: "Unsupported", 11: "Internal", 12: "NotPrimary", 13: "Fenced",
                14: "TimedOut"}

BATCH_PUT, BATCH_DEL = 1, 2
SCAN_PREFIX, SCAN_RANGE = 0, 1


def _b(x):
    """bytes from bytes/str (UTF-8)."""
    if isinstance(x, str):
        return x.encode()
    return bytes(x)


class KvdError(Exception):
    """A non-OK reply turned into an exception by Reply.check()."""

    def __init__(self, reply):
        super().__init__("%s: %s" % (STATUS_NAMES.get(reply.status, reply.status),
                                     reply.payload.decode(errors="replace")))
        self.reply = reply
        self.status = reply.status


class KvdConnectionClosed(ConnectionError):
    pass


class KvdProtocolError(Exception):
    pass


class Reply:
    """A reply frame's header fields and payload. The convenience calls add
    decoded extras: scan -> items, more; count -> value; status/config_get -> json."""

    def __init__(self, opcode, status, request_id, durable_lsn, lsn, payload):
        self.opcode, self.status, self.request_id = opcode, status, request_id
        self.durable_lsn, self.lsn, self.payload = durable_lsn, lsn, payload

    @property
    def ok(self):
        return self.status == OK

    @property
    def status_name(self):
        return STATUS_NAMES.get(self.status, "Unknown(%d)" % self.status)

    @property
    def message(self):
        return "" if self.status in (OK, NOT_FOUND) else self.payload.decode(errors="replace")

    def check(self, allow=(OK,)):
        if self.status not in allow:
            raise KvdError(self)
        return self

    def __repr__(self):
        return "Reply(%s %s id=%d durable_lsn=%d lsn=%d payload=%r)" % (
            OPCODE_NAMES.get(self.opcode, self.opcode), self.status_name, self.request_id,
            self.durable_lsn, self.lsn, self.payload[:64])


# ---- codec ---------------------------------------------------------------------

def encode_request(opcode, payload=b"", request_id=0, flags=0, magic=MAGIC, version=VERSION, reserved=0):
    payload = _b(payload)
    header = REQUEST_HEADER.pack(magic, version, opcode, flags, reserved, request_id)
    return struct.pack("<I", len(header) + len(payload)) + header + payload


def encode_reply(opcode, status, request_id, durable_lsn=0, lsn=0, payload=b""):
    header = REPLY_HEADER.pack(MAGIC, VERSION, opcode, status, 0, request_id, durable_lsn, lsn)
    return struct.pack("<I", len(header) + len(payload)) + header + _b(payload)


def split_frame(buf, header_bytes=REPLY_HEADER.size, max_frame=1 << 30):
    """Length of the first whole frame in buf, or None if incomplete."""
    if len(buf) < 4:
        return None
    (length,) = struct.unpack_from("<I", buf)
    if length > max_frame or length < header_bytes:
        raise KvdProtocolError("bad frame length %d" % length)
    return 4 + length if len(buf) >= 4 + length else None


def decode_reply(frame):
    if len(frame) < 4 + REPLY_HEADER.size:
        raise KvdProtocolError("reply frame too short")
    (length,) = struct.unpack_from("<I", frame)
    if length != len(frame) - 4:
        raise KvdProtocolError("reply length mismatch")
    magic, version, opcode, status, _flags, rid, durable, lsn = REPLY_HEADER.unpack_from(frame, 4)
    if magic != MAGIC or version != VERSION:
        raise KvdProtocolError("bad reply magic/version %#x/%d" % (magic, version))
    return Reply(opcode, status, rid, durable, lsn, bytes(frame[4 + REPLY_HEADER.size:]))


def decode_request(frame):
    """(opcode, flags, request_id, payload) of a request frame (for fake servers)."""
    (length,) = struct.unpack_from("<I", frame)
    if length != len(frame) - 4 or length < REQUEST_HEADER.size:
        raise KvdProtocolError("request length mismatch")
    magic, version, opcode, flags, reserved, rid = REQUEST_HEADER.unpack_from(frame, 4)
    if magic != MAGIC or version != VERSION:
        raise KvdProtocolError("bad magic/version")
    return opcode, flags, rid, bytes(frame[4 + REQUEST_HEADER.size:])


def _lp(b):
    b = _b(b)
    return struct.pack("<I", len(b)) + b


def put_payload(key, value):
    return _lp(key) + _b(value)


def batch_payload(ops):
    """ops: iterable of ("put", key, value) / ("del", key)."""
    ops = list(ops)
    out = [struct.pack("<I", len(ops))]
    for op in ops:
        if op[0] in ("put", BATCH_PUT):
            out.append(struct.pack("<B", BATCH_PUT) + _lp(op[1]) + _lp(op[2]))
        elif op[0] in ("del", BATCH_DEL):
            out.append(struct.pack("<B", BATCH_DEL) + _lp(op[1]))
        else:
            raise ValueError("batch op must be put or del: %r" % (op,))
    return b"".join(out)


def scan_payload(prefix=None, start=None, end=b"", after=b"", limit=0):
    if prefix is not None:
        return struct.pack("<BI", SCAN_PREFIX, limit) + _lp(prefix) + _lp(b"") + _lp(after)
    return struct.pack("<BI", SCAN_RANGE, limit) + _lp(start or b"") + _lp(end) + _lp(after)


def decode_scan_reply(payload):
    """([(key, value), ...], more)."""
    pos = 0

    def take(n):
        nonlocal pos
        if n > len(payload) - pos:
            raise KvdProtocolError("truncated SCAN reply")
        pos += n
        return payload[pos - n:pos]

    (count,) = struct.unpack("<I", take(4))
    items = []
    for _ in range(count):
        (klen,) = struct.unpack("<I", take(4))
        k = take(klen)
        (vlen,) = struct.unpack("<I", take(4))
        items.append((k, take(vlen)))
    (more,) = struct.unpack("<B", take(1))
    if pos != len(payload) or more > 1:
        raise KvdProtocolError("malformed SCAN reply")
    return items, more == 1


def del_range_payload(prefix=None, start=None, end=b""):
    """DEL_RANGE: every key with `prefix`, or every key in [start, end) (empty end: unbounded)."""
    if prefix is not None:
        return struct.pack("<B", 0) + _lp(_b(prefix)) + _lp(b"")
    return struct.pack("<B", 1) + _lp(_b(start)) + _lp(_b(end))


def config_set_payload(name, value):
    return _lp(name) + _b(value)


# ---- client --------------------------------------------------------------------

class KvdClient:
    def __init__(self, path, timeout=30.0):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.next_id = 1
        self.buf = bytearray()
        self.pending = []  # request ids sent, replies not yet read

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # raw / pipelined
    def send_raw(self, data):
        """Sends bytes as they are (hostile-client tests)."""
        self.sock.sendall(_b(data))

    def send(self, opcode, payload=b"", flags=0):
        """Sends one request without waiting; returns its id."""
        rid = self.next_id
        self.next_id += 1
        self.sock.sendall(encode_request(opcode, payload, rid, flags))
        self.pending.append(rid)
        return rid

    def send_many(self, requests):
        """requests: [(opcode, payload[, flags])]; one sendall; returns ids."""
        frames, ids = [], []
        for r in requests:
            rid = self.next_id
            self.next_id += 1
            frames.append(encode_request(r[0], r[1] if len(r) > 1 else b"", rid, r[2] if len(r) > 2 else 0))
            ids.append(rid)
        self.sock.sendall(b"".join(frames))
        self.pending.extend(ids)
        return ids

    def recv(self):
        """The next reply frame (blocks); raises KvdConnectionClosed at EOF."""
        while True:
            n = split_frame(self.buf)
            if n is not None:
                reply = decode_reply(bytes(self.buf[:n]))
                del self.buf[:n]
                if self.pending and reply.request_id == self.pending[0]:
                    self.pending.pop(0)
                return reply
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise KvdConnectionClosed("kvd socket %s: connection closed by the server" % self.path)
            self.buf += chunk

    def call(self, opcode, payload=b"", flags=0):
        rid = self.send(opcode, payload, flags)
        reply = self.recv()
        if reply.request_id != rid and not (reply.request_id == 0 and not reply.ok):
            raise KvdProtocolError("reply id %d != request id %d" % (reply.request_id, rid))
        return reply

    # convenience: each returns the Reply (status, durable_lsn, lsn, payload)
    def ping(self):
        return self.call(OP_PING)

    def read_call(self, opcode, payload, min_lsn=0):
        """A read; with min_lsn, kFlagMinLsn and the LSN in front of the payload."""
        if not min_lsn:
            return self.call(opcode, payload)
        return self.call(opcode, struct.pack("<Q", min_lsn) + _b(payload), FLAG_MIN_LSN)

    def get(self, key, min_lsn=0):
        return self.read_call(OP_GET, _b(key), min_lsn)

    def put(self, key, value, durable=False):
        return self.call(OP_PUT, put_payload(key, value), FLAG_DURABLE if durable else 0)

    def delete(self, key, durable=False):
        return self.call(OP_DEL, _b(key), FLAG_DURABLE if durable else 0)

    def batch(self, ops, durable=False):
        return self.call(OP_BATCH, batch_payload(ops), FLAG_DURABLE if durable else 0)

    def scan(self, prefix=None, start=None, end=b"", after=b"", limit=0, min_lsn=0):
        """Reply with .items and .more set when OK."""
        r = self.read_call(OP_SCAN, scan_payload(prefix, start, end, after, limit), min_lsn)
        if r.ok:
            items, more = decode_scan_reply(r.payload)
            r.items, r.more = items, more
        return r

    def scan_all(self, prefix=None, start=None, end=b"", limit=0):
        """Every (key, value), following continuations."""
        out, after = [], b""
        while True:
            r = self.scan(prefix, start, end, after, limit).check()
            out.extend(r.items)
            if not r.more or not r.items:
                return out
            after = r.items[-1][0]

    def count(self, prefix=b"", min_lsn=0):
        """Reply with .value (the count) when OK."""
        r = self.read_call(OP_COUNT, _b(prefix), min_lsn)
        if r.ok:
            (r.value,) = struct.unpack("<Q", r.payload)
        return r

    def flush(self):
        return self.call(OP_FLUSH)

    def snapshot(self):
        return self.call(OP_SNAPSHOT)

    def status(self):
        """Reply with .json (a dict) when OK."""
        r = self.call(OP_STATUS)
        if r.ok:
            r.json = json.loads(r.payload)
        return r

    def config_get(self, name=b""):
        r = self.call(OP_CONFIG_GET, _b(name))
        if r.ok:
            r.json = json.loads(r.payload)
        return r

    def config_set(self, name, value):
        return self.call(OP_CONFIG_SET, config_set_payload(name, value))


def _self_test():
    """Encode/decode round trips against the spec's examples (no server)."""
    f = encode_request(OP_PUT, put_payload(b"user:1", b"alice"), 2, FLAG_DURABLE)
    assert f.hex() == ("1f000000" "4b56" "01" "03" "0100" "0000" "0200000000000000"
                       "06000000" "757365723a31" "616c696365"), f.hex()
    assert decode_request(f) == (OP_PUT, FLAG_DURABLE, 2, put_payload(b"user:1", b"alice"))
    r = decode_reply(encode_reply(OP_PUT, OK, 2, 42, 42))
    assert (r.opcode, r.status, r.request_id, r.durable_lsn, r.lsn, r.payload) == (OP_PUT, OK, 2, 42, 42, b"")
    assert split_frame(f[:10], REQUEST_HEADER.size) is None and split_frame(f, REQUEST_HEADER.size) == len(f)
    sr = struct.pack("<I", 1) + _lp(b"k") + _lp(b"v") + b"\x01"
    assert decode_scan_reply(sr) == ([(b"k", b"v")], True)
    assert batch_payload([("put", b"a", b"1"), ("del", b"b")]).hex() == \
        "02000000" "01" "01000000" "61" "01000000" "31" "02" "01000000" "62"
    print("kvd_proto self-test ok")


if __name__ == "__main__":
    _self_test()
