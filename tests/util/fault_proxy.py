"""A small TCP fault proxy for replication tests (loopback only, bounded).

It sits between a replica and its primary (the replica's `primary` points at
the proxy) and forwards both directions, one thread per connection. The test
can then hurt the link:

    proxy = FaultProxy(primary_repl_port)       # listens on 127.0.0.1:proxy.port
    proxy.cut()              # reset every open connection (RST): a link cut
    proxy.stall(); ...; proxy.resume()   # forward nothing for a while
    proxy.slow(chunk=97, delay=0.002)    # primary -> replica in small, late pieces
    proxy.drop_mid_record()  # the next WAL message is cut inside its records
    proxy.close()

Primary -> replica bytes are parsed as replication frames (docs/replication.md
section 3: u32 length, u8 type, ...), so `drop_mid_record` can cut a WAL
message (type 3) in the middle of its records: the replica gets a frame's
first half and then a reset. Every loop polls with a short timeout and stops
when the proxy closes; nothing runs unbounded.
"""

import select
import socket
import struct
import threading
import time

WAL = 3
# length(4) + type(1) + epoch(8), then the WAL header: four u64.
_WAL_RECORDS_AT = 4 + 1 + 8 + 32
_POLL = 0.02


def _reset(sock):
    """Close with RST (SO_LINGER 0): the peer sees a cut, not an orderly end."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Conn:
    def __init__(self, proxy, client, server):
        self.proxy, self.client, self.server = proxy, client, server
        self.kill = False
        self.paused = False  # it saw the stall: it reads and sends nothing until resumed
        self.to_client = bytearray()  # primary -> replica, not yet forwarded
        self.under_way = memoryview(b"")  # the rest of the frame being forwarded
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        try:
            self._loop()
        except OSError:
            pass
        finally:
            _reset(self.client)
            _reset(self.server)
            with self.proxy.lock:
                if self in self.proxy.conns:
                    self.proxy.conns.remove(self)

    def _loop(self):
        p = self.proxy
        while not self.kill and not p.closed:
            if p.stalled:
                self.paused = True
                time.sleep(_POLL)  # read nothing, send nothing: the kernel buffers fill
                continue
            self.paused = False
            ready, _, _ = select.select([self.client, self.server], [], [], _POLL)
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return  # one side ended: end the other too
                if s is self.client:
                    self.server.sendall(data)  # replica -> primary: HELLO, ACKs, heartbeats
                    p.bytes_up += len(data)
                else:
                    self.to_client += data
            if not self._forward_down():
                return

    def _forward_down(self):
        """Sends the whole frames the replica may have; False when the
        connection is cut. Only whole frames leave (in pieces when slow), so
        the parser stays on frame boundaries whatever the mode."""
        p = self.proxy
        if not self._send_frame_under_way():
            return False
        while not self.under_way and len(self.to_client) >= 5:
            (length,) = struct.unpack_from("<I", self.to_client)
            whole = 4 + length
            if p.drop_armed and self.to_client[4] == WAL and len(self.to_client) >= _WAL_RECORDS_AT + 2:
                # Cut inside the records: forward the headers and part of the
                # records (of what arrived, if the frame is still coming).
                have = min(whole, len(self.to_client))
                cut = _WAL_RECORDS_AT + max(1, (have - _WAL_RECORDS_AT) // 2)
                self.client.sendall(bytes(self.to_client[:cut]))
                p.bytes_down += cut
                with p.lock:
                    p.drop_armed = False
                    p.drops += 1
                return False
            if len(self.to_client) < whole:
                break
            self.under_way = memoryview(bytes(self.to_client[:whole]))
            del self.to_client[:whole]
            p.bytes_down += whole
            if not self._send_frame_under_way():
                return False
        return True

    def _send_frame_under_way(self):
        """Sends the frame under way: at once, or in small late pieces when
        slow. A stall stops it between two pieces (a 256 KiB frame takes
        seconds to trickle through) and it goes on from there on resume;
        False when the connection is cut."""
        p = self.proxy
        while self.under_way:
            if self.kill or p.closed:
                return False
            if p.stalled:
                return True
            piece = p.slow_chunk or len(self.under_way)
            self.client.sendall(self.under_way[:piece])
            self.under_way = self.under_way[piece:]
            if p.slow_chunk:
                time.sleep(p.slow_delay)
        return True


class FaultProxy:
    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.lock = threading.Lock()
        self.conns = []
        self.closed = False
        self.stalled = False
        self.slow_chunk = 0
        self.slow_delay = 0.0
        self.drop_armed = False
        self.drops = 0
        self.accepted = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(_POLL * 5)
        self.port = self.listener.getsockname()[1]
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)  # the primary is down: so is the link
                continue
            client.setblocking(True)
            server.setblocking(True)
            conn = _Conn(self, client, server)
            with self.lock:
                self.conns.append(conn)
                self.accepted += 1
            conn.thread.start()

    def connections(self):
        with self.lock:
            return len(self.conns)

    def cut(self, timeout=5.0):
        """Resets every open connection; returns once their threads ended."""
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            c.kill = True
        for c in conns:
            c.thread.join(timeout)
        return len(conns)

    def stall(self, timeout=5.0):
        """From its return on, no byte crosses in either direction."""
        self.stalled = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(c.paused for c in self.conns):
                    return
            time.sleep(_POLL / 4)
        raise AssertionError("fault proxy: a connection did not stall within %.0f s" % timeout)

    def resume(self):
        self.stalled = False

    def slow(self, chunk=97, delay=0.002):
        self.slow_delay = delay
        self.slow_chunk = chunk

    def fast(self):
        self.slow_chunk = 0

    def drop_mid_record(self):
        """Arms a cut inside the next WAL message's records."""
        with self.lock:
            self.drop_armed = True

    def close(self):
        self.closed = True
        self.stalled = False
        try:
            self.listener.close()
        except OSError:
            pass
        self.acceptor.join(5)
        self.cut()
