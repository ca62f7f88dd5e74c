"""The mutation switches (kvd/mutation.h, scripts/mutate.sh) never reach a
build they were not asked for: a default configuration has none, a release,
packaged or test-less configuration with them is refused, and the kvd under
test has them exactly when its build was configured with KVD_MUTATION=ON
(KVD_MUTATION_BUILD, set by tests/CMakeLists.txt). A normal kvd ignores
KVD_MUTANT; a mutation build refuses a name that is no mutant."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "util"))
from kvdtest import binary  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class MutationBuild(unittest.TestCase):
    def configure(self, *args):
        build = tempfile.mkdtemp(prefix="kvd-cfg-")
        self.addCleanup(shutil.rmtree, build, True)
        return build, subprocess.run(["cmake", "-S", REPO, "-B", build] + list(args),
                                     capture_output=True, text=True, timeout=300)

    def test_default_configuration_has_no_switches(self):
        build, p = self.configure("-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DKVD_BUILD_TESTS=OFF")
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            self.assertIn("KVD_MUTATION:BOOL=OFF", f.read())
        with open(os.path.join(build, "compile_commands.json")) as f:
            commands = json.load(f)
        self.assertGreater(len(commands), 20)
        self.assertEqual([c["file"] for c in commands if "KVD_MUTATION" in c["command"]], [])
        self.assertEqual([c["file"] for c in commands if "mutation" in os.path.basename(c["file"])], [])

    def test_refused_where_it_could_ship(self):
        for args in (["-DCMAKE_BUILD_TYPE=Release"],
                     ["-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DKVD_PACKAGING=ON"],
                     ["-DCMAKE_BUILD_TYPE=Debug", "-DKVD_BUILD_TESTS=OFF"]):
            with self.subTest(args=args):
                _, p = self.configure("-DKVD_MUTATION=ON", *args)
                self.assertNotEqual(p.returncode, 0, "configured a mutation build with %s" % args)
                self.assertIn("KVD_MUTATION is for the mutation test build only", p.stderr)

    def test_kvd_has_the_switches_exactly_when_configured_with_them(self):
        want = os.environ.get("KVD_MUTATION_BUILD")
        self.assertIn(want, ("0", "1"), "KVD_MUTATION_BUILD must be set (run through ctest)")
        kvd = binary("KVD_BIN")
        with open(kvd, "rb") as f:
            has = b"KVD_MUTANT" in f.read()
        self.assertEqual(has, want == "1", "kvd at %s: mutation switches %s" % (kvd, "present" if has else "absent"))
        env = dict(os.environ, KVD_MUTANT="no_such_mutant")
        p = subprocess.run([kvd, "--version"], env=env, capture_output=True, text=True, timeout=30)
        if want == "1":
            self.assertNotEqual(p.returncode, 0, "a mutation build accepted an unknown mutant")
            self.assertIn("KVD_MUTANT=no_such_mutant names no mutant", p.stderr)
        else:
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(p.stdout.startswith("kvd "), p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
