#!/usr/bin/env python3
"""Faults (issue #7, hardening): SIGTERM under load.

  * SIGTERM while bench/loadgen (over UDP and TCP, a reload in progress or
    not) keeps both workers busy: exit status 0, shutdown logged, no
    sanitizer report, and steerdns does not wait for its clients to go
    quiet: it has exited while the load is still being sent.

Everything listens on 127.0.0.0/8; the load is bounded in count and time;
the exit is waited for with one generous deadline (common.DEADLINE), and
how long it took is printed, not asserted.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from common import SOURCE, cpu_seconds, tail  # noqa: E402

SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer"
                       r"|runtime error:|terminate called|Segmentation fault|core dumped")
LOADGEN = os.path.join(os.path.dirname(os.path.abspath(h.BIN)), "bench", "loadgen")


class SigtermUnderLoad(unittest.TestCase):
    """SIGTERM while bench/loadgen (UDP, and TCP with pipelining) keeps both
    workers busy and idle TCP connections are open; then the same with a
    reload in progress.  The new world is built on a nice-19 thread (under
    this load 3-7 s instead of 0.3 s) while the main loop goes on, so
    SIGTERM stops then too, without waiting for the build: the build is
    abandoned.  The load lasts until the test stops it, after steerdns has
    exited (at most LOAD_SECONDS), so "exited while the load still ran"
    shows that the shutdown did not wait for the clients."""

    LOAD_SECONDS = h.DEADLINE + 30

    def start_load(self, srv, seconds):
        """loadgen over UDP and TCP when built (bench/loadgen next to the binary),
        else Python UDP senders; all bounded by `seconds` (and a count).
        Returns (procs, threads, stop, running): running() is true while the
        UDP load is still being sent."""
        procs, threads, stop = [], [], [time.monotonic() + seconds]
        if os.access(LOADGEN, os.X_OK):
            for extra in ([], ["-T", "-S", "4"]):
                procs.append(subprocess.Popen(
                    [LOADGEN, "-p", str(srv.port), "-m", "static:4,geo-ecs:4,nxdomain:1",
                     "-t", str(seconds), "-c", "50000000", "-S", "8"] + extra,
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

            def running():  # the UDP loadgen: its queries go nowhere once steerdns is gone
                return procs[0].poll() is None
        else:
            def send():
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    for i in range(20000000):
                        if time.monotonic() >= stop[0]:
                            return
                        try:
                            u.sendto(h.build_query("www.example.com", id=i & 0xFFFF),
                                     ("127.0.0.1", srv.port))
                        except OSError:
                            pass  # ICMP once steerdns is gone: keep sending
                        if i % 100 == 99:
                            time.sleep(0.001)  # pacing the load
            threads = [threading.Thread(target=send) for _ in range(2)]
            for t in threads:
                t.start()

            def running():
                return any(t.is_alive() for t in threads)
        return procs, threads, stop, running

    @staticmethod
    def stop_load(procs, threads, stop, running=None):
        stop[0] = 0  # Python senders end at their next query
        for p in procs:  # ours: loadgen's queries go nowhere once steerdns is gone
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for t in threads:
            t.join(10)

    def sigterm(self, reload_first):
        with open(os.path.join(SOURCE, "examples", "zones", "example.com.yaml")) as f:
            geo = f.read()
        geo = re.sub(r"\n    check:\n(      .*\n)+", "\n", geo)  # placement only: no probes
        srv = h.Server({"example.com.yaml": h.standard_zone(), "geo.example.net.yaml":
                        geo.replace("zone: example.com", "zone: example.net")}, workers=2)
        srv.start()
        load = ((), (), [0])
        idle = []
        try:
            idle = [h.tcp_connect(srv.port) for _ in range(5)]  # shutdown must close these too
            c0 = cpu_seconds(srv.pid)
            load = self.start_load(srv, self.LOAD_SECONDS)
            running = load[3]
            h.wait_for(lambda: cpu_seconds(srv.pid) - c0 > 0.5, what="the load to reach steerdns")
            self.assertTrue(running(), "the load ended before SIGTERM")
            if reload_first:
                srv.reload()
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            try:
                code = srv.proc.wait(h.DEADLINE)
            except subprocess.TimeoutExpired:
                self.fail("steerdns did not exit within %.0f s of SIGTERM under load; log:\n%s"
                          % (h.DEADLINE, tail(srv.log())))
            took = time.monotonic() - t0
            still_loaded = running()
            log = srv.log()
            self.assertEqual(code, 0, "exit status %s; log:\n%s" % (code, tail(log)))
            self.assertIn("SIGTERM received, stopping", log)
            stopped = re.search(r"stopped after (\d+) UDP and (\d+) TCP queries", log)
            self.assertIsNotNone(stopped, tail(log))
            self.assertIsNone(SANITIZER.search(log), log)
            reload_line = re.search(r"(reloaded .* in [\d.]+ ms|reload failed.*|a reload being built was abandoned)",
                                    log)
            if reload_first:
                self.assertIsNotNone(reload_line, "the reload neither finished nor was abandoned: " + log)
            print("  exit 0 in %.2f s after SIGTERM%s; %s UDP and %s TCP queries answered"
                  % (took, " (%s)" % reload_line.group(1) if reload_first else "",
                     stopped.group(1), stopped.group(2)))
            self.assertTrue(still_loaded, "steerdns exited only once the load had ended; log:\n"
                            + tail(log))
        finally:
            for s in idle:
                s.close()
            self.stop_load(*load)
            srv.close()

    def test_sigterm_under_load(self):
        self.sigterm(reload_first=False)

    def test_sigterm_under_load_during_a_reload(self):
        self.sigterm(reload_first=True)


if __name__ == "__main__":
    unittest.main()
