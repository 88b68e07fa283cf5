#!/usr/bin/env python3
"""dnstap (logging.dnstap): fstrm_capture (Debian's fstrm-bin) listens on a
unix socket, steerdns sends AUTH_QUERY and AUTH_RESPONSE frames to it, and
dnstap-read (BIND's) decodes them: client address and port, transport,
zone, and the messages themselves, EDNS Client Subnet included. When the
reader goes away steerdns goes on answering and connects again when a
reader is back."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from adminapi import ADMIN_CONFIG, scrape  # noqa: E402
from geozones import EXAMPLE_ZONE, TEST_MMDB  # noqa: E402

CAPTURE = shutil.which("fstrm_capture")
READ = shutil.which("dnstap-read")


class Capture:
    """fstrm_capture on SOCKET writing OUT; started() once steerdns's
    writer has said START (the frames after that are kept)."""

    def __init__(self, socket_path, out):
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        self.out = out
        self.log = open(out + ".log", "w+")
        self.proc = subprocess.Popen([CAPTURE, "-d", "-d", "-d", "-d", "-t", "protobuf:dnstap.Dnstap",
                                      "-u", socket_path, "-w", out],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        h.wait_for(lambda: os.path.exists(socket_path), what="fstrm_capture's socket")

    def text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def wait_started(self):
        h.wait_for(lambda: "received FSTRM_CONTROL_START" in self.text(),
                   what="steerdns connected to fstrm_capture")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(h.DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def frames(self):
        """dnstap-read -y of the capture: one YAML document per frame, as text."""
        r = subprocess.run([READ, "-y", self.out], capture_output=True, text=True, timeout=h.DEADLINE)
        if r.returncode != 0:
            raise AssertionError("dnstap-read failed: %s%s" % (r.stdout, r.stderr))
        return [doc for doc in r.stdout.split("\n---\n") if doc.strip()]


@unittest.skipUnless(CAPTURE and READ, "fstrm_capture (fstrm-bin) or dnstap-read is not installed")
class Dnstap(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="steerdns-dnstap-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.socket = os.path.join(self.dir, "dnstap.sock")

    def server(self):
        return h.Server({"example.com.yaml": EXAMPLE_ZONE}, server_options={"identity": "ns-tap.test"},
                        extra_config="geoip:\n  database: %s\n%s" % (TEST_MMDB, ADMIN_CONFIG),
                        logging_options={"dnstap": "{socket: %s}" % self.socket})

    def test_frames_decode_with_the_client_subnet(self):
        capture = Capture(self.socket, os.path.join(self.dir, "one.fstrm"))
        self.addCleanup(capture.stop)
        srv = self.server()
        srv.start()
        self.addCleanup(srv.close)
        capture.wait_started()
        r = h.dig(srv.port, "artifacts.example.com", "A", "+subnet=193.51.24.0/24")
        self.assertEqual(r.status, "NOERROR", r.stdout)
        r = h.dig(srv.port, "www.example.com", "A", "+tcp")
        self.assertEqual(r.status, "NOERROR", r.stdout)
        metrics = scrape(srv)
        self.assertGreaterEqual(metrics.value("steerdns_dnstap_frames_total", 0, result="queued"), 4)
        srv.stop()  # flushes its queues to the reader
        capture.stop()
        frames = capture.frames()
        ours = [f for f in frames if "artifacts.example.com. IN A" in f or "www.example.com. IN A" in f]
        queries = [f for f in ours if "type: AUTH_QUERY" in f]
        responses = [f for f in ours if "type: AUTH_RESPONSE" in f]
        self.assertEqual(len(queries), 2, "\n---\n".join(frames))
        self.assertEqual(len(responses), 2, "\n---\n".join(frames))
        geo = [f for f in queries if "artifacts.example.com. IN A" in f]
        self.assertEqual(len(geo), 1, "\n---\n".join(frames))
        for field in ("identity: ns-tap.test", "socket_protocol: UDP", 'query_address: "127.0.0.1"',
                      "response_port: %d" % srv.port, "query_zone: example.com.",
                      "CLIENT-SUBNET: 193.51.24.0/24/0"):
            self.assertIn(field, geo[0])
        answer = [f for f in responses if "artifacts.example.com" in f][0]
        self.assertRegex(answer, r"CLIENT-SUBNET: 193\.51\.24\.0/24/\d+")
        self.assertIn("127.1.0.1", answer)
        self.assertTrue(any("socket_protocol: TCP" in f for f in responses), "\n---\n".join(responses))

    def test_a_reader_that_goes_away_and_comes_back(self):
        first = Capture(self.socket, os.path.join(self.dir, "first.fstrm"))
        srv = self.server()
        srv.start()
        self.addCleanup(srv.close)
        first.wait_started()
        first.stop()
        # No reader: answers go on (frames are dropped or discarded).
        for i in range(20):
            r = h.dig(srv.port, "www.example.com", "A")
            self.assertEqual(r.status, "NOERROR", r.stdout)
        second = Capture(self.socket, os.path.join(self.dir, "second.fstrm"))
        self.addCleanup(second.stop)
        second.wait_started()
        r = h.dig(srv.port, "mail.example.com", "A")
        self.assertEqual(r.status, "NOERROR", r.stdout)
        srv.stop()
        second.stop()
        self.assertTrue(any("mail.example.com. IN A" in f for f in second.frames()))


if __name__ == "__main__":
    unittest.main()
