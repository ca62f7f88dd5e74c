"""How a user or a packager configures kvd: warnings never fail their build
(KVD_WERROR defaults OFF, -Werror only when asked for, as scripts/test.sh
does). Configures scratch build trees only; compiles nothing."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class WerrorDefault(unittest.TestCase):
    def configure(self, *args):
        build = tempfile.mkdtemp(prefix="kvd-cfg-")
        self.addCleanup(shutil.rmtree, build, True)
        subprocess.run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DKVD_BUILD_TESTS=OFF"]
                       + list(args), check=True, capture_output=True, timeout=300)
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            cache = f.read()
        with open(os.path.join(build, "compile_commands.json")) as f:
            commands = [c["command"] for c in json.load(f)]
        return cache, commands

    def test_off_by_default_on_when_asked(self):
        cache, commands = self.configure()
        self.assertIn("KVD_WERROR:BOOL=OFF", cache)
        self.assertTrue(commands)
        self.assertFalse([c for c in commands if "-Werror" in c.split()], "a default build uses -Werror")
        cache, commands = self.configure("-DKVD_WERROR=ON")
        self.assertIn("KVD_WERROR:BOOL=ON", cache)
        self.assertTrue(all("-Werror" in c.split() for c in commands), "KVD_WERROR=ON without -Werror")


if __name__ == "__main__":
    unittest.main(verbosity=2)
