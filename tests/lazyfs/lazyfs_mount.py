"""Mounts kvd_lazyfs (tests/lazyfs) for the tests: LazyFsMount starts it on
a backing directory, waits for its "mounted" line, cuts the power through the
control file and unmounts with fusermount3 -u, checking that the file system
exited cleanly (exit 0: every undo of a power cut worked).

unavailable() says why FUSE cannot be used here (None if it can); the tests
then exit kvdtest.SKIP_EXIT. Environment: KVD_LAZYFS_BIN (set by ctest).
"""
import os
import select
import shutil
import subprocess
import time

CTL = ".lazyfs-ctl"
MOUNT_FAILED = 3  # kvd_lazyfs's exit status when the mount itself failed
TIMEOUT = float(os.environ.get("KVD_TEST_TIMEOUT", "30"))
# kvd_lazyfs's exit after the unmount includes the final sync of a mount
# whose power is on; twice under load in sanitizer runs it took longer than
# TIMEOUT (not understood yet: wait_exit records where it was stuck).
EXIT_TIMEOUT = 3 * TIMEOUT


class Unavailable(Exception):
    pass


def unavailable():
    """Why a FUSE mount cannot be tried here, or None."""
    path = os.environ.get("KVD_LAZYFS_BIN")
    if not path or not os.access(path, os.X_OK):
        return "kvd_lazyfs was not built (libfuse3-dev missing at configure time?)"
    if os.geteuid() != 0:
        return "needs root (mounting FUSE)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "no usable /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "fusermount3 not found (Debian package fuse3)"
    return None


class LazyFsMount:
    """One kvd_lazyfs process serving `mountpoint` from `backing`. A mount
    lives until unmount(); a power cut leaves it mounted with the power off
    (every call fails with EIO) until it is unmounted and mounted again."""

    def __init__(self, backing, mountpoint, log_path):
        self.backing, self.mountpoint, self.log_path = backing, mountpoint, log_path
        os.makedirs(backing, exist_ok=True)
        os.makedirs(mountpoint, exist_ok=True)
        self.proc = None
        self.mounts = 0

    @property
    def ctl_path(self):
        return os.path.join(self.mountpoint, CTL)

    def mount(self):
        """Starts kvd_lazyfs and returns once the mount is up (its "mounted" line)."""
        assert self.proc is None, "already mounted"
        self.mounts += 1
        with open(self.log_path, "ab") as log:
            log.write(b"=== lazyfs mount #%d ===\n" % self.mounts)
            self.proc = subprocess.Popen([os.environ["KVD_LAZYFS_BIN"], self.backing, self.mountpoint],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        line = self.proc.stdout.readline() if ready else b""
        if line.strip() != b"mounted":
            rc = self.wait_exit()
            if rc == MOUNT_FAILED:
                raise Unavailable("kvd_lazyfs could not mount (no FUSE in this container?): " + self.log_tail())
            raise AssertionError("kvd_lazyfs did not mount (exit %r): %s" % (rc, self.log_tail()))
        self.proc.stdout.close()

    def control(self, command):
        with open(self.ctl_path, "w") as f:
            f.write(command)

    def status(self):
        """The file system's counters (power_on, dirty_bytes, dropped_bytes, ...)."""
        with open(self.ctl_path) as f:
            return {k: int(v) for k, v in (line.split() for line in f if line.strip())}

    def cut(self):
        """Power cut: every unsynced byte and directory operation is gone from
        the backing directory when this returns; the power stays off."""
        self.control("cut")

    def unmount(self):
        """fusermount3 -u, retried while the mount is busy (a SIGKILLed kvd's
        snapshot child dies by PDEATHSIG a moment later: nothing announces it).
        Returns kvd_lazyfs's exit status."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            p = subprocess.run(["fusermount3", "-u", self.mountpoint], capture_output=True, timeout=TIMEOUT)
            if p.returncode == 0:
                break
            if b"busy" not in p.stderr or time.monotonic() > deadline:
                raise AssertionError("fusermount3 -u %s failed: %s" % (self.mountpoint, p.stderr.decode()))
            time.sleep(0.02)
        return self.wait_exit()

    def wait_exit(self):
        start = time.monotonic()
        try:
            rc = self.proc.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.note_stuck(time.monotonic() - start)
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def note_stuck(self, waited):
        """Where a kvd_lazyfs that did not exit is: its threads' states and
        kernel stacks, into its log (log_tail shows them)."""
        lines = ["=== kvd_lazyfs pid %d did not exit within %.0f s; its threads:" % (self.proc.pid, waited)]
        task_dir = "/proc/%d/task" % self.proc.pid
        try:
            tids = sorted(os.listdir(task_dir), key=int)
        except OSError as e:
            tids, lines = [], lines + ["(cannot list %s: %s)" % (task_dir, e)]
        for tid in tids:
            for name in ("stat", "wchan", "stack"):
                try:
                    with open(os.path.join(task_dir, tid, name)) as f:
                        lines.append("%s %s: %s" % (tid, name, f.read().strip()))
                except OSError as e:
                    lines.append("%s %s: (%s)" % (tid, name, e))
        with open(self.log_path, "a") as log:
            log.write("\n".join(lines) + "\n")

    def remount(self):
        """Unmount (asserting a clean exit) and mount again: the power is back,
        and the new file system knows only what the backing directory holds."""
        rc = self.unmount()
        if rc != 0:
            raise AssertionError("kvd_lazyfs exited %d: %s" % (rc, self.log_tail()))
        self.mount()

    def close(self):
        """Best effort, for every exit path: unmount, lazily if still busy,
        and end the file system process (ours, by pid)."""
        if self.proc is None:
            return
        for args in (["-u"], ["-u", "-z"]):
            p = subprocess.run(["fusermount3"] + args + [self.mountpoint], capture_output=True, timeout=TIMEOUT)
            if p.returncode == 0:
                break
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait()
        self.proc = None

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""


def backing_tree(backing):
    """{relative path: bytes} of every file in the backing directory, and the
    set of directories (the trash directory, hidden by the mount, is skipped
    but must be empty)."""
    files, dirs = {}, set()
    trash = os.path.join(backing, ".lazyfs-trash")
    if os.path.isdir(trash) and os.listdir(trash):
        raise AssertionError("trash not empty after a cut or unmount: %r" % os.listdir(trash))
    for root, dnames, fnames in os.walk(backing):
        rel = os.path.relpath(root, backing)
        if rel == ".":
            dnames[:] = [d for d in dnames if d != ".lazyfs-trash"]
        for d in dnames:
            dirs.add(os.path.normpath(os.path.join(rel, d)))
        for f in fnames:
            with open(os.path.join(root, f), "rb") as fh:
                files[os.path.normpath(os.path.join(rel, f))] = fh.read()
    return files, dirs
