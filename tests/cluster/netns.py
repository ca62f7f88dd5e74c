"""A private network for the fault tests: one network namespace per host,
joined by veth pairs to a bridge in a hub namespace, partitions with
iptables inside the namespaces. Python 3 standard library only; needs
CAP_NET_ADMIN (root), iproute2 and iptables.

    with Network(["e0", "e1", "k0"]) as net:      # names carry our pid
        net.addr("k0")                             # "10.213.0.3"
        net.prefix("k0")                           # ["ip", "netns", "exec", ns]: start a process there
        net.partition(["k0"], ["e0", "e1"])        # both directions dropped
        net.heal()                                 # every partition rule removed

Why namespaces of our own: the addresses (10.213.0.0/24) exist only inside
them, so nothing on the machine can reach them and nothing of ours reaches
out; each namespace has its own port space, so etcd and kvd use fixed ports
and two runs never collide. The root namespace gets no interface, address
or rule: every veth is created inside the hub and moved into its host.

Clients reach kvd through its Unix socket: a filesystem socket is found by
path, not by network, so it works from the root namespace (test_netns
proves it). The driver itself talks TCP to a namespace with in_netns() (from_hub():
from the hub's bridge address, which no partition cuts),
which runs a function on a thread switched into it (setns(2) on a thread
changes only that thread's network namespace; sockets keep the namespace
they were created in).

Clean-up: close() kills every process still running in our namespaces (by
the pids `ip netns pids` lists) and deletes them. remove_leftovers() does
the same for namespaces of this prefix whose creating pid is dead (a run
that was killed), never for a live run's.
"""
import ctypes
import os
import re
import signal
import subprocess
import threading
import time

PREFIX = "kvdj"           # namespace names: kvdj<pid>-<host>, kvdj<pid>-hub
SUBNET = "10.213.0."      # /24, only inside our namespaces
HUB_ADDR = SUBNET + "254"  # the hub's bridge: the driver's vantage point, never partitioned
CHAIN = "jepsen"          # our iptables chain in each host, hooked in INPUT and OUTPUT
CLONE_NEWNET = 0x40000000
IP = os.environ.get("IP_BIN", "ip")
IPTABLES = os.environ.get("IPTABLES_BIN", "iptables")


class Unavailable(Exception):
    """Namespaces cannot be made here (no privilege, a tool missing): skip."""


def _run(args, check=True, input=None):
    p = subprocess.run(args, input=input, capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return p


def probe():
    """Raises Unavailable unless a namespace can be created and deleted here."""
    if os.geteuid() != 0:
        raise Unavailable("not root: network namespaces need CAP_NET_ADMIN")
    name = "%s%d-probe" % (PREFIX, os.getpid())
    try:
        p = _run([IP, "netns", "add", name], check=False)
    except FileNotFoundError:
        raise Unavailable("iproute2 (ip) is not installed")
    if p.returncode != 0:
        raise Unavailable("ip netns add failed: " + p.stderr.strip())
    try:
        try:
            q = _run([IP, "netns", "exec", name, IPTABLES, "-L", "-n"], check=False)
        except FileNotFoundError:
            raise Unavailable("iptables is not installed")
        if q.returncode != 0:
            raise Unavailable("iptables does not work in a namespace: " + q.stderr.strip())
    finally:
        _run([IP, "netns", "del", name], check=False)


def _netns_names():
    p = _run([IP, "netns", "list"], check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _kill_and_delete(ns):
    """Kills what runs in ns (by pid) and deletes it."""
    for _ in range(50):
        pids = [int(x) for x in _run([IP, "netns", "pids", ns], check=False).stdout.split()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)  # the kernel lets go of the namespace once they are reaped
    _run([IP, "netns", "del", ns], check=False)


def remove_leftovers(prefix=PREFIX):
    """Deletes namespaces named <prefix><pid>-* whose pid is not running (a
    crashed run's), with whatever still runs in them. Returns their names."""
    pat = re.compile(r"^%s(\d+)-" % re.escape(prefix))
    gone = []
    for ns in _netns_names():
        m = pat.match(ns)
        if m and not _pid_alive(int(m.group(1))):
            _kill_and_delete(ns)
            gone.append(ns)
    return gone


_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(ns, fn, *args):
    """Runs fn(*args) on a thread inside network namespace ns; returns its
    result or raises its exception."""
    out = {}

    def body():
        try:
            fd = os.open("/run/netns/" + ns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, "setns %s: %s" % (ns, os.strerror(e)))
            finally:
                os.close(fd)
            out["value"] = fn(*args)
        except BaseException as e:  # handed to the caller
            out["error"] = e

    t = threading.Thread(target=body, name="netns-" + ns)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


class Network:
    """Hosts in namespaces of their own on one bridge. Addresses are
    SUBNET + (1 + index) in the order given."""

    def __init__(self, hosts, prefix=PREFIX):
        self.hosts = list(hosts)
        self.tag = "%s%d" % (prefix, os.getpid())
        self.hub = self.tag + "-hub"
        self._made = []
        self.rules = []  # (a, b) pairs currently cut, for the report
        self.netem = None  # whether tc netem works here (probed at start)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def ns(self, host):
        return "%s-%s" % (self.tag, host)

    def addr(self, host):
        return SUBNET + str(1 + self.hosts.index(host))

    def prefix(self, host):
        """Command prefix that runs a program in host's namespace (exec, same pid)."""
        return [IP, "netns", "exec", self.ns(host)]

    def prefix_hub(self):
        return [IP, "netns", "exec", self.hub]

    def _ip(self, ns, *args):
        return _run([IP, "-n", ns] + list(args))

    def _exec(self, host, *args, check=True, input=None):
        return _run(self.prefix(host) + list(args), check=check, input=input)

    def _build(self):
        for ns in [self.hub] + [self.ns(h) for h in self.hosts]:
            _run([IP, "netns", "add", ns])
            self._made.append(ns)
        self._ip(self.hub, "link", "add", "br0", "type", "bridge")
        self._ip(self.hub, "addr", "add", HUB_ADDR + "/24", "dev", "br0")
        self._ip(self.hub, "link", "set", "br0", "up")
        self._ip(self.hub, "link", "set", "lo", "up")
        for i, h in enumerate(self.hosts):
            ns, veth = self.ns(h), "v%d" % i
            # Made in the hub and moved: the root namespace never holds either end.
            self._ip(self.hub, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self._ip(self.hub, "link", "set", veth, "master", "br0", "up")
            self._ip(ns, "link", "set", "lo", "up")
            self._ip(ns, "addr", "add", self.addr(h) + "/24", "dev", "eth0")
            self._ip(ns, "link", "set", "eth0", "up")
            self._exec(h, IPTABLES, "-N", CHAIN)
            self._exec(h, IPTABLES, "-I", "INPUT", "-j", CHAIN)
            self._exec(h, IPTABLES, "-I", "OUTPUT", "-j", CHAIN)
        h0 = self.hosts[0]
        self.netem = self._exec(h0, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
                                check=False).returncode == 0
        if self.netem:
            self._exec(h0, "tc", "qdisc", "del", "dev", "lo", "root")

    # ---- faults ----------------------------------------------------------------
    def partition(self, side_a, side_b):
        """Drops every packet between any host of side_a and any of side_b,
        both directions (rules on both ends, so either alone would cut)."""
        side_a, side_b = list(side_a), list(side_b)
        assert not set(side_a) & set(side_b), "a host on both sides"
        for here, there in ((side_a, side_b), (side_b, side_a)):
            for h in here:
                lines = ["*filter"]
                for o in there:
                    lines.append("-A %s -s %s -j DROP" % (CHAIN, self.addr(o)))
                    lines.append("-A %s -d %s -j DROP" % (CHAIN, self.addr(o)))
                lines.append("COMMIT\n")
                self._exec(h, IPTABLES + "-restore", "--noflush", input="\n".join(lines))
        self.rules.extend((a, b) for a in side_a for b in side_b)

    def isolate(self, host):
        """Cuts host from every other host."""
        self.partition([host], [h for h in self.hosts if h != host])

    def heal(self):
        """Removes every partition rule and delay."""
        for h in self.hosts:
            self._exec(h, IPTABLES, "-F", CHAIN)
            if self.netem:
                self._exec(h, "tc", "qdisc", "del", "dev", "eth0", "root", check=False)
        self.rules = []

    def delay(self, host, ms, jitter_ms=0):
        """Delays host's outgoing packets (tc netem). False if netem is not
        available in this kernel (the caller reports it, nothing is done)."""
        if not self.netem:
            return False
        args = ["tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "delay", "%dms" % ms]
        if jitter_ms:
            args.append("%dms" % jitter_ms)
        self._exec(host, *args)
        return True

    def drop_counts(self, host):
        """Packets our rules dropped in host (for tests: a partition did bite)."""
        out = self._exec(host, IPTABLES, "-L", CHAIN, "-n", "-v", "-x").stdout
        return sum(int(line.split()[0]) for line in out.splitlines()[2:] if line.strip())

    def run_in(self, host, fn, *args):
        return in_netns(self.ns(host), fn, *args)

    def from_hub(self, fn, *args, **kw):
        """fn(*args, **kw) in the hub, which reaches every host and is never
        partitioned (rules name host addresses only)."""
        return in_netns(self.hub, lambda: fn(*args, **kw))

    # ---- clean-up ----------------------------------------------------------------
    def close(self):
        for ns in reversed(self._made):
            _kill_and_delete(ns)
        self._made = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
