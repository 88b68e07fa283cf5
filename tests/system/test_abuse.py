#!/usr/bin/env python3
"""Abuse: response rate limiting (a flood from one network is slipped and
dropped while another network keeps its answers), TCP connections per
client, and slowloris (hundreds of connections sending one byte) closed by
the query timeout while service goes on."""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import ServerTestCase, standard_zone  # noqa: E402
from test_admin import scrape, wait_metrics  # noqa: E402

ZONES = {"example.com.yaml": standard_zone("example.com")}
ADMIN = "admin:\n  listen: 127.0.0.1:{admin_port}\n"

FLOODER = "127.0.0.1"     # network 127.0.0.0/24
BYSTANDER = "127.0.1.1"   # another /24: its own buckets


def udp_socket(source):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.setblocking(False)
    return s


def flood(port, source, name, count, seconds):
    """Sends COUNT queries for NAME from SOURCE within SECONDS (bounded both
    ways), reading what comes back; returns the parsed answers."""
    s = udp_socket(source)
    answers = []
    deadline = time.monotonic() + seconds
    try:
        sent = 0
        while sent < count and time.monotonic() < deadline:
            try:
                s.sendto(h.build_query(name, "A", id=sent & 0xFFFF), ("127.0.0.1", port))
                sent += 1
            except BlockingIOError:
                pass
            while True:
                try:
                    answers.append(h.parse_message(s.recv(4096)))
                except BlockingIOError:
                    break
            if sent % 50 == 0:
                time.sleep(0.005)  # ~10k/s at most: a flood, not a benchmark
        end = time.monotonic() + 0.5  # stragglers
        while time.monotonic() < end:
            try:
                answers.append(h.parse_message(s.recv(4096)))
            except BlockingIOError:
                time.sleep(0.01)
        return sent, answers
    finally:
        s.close()


class RateLimit(ServerTestCase):
    SERVER_ARGS = dict(zones=ZONES, workers=2, extra_config=ADMIN,
                       server_options={"rate_limit": {"responses_per_second": 20, "slip": 2}})

    def test_flood_from_one_network_limited_while_another_is_answered(self):
        before = scrape(self.srv)
        bystander = []
        import threading
        stop = threading.Event()

        def keep_asking():
            while not stop.is_set() and len(bystander) < 100:
                bystander.append(h.dig(self.srv.port, "www.example.com", "A", "-b", BYSTANDER))
                time.sleep(0.05)

        t = threading.Thread(target=keep_asking)
        t.start()
        try:
            started = time.monotonic()
            sent, answers = flood(self.srv.port, FLOODER, "www.example.com", 4000, 4.0)
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            t.join(30)

        full = [m for m in answers if not m.tc and m.answer]
        slipped = [m for m in answers if m.tc]
        print("\nflood: %d queries in %.2f s: %d answered, %d slipped; bystander: %d of %d answered"
              % (sent, elapsed, len(full), len(slipped), sum(1 for r in bystander if r.rdatas("A")),
                 len(bystander)), file=sys.stderr)
        # At most the rate per started second passes (and no fewer than one second's worth).
        self.assertGreaterEqual(len(full), 20)
        self.assertLessEqual(len(full), 20 * (int(elapsed) + 2), "rate limit let too much through")
        # With slip 2, about every other limited response slips: empty, TC=1, question kept.
        limited = sent - len(full)
        self.assertGreater(len(slipped), limited // 4)
        self.assertLess(len(slipped), limited * 3 // 4 + 20)
        for m in slipped[:50]:
            self.assertTrue(m.qr)
            self.assertEqual(m.question[0][0].lower().rstrip("."), "www.example.com")
            self.assertEqual((len(m.answer), len(m.authority), len(m.additional)), (0, 0, 0))

        # The other network was answered in full, every time.
        self.assertGreater(len(bystander), 5)
        for r in bystander:
            self.assertEqual(r.status, "NOERROR", r.stdout + r.stderr)
            self.assertNotIn("tc", r.flags)
            self.assertEqual(r.rdatas("A"), ["192.0.2.10"])

        after = wait_metrics(self.srv, lambda m: m.value("steerdns_rate_limited_total", kind="answer",
                                                         action="drop") > 0, "drops counted")
        slip = (after.value("steerdns_rate_limited_total", kind="answer", action="slip")
                - before.value("steerdns_rate_limited_total", kind="answer", action="slip"))
        drop = (after.value("steerdns_rate_limited_total", kind="answer", action="drop")
                - before.value("steerdns_rate_limited_total", kind="answer", action="drop"))
        self.assertEqual(slip + drop, limited)
        self.assertGreaterEqual(slip, len(slipped))
        self.assertIn("rate limit: answer responses to 127.0.0.0/24 over 20/s", self.srv.log())

    def test_nxdomain_flood_of_random_names_is_one_bucket(self):
        s = udp_socket(FLOODER)
        got = []
        try:
            for i in range(200):
                s.sendto(h.build_query("r%d.example.com" % i, "A", id=i), ("127.0.0.1", self.srv.port))
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                try:
                    got.append(h.parse_message(s.recv(4096)))
                except BlockingIOError:
                    time.sleep(0.01)
        finally:
            s.close()
        nx = [m for m in got if not m.tc]
        self.assertLessEqual(len(nx), 40)  # 20/s; the loop may straddle a second
        self.assertTrue(all(m.rcode == 3 for m in nx))

    def test_tcp_is_not_limited(self):
        for _ in range(40):
            r = h.dig(self.srv.port, "mail.example.com", "A", "+tcp", "-b", FLOODER)
            self.assertEqual(r.rdatas("A"), ["192.0.2.25"], r.stdout)


class TcpPerClient(ServerTestCase):
    SERVER_ARGS = dict(zones=ZONES, workers=2, extra_config=ADMIN,
                       tcp={"max_connections_per_client": 8, "idle_timeout": "30s"})

    def test_connections_per_client(self):
        held = []
        try:
            for i in range(8):
                s = h.tcp_connect(self.srv.port)
                s.sendall(h.frame(h.build_query("www.example.com", "A", id=i)))
                self.assertIsNotNone(h.tcp_read_msg(s, 5.0), "connection %d not served" % i)
                held.append(s)
            ninth = h.tcp_connect(self.srv.port)
            try:
                self.assertIn(h.wait_closed(ninth, 3.0), ("eof", "reset"))
            finally:
                ninth.close()
            # Another client is not affected.
            r = h.dig(self.srv.port, "www.example.com", "A", "+tcp", "-b", "127.0.0.2")
            self.assertEqual(r.rdatas("A"), ["192.0.2.10"], r.stdout)
            wait_metrics(self.srv, lambda m: m.value("steerdns_tcp_refused_total", limit="client") >= 1,
                         "the refusal counted")
        finally:
            for s in held:
                s.close()
        # Closed connections give their places back.
        h.wait_for(lambda: (lambda r: r if r.rdatas("A") else None)(
            h.dig(self.srv.port, "www.example.com", "A", "+tcp")), 5.0, what="TCP after closing")


class Slowloris(ServerTestCase):
    SERVER_ARGS = dict(zones=ZONES, workers=2, extra_config=ADMIN,
                       tcp={"query_timeout": "1s", "idle_timeout": "10s"})

    def test_hundreds_of_one_byte_connections(self):
        before = scrape(self.srv).value("steerdns_tcp_timeouts_total", timeout="query")
        conns = []
        try:
            # 300 connections from 10 addresses (under the per-client limit),
            # each sending the first octet of a length and nothing more.
            for i in range(300):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind(("127.0.2.%d" % (1 + i % 10), 0))
                s.settimeout(5)
                s.connect(("127.0.0.1", self.srv.port))
                s.sendall(b"\x00")
                conns.append(s)
            opened = time.monotonic()
            # Service goes on, over UDP and TCP.
            for _ in range(5):
                r = h.dig(self.srv.port, "www.example.com", "A", "+tcp", time_=1)
                self.assertEqual(r.rdatas("A"), ["192.0.2.10"], r.stdout)
                r = h.dig(self.srv.port, "www.example.com", "A", time_=1)
                self.assertEqual(r.rdatas("A"), ["192.0.2.10"], r.stdout)
            # Every one is closed within seconds of its first octet.
            for s in conns:
                self.assertIn(h.wait_closed(s, max(0.1, opened + 4.0 - time.monotonic())), ("eof", "reset"),
                              "a one-byte connection still open 4 s later")
        finally:
            for s in conns:
                s.close()
        wait_metrics(self.srv, lambda m: m.value("steerdns_tcp_timeouts_total", timeout="query") >= before + 300,
                     "300 query timeouts counted")

    def test_trickle_does_not_extend_the_deadline(self):
        q = h.frame(h.build_query("www.example.com", "A", id=7))
        with h.tcp_connect(self.srv.port) as s:
            started = time.monotonic()
            closed = False
            for byte in q:  # one octet every 0.2 s: the whole message would take ~7 s
                try:
                    s.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                if h.wait_closed(s, 0.2) in ("eof", "reset"):
                    closed = True
                    break
            self.assertTrue(closed, "a trickling query was never cut off")
            self.assertLess(time.monotonic() - started, 3.0)

    def test_slow_but_whole_query_within_the_timeout_is_answered(self):
        q = h.frame(h.build_query("www.example.com", "A", id=9))
        with h.tcp_connect(self.srv.port) as s:
            s.sendall(q[:5])
            time.sleep(0.3)  # part of the behaviour under test: a pause inside one message
            s.sendall(q[5:])
            m = h.tcp_read_msg(s, 5.0)
            self.assertIsNotNone(m)
            self.assertEqual(h.parse_message(m).id, 9)


if __name__ == "__main__":
    unittest.main(verbosity=2)
