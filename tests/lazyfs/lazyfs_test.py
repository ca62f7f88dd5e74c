#!/usr/bin/env python3
"""kvd_lazyfs against its model (docs/testing.md, "The power-cut file system"):
what a power cut keeps is exactly what fsync/fdatasync of a file and fsync of
a directory made durable; until then reads see the unsynced data.

Each test mounts the file system on a fresh backing directory, works through
the mount, cuts the power and compares the backing directory (and a fresh
mount of it) with what the model says survives. Needs root and /dev/fuse;
elsewhere it exits 77 (skipped).
"""
import errno
import os
import random
import shutil
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "util"))
sys.path.insert(0, HERE)
import kvdtest  # noqa: E402
from lazyfs_mount import LazyFsMount, Unavailable, backing_tree, unavailable  # noqa: E402


def write_at(fd, data, off):
    while data:
        n = os.pwrite(fd, data, off)
        data, off = data[n:], off + n


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


class LazyFsCase(unittest.TestCase):
    def setUp(self):
        why = unavailable()
        if why:
            self.skipTest(why)
        self.tmp = tempfile.mkdtemp(prefix="lazyfs-test-")
        self.backing = os.path.join(self.tmp, "backing")
        self.fs = LazyFsMount(self.backing, os.path.join(self.tmp, "mnt"), os.path.join(self.tmp, "lazyfs.log"))
        try:
            self.fs.mount()
        except Unavailable as e:
            self.skipTest(str(e))
        self.m = self.fs.mountpoint
        seed = os.environ.get("KVD_TEST_SEED")
        self.seed = int(seed) if seed else random.randrange(1 << 32)
        self.rng = random.Random(self.seed)

    def tearDown(self):
        self.fs.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def p(self, *names):
        return os.path.join(self.m, *names)

    def fsync_dir(self, *names):
        fd = os.open(self.p(*names), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def create(self, name, data=b"", sync=False):
        fd = os.open(self.p(name), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        write_at(fd, data, 0)
        if sync:
            os.fsync(fd)
        os.close(fd)

    def cut_and_check(self, files, dirs=()):
        """Power cut; the backing directory, and a new mount of it, hold exactly `files` and `dirs`."""
        self.fs.cut()
        self.assertEqual(self.fs.status()["revert_errors"], 0)
        got_files, got_dirs = backing_tree(self.backing)
        self.assertEqual(got_files, files)
        self.assertEqual(got_dirs, set(dirs))
        self.fs.remount()
        for name, data in files.items():
            self.assertEqual(read_all(self.p(name)), data, name)
        self.assertEqual(sorted(os.listdir(self.m)), sorted(n for n in list(files) + list(dirs) if "/" not in n))


class DataTest(LazyFsCase):
    def test_synced_part_survives_unsynced_part_and_file_are_dropped(self):
        self.create("A")
        self.create("B")
        self.fsync_dir()  # both names durable, both files empty
        a = os.open(self.p("A"), os.O_RDWR)
        write_at(a, b"synced part|", 0)
        os.fsync(a)
        write_at(a, b"second part, never synced", 12)
        b = os.open(self.p("B"), os.O_RDWR)
        write_at(b, b"B data, never synced", 0)
        # A page cache: reads and sizes show the unsynced data.
        self.assertEqual(read_all(self.p("A")), b"synced part|second part, never synced")
        self.assertEqual(os.stat(self.p("B")).st_size, 20)
        st = self.fs.status()
        self.assertGreater(st["dirty_bytes"], 0)
        self.assertEqual(st["unsynced_files"], 2)
        self.fs.cut()
        # The power is off: the open files and every new call fail.
        for call in (lambda: os.pread(a, 10, 0), lambda: os.fsync(b), lambda: os.listdir(self.m)):
            with self.assertRaises(OSError) as e:
                call()
            self.assertEqual(e.exception.errno, errno.EIO)
        os.close(a)
        os.close(b)
        self.assertEqual(self.fs.status()["dropped_files"], 2)
        self.cut_and_check({"A": b"synced part|", "B": b""})

    def test_fdatasync_and_fsync_both_persist_data_and_size_not_the_name(self):
        self.create("D")
        self.create("S")
        self.fsync_dir()
        for name, sync in (("D", os.fdatasync), ("S", os.fsync)):
            fd = os.open(self.p(name), os.O_RDWR)
            write_at(fd, name.encode() * 100, 0)
            os.ftruncate(fd, 10000)  # size only: fdatasync must persist it too
            sync(fd)
            write_at(fd, b"lost", 10000)
            os.close(fd)
        for name, sync in (("newD", os.fdatasync), ("newS", os.fsync)):
            fd = os.open(self.p(name), os.O_RDWR | os.O_CREAT, 0o644)
            write_at(fd, b"data of a file whose name was never made durable", 0)
            sync(fd)
            os.close(fd)
        self.assertEqual(os.stat(self.p("S")).st_size, 10004)
        self.cut_and_check({"D": b"D" * 100 + bytes(9900), "S": b"S" * 100 + bytes(9900)})

    def test_truncation_waits_for_fsync(self):
        data = bytes(self.rng.randrange(256) for _ in range(10000))
        self.create("T", data, sync=True)
        self.create("U", data, sync=True)
        self.fsync_dir()
        for name in ("T", "U"):
            fd = os.open(self.p(name), os.O_RDWR)
            os.ftruncate(fd, 100)
            os.ftruncate(fd, 8000)  # the cut-off bytes must come back as zeros
            self.assertEqual(os.pread(fd, 8000, 0), data[:100] + bytes(7900))
            if name == "U":
                os.fdatasync(fd)
            os.close(fd)
        fd = os.open(self.p("T"), os.O_WRONLY | os.O_TRUNC)  # O_TRUNC is a truncation like any other
        os.close(fd)
        self.assertEqual(os.stat(self.p("T")).st_size, 0)
        self.cut_and_check({"T": data, "U": data[:100] + bytes(7900)})

    def test_fallocate_grows_until_the_cut(self):
        self.create("F", b"head", sync=True)
        self.fsync_dir()
        fd = os.open(self.p("F"), os.O_RDWR)
        os.posix_fallocate(fd, 0, 65536)
        self.assertEqual(os.fstat(fd).st_size, 65536)
        self.assertEqual(os.pread(fd, 10, 0), b"head" + bytes(6))
        os.close(fd)
        self.cut_and_check({"F": b"head"})

    def test_random_operations_match_the_model(self):
        """Random writes, truncations, fallocates and syncs on a few files;
        after each step the mount shows the model's current content, and the
        cut leaves the model's durable content."""
        names = ["r%d" % i for i in range(4)]
        for n in names:
            self.create(n)
        self.fsync_dir()
        fds = {n: os.open(self.p(n), os.O_RDWR) for n in names}
        cur = {n: bytearray() for n in names}
        durable = {n: b"" for n in names}
        for step in range(600):
            n = self.rng.choice(names)
            fd, c = fds[n], cur[n]
            r = self.rng.random()
            if r < 0.55:
                off = self.rng.randrange(0, 24000)
                data = self.rng.randbytes(self.rng.choice([1, 7, 100, 4096, 5000, 9000]))
                write_at(fd, data, off)
                if len(c) < off:
                    c.extend(bytes(off - len(c)))
                c[off:off + len(data)] = data
            elif r < 0.7:
                size = self.rng.randrange(0, 26000)
                os.ftruncate(fd, size)
                del c[size:]
                c.extend(bytes(size - len(c)))
            elif r < 0.78:
                off, length = self.rng.randrange(0, 20000), self.rng.randrange(1, 10000)
                os.posix_fallocate(fd, off, length)
                if len(c) < off + length:
                    c.extend(bytes(off + length - len(c)))
            else:
                (os.fsync if self.rng.random() < 0.5 else os.fdatasync)(fd)
                durable[n] = bytes(c)
            self.assertEqual(os.fstat(fd).st_size, len(c), "step %d (seed %d)" % (step, self.seed))
            got = os.pread(fd, len(c) + 100, 0)
            self.assertEqual(got, bytes(c), "step %d (seed %d)" % (step, self.seed))
        for fd in fds.values():
            os.close(fd)
        self.cut_and_check(durable)


class NamespaceTest(LazyFsCase):
    def test_creation_needs_a_directory_fsync(self):
        self.create("kept", b"k", sync=True)
        self.fsync_dir()
        self.create("lost", b"l", sync=True)  # the file is synced, its name is not
        self.cut_and_check({"kept": b"k"})

    def test_rename_without_directory_fsync_is_undone(self):
        self.create("f", b"version 1", sync=True)
        self.fsync_dir()
        self.create("f.tmp", b"version 2", sync=True)
        os.rename(self.p("f.tmp"), self.p("f"))
        self.assertEqual(read_all(self.p("f")), b"version 2")
        self.assertEqual(sorted(os.listdir(self.m)), ["f"])
        self.cut_and_check({"f": b"version 1"})

    def test_rename_with_directory_fsync_survives(self):
        self.create("f", b"version 1", sync=True)
        self.fsync_dir()
        self.create("f.tmp", b"version 2", sync=True)
        os.rename(self.p("f.tmp"), self.p("f"))
        self.fsync_dir()
        self.cut_and_check({"f": b"version 2"})

    def test_unlink_without_directory_fsync_is_undone(self):
        self.create("gone", b"g", sync=True)
        self.create("back", b"b", sync=True)
        self.fsync_dir()
        os.unlink(self.p("gone"))
        self.fsync_dir()
        os.unlink(self.p("back"))
        self.assertEqual(os.listdir(self.m), [])
        self.cut_and_check({"back": b"b"})

    def test_directories_need_their_parent_fsynced(self):
        os.mkdir(self.p("kept"))
        self.fsync_dir()
        os.mkdir(self.p("kept", "sub"))  # only kept/ is fsynced below: sub's entry is durable
        os.mkdir(self.p("lost"))         # the root is not fsynced again: lost/ goes with its files
        self.create("kept/sub/x", b"x", sync=True)
        self.create("lost/y", b"y", sync=True)
        self.fsync_dir("kept", "sub")
        self.fsync_dir("lost")
        self.fsync_dir("kept")
        self.cut_and_check({"kept/sub/x": b"x"}, {"kept", "kept/sub"})

    def test_sync_command_makes_everything_durable(self):
        os.mkdir(self.p("d"))
        self.create("d/f", b"file data")
        self.create("g", b"old")
        self.fsync_dir()
        os.rename(self.p("g"), self.p("h"))
        self.fs.control("sync")
        self.assertEqual(self.fs.status()["pending_dirops"], 0)
        self.cut_and_check({"d/f": b"file data", "h": b"old"}, {"d"})

    def test_renames_across_directories_are_refused(self):
        os.mkdir(self.p("d"))
        self.create("f", b"f")
        with self.assertRaises(OSError) as e:
            os.rename(self.p("f"), self.p("d", "f"))
        self.assertEqual(e.exception.errno, errno.EXDEV)


class ConcurrencyTest(LazyFsCase):
    def test_concurrent_appends_and_fdatasyncs_keep_exactly_what_was_synced(self):
        """Threads append and fdatasync their own files while others read
        them; the cut lands while they run. Each file keeps exactly its
        content at its last fdatasync that returned."""
        nthreads, min_syncs = 6, 20
        names = ["c%d" % i for i in range(nthreads)]
        for n in names:
            self.create(n)
        self.fsync_dir()
        synced = {n: 0 for n in names}
        enough = [threading.Event() for _ in names]
        errors = []

        def record(n, i):
            return ("%s:%06d;" % (n, i)).encode()

        def writer(idx, n, seed):
            rng = random.Random(seed)
            fd = os.open(self.p(n), os.O_WRONLY | os.O_APPEND)
            i = syncs = 0
            try:
                while True:
                    for _ in range(rng.randrange(1, 5)):
                        os.write(fd, record(n, i))
                        i += 1
                    size = i * len(record(n, 0))
                    os.fdatasync(fd)
                    synced[n] = size  # only once the sync returned
                    syncs += 1
                    if syncs >= min_syncs:
                        enough[idx].set()
            except OSError as e:
                if e.errno != errno.EIO:
                    errors.append("writer %s: %s" % (n, e))
            finally:
                enough[idx].set()
                os.close(fd)

        def reader(stop):
            while not stop.is_set():
                for n in names:
                    try:
                        data = read_all(self.p(n))
                    except OSError as e:
                        if e.errno != errno.EIO:
                            errors.append("reader: %s" % e)
                        return
                    size = len(record(n, 0))
                    whole = len(data) - len(data) % size
                    if data[:whole] != b"".join(record(n, i) for i in range(whole // size)):
                        errors.append("reader: %s shows data that was never written" % n)
                        return

        stop = threading.Event()
        threads = [threading.Thread(target=writer, args=(i, n, self.rng.random())) for i, n in enumerate(names)]
        threads.append(threading.Thread(target=reader, args=(stop,)))
        for t in threads:
            t.start()
        waited = [e.wait(60) for e in enough]
        self.fs.cut()
        stop.set()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertTrue(all(waited))
        self.assertTrue(all(synced[n] >= min_syncs * len(record(n, 0)) for n in names), synced)
        files, _ = backing_tree(self.backing)
        self.assertEqual({n: len(files[n]) for n in names}, synced)
        for n in names:
            size = len(record(n, 0))
            self.assertEqual(files[n], b"".join(record(n, i) for i in range(synced[n] // size)))


if __name__ == "__main__":
    kvdtest.main(total_timeout=240)
