#!/usr/bin/env python3
"""Regenerates the seed corpora of the wal_reader and snapshot_reader fuzz
targets from files a real kvd wrote (so they follow the format as it is):

    KVD_BIN=build/<dir>/daemon/kvd python3 fuzz/gen_storage_corpus.py

Seeds named valid-* must recover / load without damage
(tests/storage/storage_fuzz_regression_test.cc checks it); the others are
damaged variants of them (torn, flipped, zero-padded, truncated).
"""
import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "util"))
import kvdtest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    tmp = tempfile.mkdtemp(prefix="kvd-corpus-")
    try:
        kvd = kvdtest.KvdServer(os.path.join(tmp, "s"), storage={"segment_size": "64KiB"})
        with kvd.client() as c:
            c.put(b"k", b"v").check()
            c.put(b"user:1", b"alice").check()
            c.delete(b"k").check()
            c.batch([("put", b"a", b"1"), ("put", b"b", b"\x00\xff"), ("del", b"user:1")]).check()
            c.put(b"bin\x00key", bytes(range(40))).check()
            c.snapshot().check()
            c.put(b"after-snapshot", b"x" * 30).check()
        assert kvd.terminate_and_wait() == 0
        seg = os.path.join(kvd.wal_path, kvd.wal_segments()[0])
        with open(seg, "rb") as f:
            wal = f.read()
        with open(os.path.join(kvd.snapshot_path, kvd.snapshots()[0]), "rb") as f:
            snap = f.read()
        # An empty snapshot: a fresh kvd snapshotting nothing.
        kvd2 = kvdtest.KvdServer(os.path.join(tmp, "e"))
        with kvd2.client() as c:
            c.snapshot().check()
        assert kvd2.terminate_and_wait() == 0
        with open(os.path.join(kvd2.snapshot_path, kvd2.snapshots()[0]), "rb") as f:
            empty_snap = f.read()
        kvd.close()
        kvd2.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # WAL format v2 seeds (the writer writes v2). The seeds without "v2" in
    # their names were written by the v1 writer and are kept: recovery still
    # reads v1 segments (docs/wal_format.md §7).
    write("wal_reader", "valid-v2-put-del-batch", wal)
    write("wal_reader", "valid-v2-header-only", wal[:32])
    write("wal_reader", "valid-v2-zero-padded", wal + bytes(200))
    write("wal_reader", "v2-torn-last-record", wal[:-5])
    write("wal_reader", "v2-torn-in-record-header", wal[:32 + 13])
    write("wal_reader", "v2-flipped-first-record", wal[:40] + bytes([wal[40] ^ 0x10]) + wal[41:])
    write("wal_reader", "v2-flipped-epoch", wal[:52] + bytes([wal[52] ^ 0x01]) + wal[53:])
    write("wal_reader", "v2-zero-header-then-garbage", wal + bytes(26) + b"\x01garbage")
    write("snapshot_reader", "valid-5-keys", snap)
    write("snapshot_reader", "valid-empty", empty_snap)
    write("snapshot_reader", "truncated-trailer", snap[:-3])
    write("snapshot_reader", "flipped-body", snap[:50] + bytes([snap[50] ^ 1]) + snap[51:])
    write("snapshot_reader", "header-only", snap[:36])
    print("wrote %d wal_reader and %d snapshot_reader seeds" % (8, 5))


if __name__ == "__main__":
    main()
