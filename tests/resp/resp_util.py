"""Shared helpers of the RESP tests: the external tools they need, a free
loopback port, and a kvd with its [resp] listener on."""

import os
import shutil
import socket
import subprocess
import sys

sys.dont_write_bytecode = True
from kvdtest import SKIP_EXIT, TIMEOUT  # noqa: E402

REDIS_CLI = "/usr/bin/redis-cli"
REDIS_BENCHMARK = "/usr/bin/redis-benchmark"


def require_tools(*paths, python_redis=False):
    """Exits SKIP_EXIT (77) when a tool is missing: ctest reports a skip and
    CI fails on it; scripts/install-deps.sh installs them."""
    missing = [p for p in paths if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    if python_redis:
        try:
            import redis  # noqa: F401
        except ImportError:
            missing.append("python3-redis (import redis, under %s)" % sys.executable)
    if missing:
        print("SKIPPED: missing " + ", ".join(missing))
        sys.exit(SKIP_EXIT)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resp_server(case, tcp=False, password=None, start=True, **overrides):
    """A kvd (KvdTestCase.server) with resp.socket, and resp.listen on a free
    loopback port when tcp. Sets s.resp_socket / s.resp_port."""
    d = os.path.join(case.tmp, "s%d" % len(case._servers))
    os.makedirs(d, exist_ok=True)
    resp = {"socket": os.path.join(d, "kvd-resp.sock")}
    if tcp:
        resp["listen"] = "127.0.0.1:%d" % free_port()
    if password is not None:
        resp["password"] = password
    resp.update(overrides.pop("resp", {}))
    s = case.server(start=False, subdir=os.path.basename(d), resp=resp, **overrides)
    s.resp_socket = resp["socket"]
    s.resp_port = int(resp["listen"].rsplit(":", 1)[1]) if "listen" in resp else None
    if start:
        s.start()
    return s


def cli(server, *args, input=None, extra=(), timeout=TIMEOUT, check=True):
    """redis-cli -s <resp socket> [extra] args... -> stdout (bytes)."""
    cmd = [REDIS_CLI, "-s", server.resp_socket] + list(extra) + [str(a) for a in args]
    p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d): %s %s" % (cmd, p.returncode, p.stdout[-500:], p.stderr[-500:]))
    return p.stdout


def redis_client(server, **kw):
    import redis
    return redis.Redis(unix_socket_path=server.resp_socket, socket_timeout=TIMEOUT, **kw)


def have_tool(path):
    return shutil.which(path) is not None
