"""The benchmark scripts' run sizes and their redis-benchmark wrapper
(bench/compare.py): whole pipelines only, finite rates, and a failed run
reported with redis-benchmark's own stderr."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import compare  # noqa: E402

if shutil.which("redis-benchmark") is None or shutil.which("taskset") is None:
    print("redis-benchmark or taskset not installed (scripts/install-deps.sh)")
    sys.exit(77)  # skipped (tests/bench/tests.cmake)


class RunSizes(unittest.TestCase):
    def test_every_run_is_whole_pipelines_for_every_client(self):
        for quick in (True, False):
            for mode in ("sync", "batch", "none"):
                for clients in (1, 16, 64):
                    for pipeline in (1, 16):
                        n = compare.requests_for(mode, clients, pipeline, quick)
                        self.assertEqual(n % (clients * pipeline), 0, (mode, clients, pipeline, quick, n))
                        self.assertGreater(n, 0)

    def test_quick_runs_have_a_hundred_round_trips_on_one_client(self):
        # A pipelined smoke run shorter than 1 ms made redis-benchmark print inf/s.
        for mode in ("sync", "batch", "none"):
            self.assertGreaterEqual(compare.requests_for(mode, 1, 16, True), 1600)

    def test_whole_pipelines_rounds_up(self):
        self.assertEqual(compare.whole_pipelines(200, 1, 16), 208)
        self.assertEqual(compare.whole_pipelines(208, 1, 16), 208)
        self.assertEqual(compare.whole_pipelines(0, 4, 16), 64)
        self.assertEqual(compare.whole_pipelines(1000, 16, 1), 1008)

    def test_a_partial_pipeline_is_refused(self):
        with self.assertRaises(ValueError):
            compare.RedisBenchmark("/nonexistent.sock", 0, 1, 200, 16, 100, 1000, "set")


class RedisBenchmarkFailures(unittest.TestCase):
    def test_a_failed_run_carries_its_stderr(self):
        d = tempfile.mkdtemp()
        try:
            rb = compare.RedisBenchmark(os.path.join(d, "none.sock"), 0, 1, 160, 16, 100, 1000, "set")
            with self.assertRaises(RuntimeError) as e:
                rb.result()
            self.assertIn("exited with status 1", str(e.exception))
            self.assertIn("Could not connect", str(e.exception))  # redis-benchmark's stderr
        finally:
            shutil.rmtree(d)

    def test_an_error_reply_fails_the_run(self):
        # A server that answers every command with an error: redis-benchmark
        # must not turn that into a rate.
        d = tempfile.mkdtemp()
        path = os.path.join(d, "err.sock")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen(8)

        def answer(c):
            with c:
                while c.recv(65536):
                    c.sendall(b"-ERR broken\r\n" * 64)

        def serve():
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return  # closed: the test is over
                threading.Thread(target=answer, args=(c,), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        try:
            rb = compare.RedisBenchmark(path, 0, 1, 160, 16, 100, 1000, "set")
            with self.assertRaises(RuntimeError) as e:
                rb.result()
            self.assertIn("exited with status 1", str(e.exception))
            self.assertIn("broken", str(e.exception))
        finally:
            srv.shutdown(socket.SHUT_RDWR)
            srv.close()
            shutil.rmtree(d)


class RespReport(unittest.TestCase):
    def test_resp_vs_native_target_uses_kvctl_bench_on_both_protocols(self):
        import compare_resp
        row = compare_resp.summarize_row(
            {"kvd_mode": "none", "redis": "no AOF", "cmd": "GET", "clients": 16, "pipeline": 16},
            kr=[(100.0, 9)], rr=[(110.0, 8)], br=[(180.0, 7), (190.0, 7), (195.0, 5)], nr=[(200.0, 6)])
        self.assertAlmostEqual(row["resp_vs_native"], 0.95)  # kvctl bench --resp over kvctl bench native
        self.assertAlmostEqual(row["resp_vs_redis"], 100.0 / 110.0)
        text = "\n".join(compare_resp.report_lines({"resp_rows": [row]}))
        self.assertIn("kvd RESP via kvctl bench ops/s", text)
        self.assertIn("| 190 | 200 | 0.95× |", text)
        self.assertIn("| kvd RESP vs native, kvctl bench on both, same rows (lowest) | 0.95× | ≥ 0.9× | met |", text)


if __name__ == "__main__":
    unittest.main()
