"""A real 3-member etcd cluster on loopback for the cluster tests.

Starts /usr/bin/etcd (or $ETCD_BIN) three times on free 127.0.0.1 ports with
temp data dirs and a static --initial-cluster, waits until every member
answers its v3 JSON gateway and the cluster has a leader, and can kill,
restart or kill the etcd leader. stop() kills only the pids it started and
removes its temp dir (KVD_KEEP_TMP=1 keeps it). Python 3 standard library
only.

    with EtcdCluster() as c:
        c.endpoints()           # ["http://127.0.0.1:p1", ...]
        c.kill_leader()         # -> name of the killed member
        c.restart(name)

With tls (an etcd_tls.Pki): https:// client URLs on the server
certificate, --client-cert-auth against the Pki's CA, and the harness's own
gateway requests use the Pki's client certificate (ssl_context).

In network namespaces (jepsen_cluster.py): hosts gives each member's address
(fixed ports 2379/2380, each namespace has its own), wrap(name) the command
prefix that starts it there, and call(fn, *args) runs the driver's gateway
requests where those addresses are reachable.
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")
TIMEOUT = float(os.environ.get("KVD_TEST_TIMEOUT", "30"))


def etcd_available():
    return os.access(ETCD_BIN, os.X_OK)


def _free_ports(n):
    """n distinct free loopback ports (bound together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def gateway(endpoint, path, body, timeout=2.0, context=None):
    """POSTs JSON to the v3 gateway; returns the decoded reply (raises on
    an HTTP or connection error). context: an ssl.SSLContext for https."""
    req = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
        return json.loads(r.read())


class Member:
    def __init__(self, name, client_port, peer_port, data_dir, log_path, host="127.0.0.1", scheme="http"):
        self.name = name
        self.client_url = "%s://%s:%d" % (scheme, host, client_port)
        self.peer_url = "http://%s:%d" % (host, peer_port)
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        self.member_id = None  # decimal string, as the gateway reports it

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class EtcdCluster:
    def __init__(self, size=3, name_prefix="e", hosts=None, wrap=None, call=None, tls=None):
        self.tmp = tempfile.mkdtemp(prefix="kvd-etcd-")
        self.tls = tls
        self.ssl_context = tls.client_context() if tls is not None else None
        ports = _free_ports(2 * size) if hosts is None else [2379, 2380] * size
        self.wrap = wrap or (lambda name: [])
        self.call = call or (lambda fn, *a, **kw: fn(*a, **kw))
        self.members = []
        for i in range(size):
            name = "%s%d" % (name_prefix, i)
            self.members.append(Member(name, ports[2 * i], ports[2 * i + 1],
                                       os.path.join(self.tmp, name),
                                       os.path.join(self.tmp, name + ".log"),
                                       "127.0.0.1" if hosts is None else hosts[i],
                                       "https" if tls is not None else "http"))
        self.initial_cluster = ",".join("%s=%s" % (m.name, m.peer_url) for m in self.members)
        self.token = "kvd-test-%d" % os.getpid()

    # ---- lifecycle -------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        try:
            for m in self.members:
                self._spawn(m, new=True)
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, m, new):
        args = self.wrap(m.name) + [ETCD_BIN, "--name", m.name, "--data-dir", m.data_dir,
                "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
                "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", self.initial_cluster,
                "--initial-cluster-token", self.token,
                "--initial-cluster-state", "new" if new else "existing",
                # etcd's defaults (heartbeat 100 ms, election 1000 ms): the
                # leader-change figures in docs/cluster.md are measured with them.
                "--logger", "zap", "--log-outputs", m.log_path]
        if self.tls is not None:
            # Clients only (peers stay http on loopback): etcd's certificate
            # and key, and a client must present one signed by the CA.
            args += ["--cert-file", self.tls.server_cert, "--key-file", self.tls.server_key,
                     "--trusted-ca-file", self.tls.ca, "--client-cert-auth"]
        env = dict(os.environ, ETCD_UNSUPPORTED_ARCH=os.environ.get("ETCD_UNSUPPORTED_ARCH", ""))
        m.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=open(m.log_path + ".stderr", "ab"), env=env,
                                  start_new_session=True)

    def stop(self):
        for m in self.members:
            if m.alive():
                m.proc.kill()
                m.proc.wait()
        if os.environ.get("KVD_KEEP_TMP") == "1":
            print("etcd_cluster: kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- faults --------------------------------------------------------------------
    def member(self, name):
        return next(m for m in self.members if m.name == name)

    def kill(self, name):
        m = self.member(name)
        m.proc.kill()
        m.proc.wait()

    def restart(self, name):
        m = self.member(name)
        assert not m.alive(), name + " is still running"
        self._spawn(m, new=False)
        self.wait_healthy()

    def leader(self):
        """Name of the current etcd leader as the live members agree on it,
        or None."""
        ids = {}
        for m in self.members:
            if not m.alive():
                continue
            try:
                st = self.call(gateway, m.client_url, "/v3/maintenance/status", {}, timeout=1.0,
                               context=self.ssl_context)
            except (OSError, urllib.error.URLError, ValueError):
                continue
            m.member_id = st["header"]["member_id"]
            ids[m.member_id] = st.get("leader")
        leaders = set(ids.values())
        if len(leaders) != 1 or None in leaders:
            return None
        lid = leaders.pop()
        for m in self.members:
            if m.member_id == lid and m.alive():
                return m.name
        return None

    def kill_leader(self):
        name = self.wait_for(self.leader, "an etcd leader")
        self.kill(name)
        return name

    # ---- waiting -------------------------------------------------------------------
    def wait_for(self, pred, what, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("etcd_cluster: timed out waiting for " + what + self._log_tail())
            time.sleep(0.05)

    def _healthy(self):
        for m in self.members:
            if not m.alive():
                continue
            try:
                # A linearizable read needs the quorum and a leader.
                self.call(gateway, m.client_url, "/v3/kv/range", {"key": b64("health")}, timeout=1.0,
                          context=self.ssl_context)
            except (OSError, urllib.error.URLError, ValueError):
                return False
        return self.leader() is not None

    def wait_healthy(self):
        for m in self.members:
            if m.proc is not None and m.proc.poll() is not None:
                raise AssertionError("etcd %s exited with %s%s" % (m.name, m.proc.returncode,
                                                                   self._log_tail()))
        self.wait_for(self._healthy, "a healthy etcd cluster")

    def _log_tail(self):
        out = []
        for m in self.members:
            for p in (m.log_path, m.log_path + ".stderr"):
                try:
                    with open(p, "rb") as f:
                        tail = f.read()[-1500:].decode(errors="replace")
                    out.append("\n--- %s ---\n%s" % (os.path.basename(p), tail))
                except OSError:
                    pass
        return "".join(out)

    # ---- addresses -----------------------------------------------------------------
    def endpoints(self, only_alive=False):
        return [m.client_url for m in self.members if m.alive() or not only_alive]
