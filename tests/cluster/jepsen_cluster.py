"""The system under test for jepsen_run.py: a 3-member etcd and 3 kvd nodes
with [cluster], each process in a network namespace of its own
(netns.Network; hosts e0 e1 e2 n0 n1 n2), and the faults applied to them.

One namespace per process rather than per machine (etcd + kvd together):
the issue's partitions name processes ("the primary from etcd", "from the
replicas"), which are then plain address sets; a whole machine cut off is
the union (`isolate`). Killing the etcd leader is independent of kvd.

Each kvd's data lives on a small tmpfs of its own (size --disk-mib), mounted
in a private mount namespace held by one process in the hub, so "fill the
primary's disk" fills only that tmpfs and nothing of the machine; the
driver fills and empties it with nsenter. Data survives kvd restarts (the
holder keeps the mounts); everything vanishes with the namespaces.

Clients reach kvd through its Unix socket; the driver reaches etcd from the
hub (never partitioned).
"""
import base64
import os
import signal
import subprocess
import time

import kvd_proto as kp
import netns
from etcd_cluster import EtcdCluster, gateway, b64
from kvdtest import KvdServer

ETCD_HOSTS = ["e0", "e1", "e2"]
KVD_HOSTS = ["n0", "n1", "n2"]
REPL_PORT = 7000


def status_of(socket_path, timeout=0.5):
    """STATUS of a node, or None (down, paused, not answering)."""
    try:
        with kp.KvdClient(socket_path, timeout) as c:
            r = c.status()
            return r.json if r.ok else None
    except (OSError, kp.KvdConnectionClosed, kp.KvdProtocolError, ValueError):
        return None


class Node:
    def __init__(self, cluster, host):
        self.c, self.name, self.host = cluster, host, host
        d = os.path.join(cluster.work, host)
        self.data = os.path.join(d, "data")  # the tmpfs mount point
        os.makedirs(self.data)
        self.server = KvdServer(d, start=False, exec_prefix=cluster.kvd_prefix(host))
        self.server.wal_path = os.path.join(self.data, "wal")
        self.server.snapshot_path = os.path.join(self.data, "snapshots")
        self.paused = False

    def configure(self):
        c = self.c
        self.server.write_config(
            storage={"wal_path": self.server.wal_path, "snapshot_path": self.server.snapshot_path,
                     "segment_size": "64KiB"},
            snapshot={"wal_bytes": "1MiB"},
            durability={"mode": "sync"},
            replication={"name": self.name, "listen": "%s:%d" % (c.net.addr(self.host), REPL_PORT),
                         "sync_replicas": c.sync_replicas, "sync_timeout": "2s",
                         # a private network of our own namespaces: no TLS needed
                         "insecure": True},
            cluster={"etcd_endpoints": ",".join(c.etcd.endpoints()), "prefix": c.prefix, "ttl": "%ds" % c.ttl})

    @property
    def socket(self):
        return self.server.socket_path

    def status(self, timeout=0.5):
        if self.paused or not self.server.running():
            return None
        return status_of(self.socket, timeout)

    def running(self):
        return self.server.running()


class Cluster:
    def __init__(self, work, ttl=5, sync_replicas=1, disk_mib=64, log=print):
        self.work, self.ttl, self.sync_replicas, self.disk_mib = work, ttl, sync_replicas, disk_mib
        self.log = log
        self.prefix = "/kvd/jepsen"
        self.net = self.etcd = self.holder = None
        self.nodes = []

    # ---- start / stop ----------------------------------------------------------------
    def start(self):
        self.net = netns.Network(ETCD_HOSTS + KVD_HOSTS)
        # The mount namespace holding the tmpfs data dirs (a process in the hub:
        # killed with the namespaces, so a crashed run leaves no mount behind).
        self.holder = subprocess.Popen(self.net.prefix_hub() + ["unshare", "-m", "--propagation", "private",
                                                                "sleep", "infinity"])
        self.etcd = EtcdCluster(hosts=[self.net.addr(h) for h in ETCD_HOSTS],
                                wrap=self.net.prefix, call=self.net.from_hub)
        self.etcd.start()
        self.nodes = [Node(self, h) for h in KVD_HOSTS]
        for n in self.nodes:
            self._wait_holder()
            self.nsenter("mount", "-t", "tmpfs", "-o", "size=%dm" % self.disk_mib, "tmpfs", n.data)
            n.configure()
        for n in self.nodes:
            n.server._spawn()  # all three at once: they elect among themselves
        for n in self.nodes:
            n.server.wait_notification(lambda x: x == "READY=1", since=n.server._start_mark)

    def _wait_holder(self):
        # ip execs unshare, which unshares and execs sleep: once the pid runs
        # sleep, its mount namespace is the private one.
        deadline = time.monotonic() + 10
        while open("/proc/%d/comm" % self.holder.pid).read().strip() != "sleep":
            if time.monotonic() > deadline or self.holder.poll() is not None:
                raise RuntimeError("the mount namespace holder did not start")
            time.sleep(0.01)

    def kvd_prefix(self, host):
        return self.net.prefix(host) + ["nsenter", "-t", str(self.holder.pid), "-m"]

    def nsenter(self, *args, check=True):
        p = subprocess.run(["nsenter", "-t", str(self.holder.pid), "-m"] + list(args), capture_output=True,
                           text=True, timeout=60)
        if check and p.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(args), p.stderr.strip()))
        return p

    def close(self):
        for n in self.nodes:
            if n.paused:
                os.kill(n.server.pid, signal.SIGCONT)
            n.server.close()
        if self.etcd is not None:
            self.etcd.stop()
        if self.net is not None:
            self.net.close()  # kills the holder too (it runs in the hub)
        if self.holder is not None:
            self.holder.wait(10)

    # ---- observation ------------------------------------------------------------------
    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def statuses(self):
        return {n.name: n.status() for n in self.nodes}

    def primary(self, sts=None):
        """(name, epoch) of the node that says it is primary with the highest
        epoch, or (None, None)."""
        sts = sts or self.statuses()
        best = None
        for name, st in sts.items():
            if st and st.get("role") == "primary" and (best is None or st["epoch"] > best[1]):
                best = (name, st["epoch"])
        return best or (None, None)

    def stable(self):
        """The primary's name once exactly one node is primary, the others are
        its streaming replicas, and every node runs; else None."""
        sts = self.statuses()
        if any(st is None for st in sts.values()):
            return None
        prim = [n for n, st in sts.items() if st.get("role") == "primary"]
        if len(prim) != 1:
            return None
        listen = "%s:%d" % (self.net.addr(self.node(prim[0]).host), REPL_PORT)
        for n, st in sts.items():
            if n != prim[0]:
                rep = st.get("replication", {})
                if (st.get("role") != "replica" or rep.get("primary") != listen
                        or rep.get("receiver", {}).get("state") != "streaming"):
                    return None
        return prim[0]

    def etcd_keys(self):
        """Keys under our prefix in etcd (what the coordinator wrote)."""
        pfx = self.prefix + "/"
        end = pfx[:-1] + chr(ord(pfx[-1]) + 1)
        ep = self.etcd.endpoints(only_alive=True)[0]
        r = self.net.from_hub(gateway, ep, "/v3/kv/range", {"key": b64(pfx), "range_end": b64(end)}, timeout=2.0)
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode(errors="replace")
                for kv in r.get("kvs", [])}

    # ---- faults ------------------------------------------------------------------------
    def kill(self, name):
        self.node(name).server.kill(signal.SIGKILL)

    def restart(self, name):
        n = self.node(name)
        if not n.running():
            n.server.start()

    def pause(self, name):
        n = self.node(name)
        os.kill(n.server.pid, signal.SIGSTOP)
        n.paused = True

    def resume(self, name):
        n = self.node(name)
        os.kill(n.server.pid, signal.SIGCONT)
        n.paused = False

    def others(self, name):
        return [n.name for n in self.nodes if n.name != name]

    def fill_disk(self, name):
        """Fills name's tmpfs: its next WAL writes fail with ENOSPC."""
        n = self.node(name)
        self.nsenter("dd", "if=/dev/zero", "of=" + os.path.join(n.data, "filler"), "bs=1M", check=False)

    def free_disk(self, name):
        self.nsenter("rm", "-f", os.path.join(self.node(name).data, "filler"))

    # ---- the end ---------------------------------------------------------------------------
    def final_state(self):
        """Every node's items, digest and role (after healing and convergence)."""
        out = {}
        for n in self.nodes:
            with kp.KvdClient(n.socket, 10) as c:
                st = c.status().check().json
                items = {k.decode(): v.decode() for k, v in c.scan_all()}
            out[n.name] = {"items": items, "digest": st.get("digest"), "role": st.get("role"),
                           "last_lsn": st.get("last_lsn"), "epoch": st.get("epoch"),
                           "epoch_history": st.get("replication", {}).get("epoch_history")}
        return out

    def logs_tail(self, lines=40):
        return "\n".join("--- %s ---\n%s" % (n.name, n.server.log_tail(lines)) for n in self.nodes)

