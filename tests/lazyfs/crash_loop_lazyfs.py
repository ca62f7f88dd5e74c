#!/usr/bin/env python3
"""The daemon crash loop on a file system that loses power: kvd runs with its
real Env (no fault layer) and its WAL and snapshots on kvd_lazyfs, which keeps
everything not fsynced in memory. Each crash cuts the power there (every
unsynced byte and every creation, rename or removal whose directory was not
fsynced is gone from the backing directory), SIGKILLs kvd, unmounts and mounts
the backing directory again, restarts kvd on it and checks the recovered
state with tests/crash/crash_check.py: sync mode, every acknowledged write is
there and history is a prefix (tests/crash/crash_loop.py's docstring lists
every check). A kill during start-up is a power cut too.

Unlike crash_loop_power_loss this trusts nothing in kvd: a build that skips
the fdatasync system call, or a directory fsync, loses acknowledged writes
here (docs/testing.md, "The power-cut file system").

Every cut also drops unsynced bytes of a canary file of the test's own, and
the loop fails unless the canary comes back with only its synced content (the
file system really was lazy on this very mount). Prints crash_loop.py's
summary plus what the cuts dropped, and fails unless at least
--min-acked-per-cycle writes per cycle were acknowledged. Needs root and
/dev/fuse: elsewhere it exits 77 (skipped).
"""
import os
import random
import shutil
import signal
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "util"))
sys.path.insert(0, os.path.join(HERE, "..", "crash"))
sys.path.insert(0, HERE)
from kvdtest import SKIP_EXIT  # noqa: E402
from crash_loop import CrashLoop, arg_parser  # noqa: E402
from lazyfs_mount import LazyFsMount, Unavailable, unavailable  # noqa: E402


CANARY = b"durable canary"


class LazyFsCrashLoop(CrashLoop):
    def __init__(self, args, fs):
        self.fs = fs
        self.canary = os.path.join(fs.mountpoint, "canary")
        self.dropped = {"cuts": 0, "kvd_files": 0, "dropped_bytes": 0, "dropped_files": 0, "dropped_dirops": 0}
        super().__init__(args)

    def kind(self):
        return "lazyfs power cut, real Env"

    def storage_overrides(self):
        return {"wal_path": os.path.join(self.fs.mountpoint, "wal"),
                "snapshot_path": os.path.join(self.fs.mountpoint, "snapshots")}

    def crash(self):
        self.cut()  # before the kill: nothing kvd does after it reaches the "disk"
        self.server.kill(signal.SIGKILL)
        self.power_back()

    def crash_during_startup(self):
        self.server.spawn_and_kill(self.rng.uniform(0, 0.02), before_kill=self.cut)
        self.power_back()

    def cut(self):
        """The power cut, with a canary: unsynced bytes of our own that it must drop."""
        with open(self.canary, "r+b") as f:
            f.write(b"unsynced, cut %d" % self.dropped["cuts"])
        self.fs.cut()

    def power_back(self):
        st = self.fs.status()  # this mount's counters (a mount sees one cut)
        if st["revert_errors"] != 0:
            self.fail(f"lazyfs could not undo {st['revert_errors']} directory operations")
        self.dropped["cuts"] += 1
        for k in ("dropped_bytes", "dropped_files", "dropped_dirops"):
            self.dropped[k] += st[k]
        self.dropped["kvd_files"] += st["dropped_files"] - 1  # the canary is one
        self.fs.remount()
        with open(self.canary, "rb") as f:
            if f.read() != CANARY:
                self.fail("the power cut kept unsynced data (the canary's): the file system is not lazy")

    def run(self):
        rc = super().run()
        d = self.dropped
        print(f"lazyfs: power cuts {d['cuts']}, unsynced bytes dropped {d['dropped_bytes']} (canary included), "
              f"files with unsynced changes dropped {d['kvd_files']} (canary not counted), "
              f"directory operations undone {d['dropped_dirops']}")
        return rc


def main():
    args = arg_parser(__doc__).parse_args()
    why = unavailable()
    if why:
        print("SKIPPED: " + why)
        sys.exit(SKIP_EXIT)
    if args.power_loss:
        sys.exit("--power-loss is the fault layer's; this loop cuts the power in the file system")
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    tmp = tempfile.mkdtemp(prefix="kvd-lazyfs-")
    fs = LazyFsMount(os.path.join(tmp, "backing"), os.path.join(tmp, "mnt"), os.path.join(tmp, "lazyfs.log"))
    rc = 1
    try:
        try:
            fs.mount()
        except Unavailable as e:
            print("SKIPPED: " + str(e))
            rc = SKIP_EXIT
            return rc
        # kvd creates its data directories itself (the first cut may land
        # before anything else fsyncs their parent).
        with open(os.path.join(fs.mountpoint, "canary"), "wb") as f:
            f.write(CANARY)
            f.flush()
            os.fsync(f.fileno())
        fd = os.open(fs.mountpoint, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)
        rc = LazyFsCrashLoop(args, fs).run()
        fs_rc = fs.unmount()  # kvd stopped cleanly: the final sync, then exit 0
        if fs_rc != 0:
            print(f"FAILED: kvd_lazyfs exited {fs_rc}:\n{fs.log_tail()}", file=sys.stderr)
            rc = 1
    finally:
        fs.close()
        if rc in (0, SKIP_EXIT):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"lazyfs backing directory and log kept in {tmp}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
