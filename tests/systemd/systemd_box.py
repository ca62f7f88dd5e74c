"""A real systemd, booted as PID 1 of fresh PID and mount namespaces.

/usr, /etc and /var are overlays whose upper layers live in a work directory,
so whatever a test installs inside (cmake --install, dpkg -i, useradd) never
touches the machine. /tmp, /var/tmp and /run are private tmpfs mounts made
before systemd starts: without them its boot-time tmpfiles clean-up would
wipe the machine's /tmp. The repository is bound back to its own path when
it lives under /tmp, so build trees keep their absolute paths inside.
"""
import os
import shlex
import shutil
import subprocess
import time


class SkipBox(Exception):
    """This machine cannot boot systemd this way; the reason says why."""


def _check_prerequisites():
    if os.geteuid() != 0:
        raise SkipBox("needs root (unshare, mount, systemd as PID 1)")
    for tool in ("unshare", "nsenter", "/lib/systemd/systemd", "systemctl", "journalctl"):
        if shutil.which(tool) is None and not os.path.exists(tool):
            raise SkipBox(f"{tool} is not installed")
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         "mount -t tmpfs tmpfs /mnt && echo ok"],
        capture_output=True, text=True, timeout=30)
    if probe.returncode != 0 or "ok" not in probe.stdout:
        raise SkipBox("cannot create a private mount namespace: " + probe.stderr.strip())


class SystemdBox:
    def __init__(self, workdir, repo_root):
        self.workdir = os.path.abspath(workdir)
        self.repo_root = os.path.abspath(repo_root)
        self.log_path = os.path.join(self.workdir, "systemd-boot.log")
        self.proc = None
        self.pid = None  # systemd's PID as seen from outside

    # ---- life cycle ------------------------------------------------------------
    def boot(self, timeout=90):
        _check_prerequisites()
        os.makedirs(self.workdir, exist_ok=True)
        lines = ["set -e"]
        for d in ("usr", "etc", "var"):
            upper = os.path.join(self.workdir, d, "upper")
            work = os.path.join(self.workdir, d, "work")
            os.makedirs(upper, exist_ok=True)
            os.makedirs(work, exist_ok=True)
            lines.append(f"mount -t overlay overlay -o lowerdir=/{d},upperdir={shlex.quote(upper)},"
                         f"workdir={shlex.quote(work)} /{d}")
        lines.append("mount -t tmpfs tmpfs /run")
        lines.append("mkdir -p /run/e2e-repo /run/e2e-work")
        lines.append(f"mount --bind {shlex.quote(self.repo_root)} /run/e2e-repo")
        lines.append(f"mount --bind {shlex.quote(self.workdir)} /run/e2e-work")
        lines.append("mount -t tmpfs tmpfs /tmp")
        lines.append("mount -t tmpfs tmpfs /var/tmp")
        for hidden in ("/tmp/", "/var/tmp/"):
            for path, src in ((self.repo_root, "/run/e2e-repo"), (self.workdir, "/run/e2e-work")):
                if path.startswith(hidden):
                    lines.append(f"mkdir -p {shlex.quote(path)} && mount --bind {src} {shlex.quote(path)}")
        lines.append("exec /lib/systemd/systemd --system --unit=basic.target")
        script = "\n".join(lines)
        self._log = log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "--propagation", "private",
             "sh", "-c", script],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        # unshare forks the namespace's PID 1; find it through /proc.
        children = f"/proc/{self.proc.pid}/task/{self.proc.pid}/children"
        while self.pid is None:
            self._check_alive(deadline)
            try:
                with open(children) as f:
                    kids = f.read().split()
                if kids:
                    self.pid = int(kids[0])
            except FileNotFoundError:
                pass
            if self.pid is None:
                time.sleep(0.05)
        # systemctl needs systemd's private bus socket, which appears during boot.
        while True:
            self._check_alive(deadline)
            r = self.run("systemctl", "is-system-running", "--wait", timeout=max(1, deadline - time.monotonic()))
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                return self
            if "Failed to connect" not in r.stderr and state not in ("", "offline"):
                raise SkipBox(f"systemd did not come up: {state} {r.stderr.strip()}")
            time.sleep(0.1)

    def _check_alive(self, deadline):
        if self.proc.poll() is not None:
            with open(self.log_path, errors="replace") as f:
                raise SkipBox("systemd exited during boot: " + f.read()[-2000:])
        if time.monotonic() > deadline:
            raise SkipBox("systemd did not finish booting in time")

    def shutdown(self):
        if self.pid is not None:
            try:
                os.kill(self.pid, 9)  # PID 1 of the namespace: everything in it dies too
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.pid = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def remove(self):
        """Deletes the work directory (overlay layers) unless KVD_KEEP_TMP is set."""
        if not os.environ.get("KVD_KEEP_TMP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- commands inside ---------------------------------------------------------
    def run(self, *cmd, user=None, input=None, timeout=120, check=False):
        """Runs cmd inside the box (as root, or as `user` via runuser)."""
        argv = ["nsenter", "-t", str(self.pid), "-p", "-m", "--"]
        if user is not None:
            argv += ["runuser", "-u", user, "--"]
        argv += list(cmd)
        r = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def sh(self, script, **kw):
        return self.run("sh", "-c", script, **kw)

    def systemctl(self, *args, **kw):
        return self.run("systemctl", "--no-pager", *args, **kw)

    def show(self, unit, *props):
        r = self.systemctl("show", unit, "-p", ",".join(props), check=True)
        out = {}
        for line in r.stdout.splitlines():
            k, _, v = line.partition("=")
            out[k] = v
        return out

    def journal(self, *args):
        return self.run("journalctl", "--no-pager", *args).stdout
