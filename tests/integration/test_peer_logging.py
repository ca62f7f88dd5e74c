"""Who did what, in kvd's log (issue 12, section 6): connections opened and
closed at debug and protocol errors at warning, each with the client's pid
and uid (SO_PEERCRED on the Unix socket); every CONFIG SET at notice level
with who made it; the tmpfs warning of start-up repeated in STATUS (the
protocol, `kvctl status` and `kvctl status --json`)."""

import json
import os
import re
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, encode_frame, Op  # noqa: E402
from kvd_proto import OK  # noqa: E402

ME = "pid %d uid %d" % (os.getpid(), os.getuid())


class PeerLogging(KvdTestCase):
    def test_connections_at_debug_with_pid_and_uid(self):
        kvd = self.server(log={"level": "debug"})
        mark = kvd.log_offset()
        with kvd.client() as c:
            self.assertEqual(c.ping().status, OK)
            log = kvd.wait_for_log(lambda t: "opened by " + ME in t, since=mark, what="the connection's open line")
        m = re.search(r"debug: connection (\d+) opened by " + re.escape(ME), log)
        self.assertIsNotNone(m, log)
        conn = m.group(1)
        kvd.wait_for_log(lambda t: "connection %s (%s) closed" % (conn, ME) in t, since=mark,
                         what="the connection's close line")

    def test_connections_not_logged_at_info(self):
        kvd = self.server()
        with kvd.client() as c:
            self.assertEqual(c.ping().status, OK)
            c.config_set(b"log.level", b"info").check()  # a line after the connection opened
        kvd.wait_for_log(lambda t: "CONFIG SET log.level" in t)
        self.assertNotIn("opened by", kvd.log_of_run())

    def test_protocol_error_at_warning_with_pid_and_uid(self):
        kvd = self.server()
        mark = kvd.log_offset()
        with kvd.raw() as r:
            bad = encode_frame(Op.PING, req_id=9)
            r.send(bad[:4] + b"XXXX" + bad[8:])  # forged magic
            r.wait_closed()
        log = kvd.wait_for_log(lambda t: "protocol error" in t, since=mark, what="the protocol error line")
        self.assertRegex(log, r"warning: connection \d+ \(%s\): protocol error: \S+.*; closed" % re.escape(ME))

    def test_config_set_at_notice_with_who(self):
        kvd = self.server()
        mark = kvd.log_offset()
        with kvd.client() as c:
            c.config_set(b"durability.batch_size", b"64").check()
        log = kvd.wait_for_log(lambda t: "CONFIG SET durability.batch_size" in t, since=mark)
        self.assertIn("notice: CONFIG SET durability.batch_size: 1024 -> 64 (by %s)" % ME, log)
        # Through kvctl: its own pid (not ours), our uid.
        r = kvd.kvctl("config", "set", "durability.mode", "batch")
        self.assertEqual(r.rc, 0, r)
        log = kvd.wait_for_log(lambda t: "CONFIG SET durability.mode" in t, since=mark)
        m = re.search(r"notice: CONFIG SET durability\.mode: sync -> batch \(by pid (\d+) uid (\d+)\)", log)
        self.assertIsNotNone(m, log)
        self.assertNotEqual(int(m.group(1)), os.getpid())
        self.assertEqual(int(m.group(2)), os.getuid())
        # A refused change is not logged as one.
        with kvd.client() as c:
            self.assertNotEqual(c.config_set(b"server.socket", b"/x").status, OK)
        self.assertNotIn("CONFIG SET server.socket", kvd.log_text(mark))

    def test_storage_warnings_in_status_match_the_start_up_log(self):
        kvd = self.server()
        self.check_status_warnings(kvd)

    def test_tmpfs_warning_in_status(self):
        if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
            print("SKIP: no writable /dev/shm (tmpfs)")
            self.skipTest("no /dev/shm")
        d = tempfile.mkdtemp(prefix="kvdt-", dir="/dev/shm")
        self.addCleanup(shutil.rmtree, d, True)
        kvd = kvdtest.KvdServer(d, start=False)
        self._servers.append(kvd)
        kvd.start()
        warnings = self.check_status_warnings(kvd)
        self.assertTrue(any("tmpfs" in w and kvd.wal_path in w for w in warnings), warnings)

    def check_status_warnings(self, kvd):
        """STATUS's storage_warnings are exactly the start-up log's file-system warnings."""
        logged = re.findall(r"warning: ((?:WAL|snapshot) directory .* is on .*)$", kvd.log_of_run(), re.M)
        with kvd.client() as c:
            warnings = c.status().check().json["storage_warnings"]
        self.assertEqual(warnings, logged)
        r = kvd.kvctl("status", "--json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(json.loads(r.out)["storage_warnings"], logged)
        r = kvd.kvctl("status")
        self.assertEqual(r.rc, 0, r)
        line = re.search(r"^  storage_warnings: (.*)$", r.out, re.M)
        self.assertIsNotNone(line, r.out)
        self.assertEqual(line.group(1), ", ".join(logged) if logged else "(none)")
        return warnings


if __name__ == "__main__":
    kvdtest.main()
