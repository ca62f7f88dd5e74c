"""`kvd --check-config`, which the service's ExecReload runs before SIGHUP so
`systemctl reload kvd` fails on a broken kvd.toml: exit 0 on a valid file,
2 with file:line on a broken one, and it never touches a running kvd."""

import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import kvdtest  # noqa: E402
from kvdtest import KvdTestCase, TIMEOUT


def check_config(path):
    p = subprocess.run([kvdtest.binary("KVD_BIN"), "--check-config", "--config", path],
                       capture_output=True, text=True, timeout=TIMEOUT)
    return p.returncode, p.stdout, p.stderr


class CheckConfig(KvdTestCase):
    def test_valid_file_exits_0(self):
        kvd = self.server(start=False, durability={"mode": "batch", "batch_size": 77})
        rc, out, err = check_config(kvd.config_path)
        self.assertEqual(rc, 0, err)
        self.assertIn("77", out)

    def test_broken_files_exit_2_with_file_and_line(self):
        kvd = self.server(start=False)
        good = open(kvd.config_path).read()
        lines = good.splitlines()
        at = lines.index("[server]") + 1
        cases = [
            ("syntax error", "bogus = = 1", None),
            ("unknown key", "no_such_key = 1", "no_such_key"),
            ("wrong type", "max_connections = \"many\"", "max_connections"),
            ("out of range", "max_connections = 0", "max_connections"),
        ]
        for name, line, key in cases:
            with self.subTest(name):
                kvd.write_config(text="\n".join(lines[:at] + [line] + lines[at:]) + "\n")
                rc, out, err = check_config(kvd.config_path)
                self.assertEqual(rc, 2, "%s: %r %r" % (name, out, err))
                self.assertRegex(err, r"kvd\.toml\S*(:%d\b| line %d\b)" % (at + 1, at + 1), name)
                if key:
                    self.assertIn(key, err)
        rc, out, err = check_config(os.path.join(self.tmp, "missing.toml"))
        self.assertEqual(rc, 2)
        self.assertIn("missing.toml", err)

    def test_running_kvd_is_not_touched(self):
        kvd = self.server(durability={"batch_size": 5})
        kvd.write_config(durability={"batch_size": 9})
        rc, _, err = check_config(kvd.config_path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(str(kvd.config_get("durability.batch_size")), "5")  # validation only, no reload
        self.assertTrue(kvd.running())


if __name__ == "__main__":
    kvdtest.main()
