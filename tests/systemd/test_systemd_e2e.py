#!/usr/bin/env python3
"""kvd run the way people run it: installed, started by a real systemd.

Boots systemd as PID 1 of a fresh PID and mount namespace (systemd_box.py),
installs kvd into it twice — with `cmake --install` and from the .deb that
CPack builds — and drives it with systemctl, kvctl and journalctl.

Environment:
  KVD_PKG_BUILD  a build tree configured with -DCMAKE_INSTALL_PREFIX=/usr
                 (scripts/build.sh makes build/rel); configured and built here
                 when unset.
Exit code 77 (ctest SKIP_RETURN_CODE) with a SKIPPED line when this machine
cannot boot systemd this way; never a silent pass.
"""
import glob
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from systemd_box import SkipBox, SystemdBox  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SOCK = "/run/kvd/kvd.sock"
CONF = "/etc/kvd/kvd.toml"


def pkg_build_dir():
    build = os.environ.get("KVD_PKG_BUILD")
    if not build:
        build = os.path.join(REPO, "build", "e2e-pkg")
        subprocess.run(["cmake", "-S", REPO, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                        "-DCMAKE_INSTALL_PREFIX=/usr", "-DKVD_BUILD_TESTS=OFF"],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build, "-j2"], check=True, stdout=subprocess.DEVNULL)
    return os.path.abspath(build)


def wait_until(predicate, what, timeout=60.0):
    """Polls systemd's view of a unit (no event to wait on from outside)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


class ServiceChecks:
    """Checks shared by both install methods; self.box is a booted box with kvd installed."""

    def kvctl(self, *args, user=None, input=None):
        return self.box.run("kvctl", *args, user=user, input=input)

    def start_ok(self):
        r = self.box.systemctl("start", "kvd")
        self.assertEqual(r.returncode, 0, r.stderr + self.box.journal("-u", "kvd", "-n", "50"))
        # start returned: kvd must already be ready (Type=notify, READY=1 after
        # recovery and listen) -- the socket answers right now, no retry.
        r = self.kvctl("--socket", SOCK, "ping")
        self.assertEqual(r.returncode, 0, r.stderr)
        props = self.box.show("kvd", "ActiveState", "SubState", "Type")
        self.assertEqual(props["ActiveState"], "active")
        self.assertEqual(props["Type"], "notify")


class CmakeInstallTest(ServiceChecks, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.build = pkg_build_dir()
        cls.work = tempfile.mkdtemp(prefix="kvd-e2e-", dir=os.path.join(REPO, "build"))
        cls.box = SystemdBox(cls.work, REPO)
        cls.box.boot()
        r = cls.box.run("cmake", "--install", cls.build)
        if r.returncode != 0:
            raise AssertionError("cmake --install failed:\n" + r.stdout + r.stderr)

    @classmethod
    def tearDownClass(cls):
        cls.box.shutdown()
        cls.box.remove()

    def test_01_layout_and_unit_quality(self):
        for path in ("/usr/bin/kvd", "/usr/bin/kvctl", CONF, "/lib/systemd/system/kvd.service",
                     "/lib/systemd/system/kvd@.service",
                     "/lib/systemd/system/kvd.socket", "/usr/lib/sysusers.d/kvd.conf"):
            self.assertEqual(self.box.run("test", "-e", path).returncode, 0, path + " not installed")
        conf = self.box.run("cat", CONF, check=True).stdout
        self.assertIn('wal_path = "/var/lib/kvd/wal"', conf)
        self.assertIn('socket = "/run/kvd/kvd.sock"', conf)
        self.assertEqual(self.box.run("getent", "group", "kvd").returncode, 0, "sysusers made no group")
        verify = self.box.run("systemd-analyze", "verify", "/lib/systemd/system/kvd.service")
        self.assertEqual((verify.stdout + verify.stderr).strip(), "", "systemd-analyze verify complained")
        sec = self.box.run("systemd-analyze", "security", "--no-pager", "kvd.service")
        m = re.search(r"Overall exposure level for kvd\.service:\s*([0-9.]+)\s+(\w+)", sec.stdout)
        self.assertIsNotNone(m, sec.stdout[-500:] + sec.stderr)
        score = float(m.group(1))
        print(f"\nsystemd-analyze security kvd.service: {score} {m.group(2)}", flush=True)
        self.assertLessEqual(score, 2.0)

    def test_02_install_keeps_existing_config(self):
        self.box.sh(f"echo '# local edit' >> {CONF}", check=True)
        self.box.run("cmake", "--install", self.build, check=True)
        self.assertIn("# local edit", self.box.run("cat", CONF, check=True).stdout)

    def test_03_start_is_ready_and_group_access(self):
        self.box.run("useradd", "-M", "-N", "-G", "kvd", "alice", check=True)
        self.box.run("useradd", "-M", "-N", "bob", check=True)
        self.start_ok()
        st = self.box.run("stat", "-c", "%a %G", SOCK, check=True).stdout.split()
        self.assertEqual(st, ["660", "kvd"])
        # alice (group kvd) uses the default socket resolution.
        r = self.kvctl("put", "greeting", "hello", user="alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.kvctl("get", "greeting", user="alice")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "hello"), r.stderr)
        r = self.kvctl("--socket", SOCK, "get", "greeting", user="bob")
        self.assertEqual(r.returncode, 3, "a user outside group kvd could connect")

    def test_04_reload_changes_batch_size(self):
        before = json.loads(self.kvctl("--socket", SOCK, "status", "--json").stdout)
        self.box.sh(f"sed -i 's/^batch_size = .*/batch_size = 7/' {CONF}", check=True)
        r = self.box.systemctl("reload", "kvd")
        self.assertEqual(r.returncode, 0, r.stderr)
        after = json.loads(self.kvctl("--socket", SOCK, "status", "--json").stdout)
        self.assertEqual(after["durability"]["batch_size"], 7, after.get("durability"))
        self.assertEqual(before["pid"], after["pid"], "reload must not restart kvd")
        log = self.box.journal("-u", "kvd", "KVD_EVENT=reload")
        self.assertIn("batch_size", log)

    def test_04b_reload_with_broken_config_fails_visibly(self):
        before = json.loads(self.kvctl("--socket", SOCK, "status", "--json").stdout)
        good = self.box.run("cat", CONF, check=True).stdout
        self.box.sh(f"sed -i 's/^batch_size = .*/batch_size = \"lots\"/' {CONF}", check=True)
        line = self.box.sh(f"grep -n '^batch_size' {CONF} | cut -d: -f1", check=True).stdout.strip()
        try:
            r = self.box.systemctl("reload", "kvd")
            self.assertNotEqual(r.returncode, 0, "systemctl reload succeeded on a broken kvd.toml")
            # ExecReload's kvd --check-config said why, with file and line.
            log = self.box.journal("-u", "kvd", "-n", "30")
            self.assertIn(f"kvd.toml:{line}", log)
            after = json.loads(self.kvctl("--socket", SOCK, "status", "--json").stdout)
            self.assertEqual(after["pid"], before["pid"])
            self.assertEqual(after["durability"]["batch_size"], before["durability"]["batch_size"])
            self.assertEqual(self.box.show("kvd", "ActiveState")["ActiveState"], "active")
        finally:
            self.box.run("sh", "-c", f"cat > {CONF}", input=good, check=True)
        r = self.box.systemctl("reload", "kvd")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_05_kill_restarts_with_acknowledged_writes(self):
        for i in range(50):
            r = self.kvctl("--socket", SOCK, "put", f"k{i}", f"v{i}")
            self.assertEqual(r.returncode, 0, r.stderr)
        old_pid = self.box.show("kvd", "MainPID")["MainPID"]
        self.box.systemctl("kill", "-s", "KILL", "kvd", check=True)

        def restarted():
            p = self.box.show("kvd", "NRestarts", "ActiveState", "MainPID")
            return p if (int(p["NRestarts"]) >= 1 and p["ActiveState"] == "active"
                         and p["MainPID"] not in ("0", old_pid)) else None
        wait_until(restarted, "systemd to restart kvd after SIGKILL")
        for i in range(50):
            r = self.kvctl("--socket", SOCK, "get", f"k{i}")
            self.assertEqual((r.returncode, r.stdout.strip()), (0, f"v{i}"), f"k{i} lost")

    def test_06_journal(self):
        log = self.box.journal("-u", "kvd")
        self.assertRegex(log, r"kvd \S+ starting")
        self.assertIn("recover", log)
        rec = self.box.journal("-u", "kvd", "KVD_EVENT=recovery", "-o", "verbose")
        self.assertIn("KVD_EVENT=recovery", rec)
        self.assertIn("SYSLOG_IDENTIFIER=kvd", rec)
        warn = self.box.journal("-u", "kvd", "-p", "warning")
        # /var/lib/kvd sits on an overlay here: kvd warns that fsync may be weakened.
        self.assertIn("overlay", warn)
        self.assertNotRegex(warn, r"kvd \S+ starting", "-p warning did not filter info lines")

    def test_07_stop_is_clean(self):
        r = self.box.systemctl("stop", "kvd")
        self.assertEqual(r.returncode, 0, r.stderr)
        p = self.box.show("kvd", "ActiveState", "Result", "ExecMainStatus")
        self.assertEqual((p["ActiveState"], p["Result"], p["ExecMainStatus"]), ("inactive", "success", "0"))
        shutdown = self.box.journal("-u", "kvd", "KVD_EVENT=shutdown")
        self.assertIn("everything up to LSN", shutdown)
        self.assertIn("kvd stopped", shutdown)

    def test_07b_socket_activation(self):
        r = self.box.systemctl("start", "kvd.socket")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.box.show("kvd", "ActiveState")["ActiveState"], "inactive")
        # The first client starts kvd, which takes the listening socket from
        # systemd (LISTEN_FDS) instead of binding its own.
        r = self.kvctl("--socket", SOCK, "get", "k0")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "v0"), r.stderr)
        self.assertEqual(self.box.show("kvd", "ActiveState")["ActiveState"], "active")
        self.assertIn("socket passed by systemd", self.box.journal("-u", "kvd", "KVD_EVENT=startup"))
        self.box.systemctl("stop", "kvd.socket", "kvd", check=True)

    def test_08_broken_config_fails_start_with_key_and_line(self):
        self.box.sh(f"sed -i '/^\\[server\\]/a no_such_key = 1' {CONF}", check=True)
        lines = self.box.sh(f"grep -n '^no_such_key' {CONF} | cut -d: -f1", check=True).stdout.strip()
        r = self.box.systemctl("start", "kvd")
        self.assertNotEqual(r.returncode, 0, "start succeeded with a broken config")
        log = self.box.journal("-u", "kvd", "-n", "30")
        self.assertIn("no_such_key", log)
        self.assertIn(f":{lines}", log, "journal does not name the line")

    def test_09_template_instances_form_a_replica_set(self):
        """kvd@a (primary) and kvd@b (its replica) from the template unit, as docs/service.md shows."""
        verify = self.box.run("systemd-analyze", "verify", "/lib/systemd/system/kvd@.service")
        self.assertEqual((verify.stdout + verify.stderr).strip(), "", "systemd-analyze verify complained")
        with socket.socket() as s:  # a free loopback port for a's replication listener
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        for name, repl in (("a", f'role = "primary"\nlisten = "127.0.0.1:{port}"'),
                           ("b", f'role = "replica"\nprimary = "127.0.0.1:{port}"')):
            conf = (f'[server]\nsocket = "/run/kvd/{name}/kvd.sock"\n'
                    f'[storage]\nwal_path = "/var/lib/kvd/{name}/wal"\n'
                    f'snapshot_path = "/var/lib/kvd/{name}/snapshots"\n'
                    f'[replication]\nname = "{name}"\n{repl}\n')
            self.box.run("sh", "-c", f"cat > /etc/kvd/{name}.toml", input=conf, check=True)
        try:
            r = self.box.systemctl("start", "kvd@a", "kvd@b")
            self.assertEqual(r.returncode, 0, r.stderr + self.box.journal("-n", "60"))
            sock_a, sock_b = "/run/kvd/a/kvd.sock", "/run/kvd/b/kvd.sock"
            for i in range(20):
                r = self.kvctl("--socket", sock_a, "put", f"t{i}", f"v{i}")
                self.assertEqual(r.returncode, 0, r.stderr)
            last = json.loads(self.kvctl("--socket", sock_a, "status", "--json").stdout)["last_lsn"]

            def b_caught_up():
                st = json.loads(self.kvctl("--socket", sock_b, "status", "--json").stdout)
                return st if st["last_lsn"] >= last else None
            st = wait_until(b_caught_up, "kvd@b to replicate kvd@a's writes")
            sec = self.box.run("systemd-analyze", "security", "--no-pager", "kvd@a.service")
            m = re.search(r"Overall exposure level for kvd@a\.service:\s*([0-9.]+)\s+(\w+)", sec.stdout)
            self.assertIsNotNone(m, sec.stdout[-500:] + sec.stderr)
            print(f"\nsystemd-analyze security kvd@a.service: {m.group(1)} {m.group(2)}", flush=True)
            self.assertLessEqual(float(m.group(1)), 2.5)  # kvd.service's sandbox, plus loopback TCP
            self.assertEqual(st["role"], "replica")
            for i in range(20):
                r = self.kvctl("--socket", sock_b, "get", f"t{i}")
                self.assertEqual((r.returncode, r.stdout.strip()), (0, f"v{i}"), r.stderr)
            r = self.kvctl("--socket", sock_b, "put", "x", "y")
            self.assertNotEqual(r.returncode, 0, "a replica accepted a write")
            self.assertIn(f"127.0.0.1:{port}", r.stdout + r.stderr, "the refusal does not name the primary")
            # Each instance has its own data directory and journal.
            self.assertEqual(self.box.run("test", "-d", "/var/lib/kvd/b/wal").returncode, 0)
            self.assertIn("replica", self.box.journal("-u", "kvd@b"))
        finally:
            self.box.systemctl("stop", "kvd@a", "kvd@b")


class DebPackageTest(ServiceChecks, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.build = pkg_build_dir()
        r = subprocess.run(["cpack", "-G", "DEB"], cwd=cls.build, capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("cpack failed:\n" + r.stdout + r.stderr)
        debs = sorted(glob.glob(os.path.join(cls.build, "kvd_*.deb")), key=os.path.getmtime)
        assert debs, "cpack made no .deb"
        cls.deb = debs[-1]
        cls.work = tempfile.mkdtemp(prefix="kvd-e2e-deb-", dir=os.path.join(REPO, "build"))
        cls.box = SystemdBox(cls.work, REPO)
        cls.box.boot()

    @classmethod
    def tearDownClass(cls):
        cls.box.shutdown()
        cls.box.remove()

    def test_deb_installs_and_unit_starts(self):
        info = subprocess.run(["dpkg-deb", "-f", self.deb, "Depends"], capture_output=True, text=True, check=True)
        self.assertIn("libuv1", info.stdout)
        r = self.box.run("dpkg", "-i", self.deb)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.box.systemctl("is-enabled", "kvd").stdout.strip(), "enabled")
        self.start_ok()
        self.assertEqual(self.kvctl("put", "pkg", "ok").returncode, 0)
        r = self.kvctl("get", "pkg")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "ok"))
        r = self.box.systemctl("stop", "kvd")
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    try:
        from systemd_box import _check_prerequisites
        _check_prerequisites()
    except SkipBox as e:
        print(f"SKIPPED: {e}")
        sys.exit(77)
    unittest.main(verbosity=2)
