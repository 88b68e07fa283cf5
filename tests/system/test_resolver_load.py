#!/usr/bin/env python3
"""Busy ECS resolvers are never cut off, floods still are. Through the
example configuration (rate limiting on, as shipped), PowerDNS Recursor and
unbound each resolve 2,000 queries for the geo name, every one for another
client subnet: every client gets its answer (no SERVFAIL, nothing
unanswered), and steerdns's metrics show nothing slipped or dropped. Then a
flood of that same question straight from one address, without cookies,
is still limited. Sent paced, in steps of 100; no rate is asserted."""

import os
import random
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from adminapi import scrape  # noqa: E402
from common import DEADLINE, SOURCE  # noqa: E402
from dnswire import build_query, parse_message  # noqa: E402
from resolvers import Recursor, Unbound, installed  # noqa: E402

QUERIES = 2000
NAME = "artifacts.example.com"
ALL_VIPS = {"127.1.0.1", "127.1.0.2", "127.2.0.1", "127.2.0.2", "127.3.0.1", "127.3.0.2"}


def example_config():
    """examples/steerdns.yaml on the test's ports: the shipped settings."""
    with open(os.path.join(SOURCE, "examples", "steerdns.yaml")) as f:
        text = f.read()
    text = text.replace('    - "[::1]:5353"\n', "")
    text = text.replace("127.0.0.1:5353", "127.0.0.1:{port}").replace("127.0.0.1:8053",
                                                                        "127.0.0.1:{admin_port}")
    assert "{port}" in text and "{admin_port}" in text and "rate_limit:" in text
    return text


def example_zone():
    with open(os.path.join(SOURCE, "examples", "zones", "example.com.yaml")) as f:
        return f.read()


def client_subnets(n, seed=15):
    """N distinct /24s spread over the public IPv4 space."""
    rng = random.Random(seed)
    seen = set()
    while len(seen) < n:
        first = rng.choice([o for o in range(1, 224) if o not in (10, 127)])
        seen.add((first, rng.randrange(256), rng.randrange(256)))
    return sorted(seen)


def ecs_option(octets):
    return (8, struct.pack("!HBB", 1, 24, 0) + bytes(octets))


def ask_many(port, subnets):
    """Each subnet's query to the resolver on PORT, paced in steps of 100;
    returns {index: parsed reply}, waiting for the last ones up to DEADLINE."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    replies = {}

    def drain():
        for _ in range(10000):
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                return
            m = parse_message(data)
            replies.setdefault(m.id, m)

    try:
        for start in range(0, len(subnets), 100):
            for i in range(start, min(start + 100, len(subnets))):
                q = build_query(NAME, "A", id=i, flags=0x0100,
                                edns={"options": [ecs_option(subnets[i])]})
                sock.sendto(q, ("127.0.0.1", port))
            time.sleep(0.05)
            drain()
        deadline = time.monotonic() + DEADLINE
        while len(replies) < len(subnets) and time.monotonic() < deadline:
            time.sleep(0.05)
            drain()
    finally:
        sock.close()
    return replies


def limited(metrics):
    return {dict(labels)["kind"] + "/" + dict(labels)["action"]: value
            for (name, labels), value in metrics.samples.items()
            if name == "steerdns_rate_limited_total" and value > 0}


def geo_queries(metrics):
    return sum(v for (name, labels), v in metrics.samples.items()
               if name == "steerdns_geo_answers_total")


class BusyResolvers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = h.Server({"example.com.yaml": example_zone()}, config_text=example_config())
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def through(self, resolver_class, seed):
        if not installed(resolver_class):
            self.skipTest("%s is not installed" % resolver_class.name)
        subnets = client_subnets(QUERIES, seed)
        before = scrape(self.srv)
        with resolver_class(self.srv.port) as resolver:
            replies = ask_many(resolver.port, subnets)
            output = resolver.output()
        after = scrape(self.srv)
        missing = [i for i in range(len(subnets)) if i not in replies]
        self.assertEqual(missing[:10], [], "%d of %d clients got no answer from %s; its log:\n%s"
                         % (len(missing), len(subnets), resolver_class.name, output[-3000:]))
        failed = {}
        for i, m in replies.items():
            vips = {".".join(str(b) for b in rr.rdata) for rr in m.answer if rr.type == 1}
            if m.rcode_name != "NOERROR" or not vips or not vips <= ALL_VIPS:
                failed[i] = (m.rcode_name, sorted(vips))
        self.assertEqual(dict(list(failed.items())[:10]), {}, "%d of %d clients failed through %s"
                         % (len(failed), len(subnets), resolver_class.name))
        self.assertEqual(limited(after), limited(before),
                         "steerdns slipped or dropped answers to %s" % resolver_class.name)
        self.assertGreater(geo_queries(after) - geo_queries(before), 0)

    def test_pdns_recursor(self):
        self.through(Recursor, 15)

    def test_unbound(self):
        self.through(Unbound, 16)


def flood(port, query, bursts):
    """BURSTS bursts of 8000 copies of QUERY from one socket; after each,
    yields the limited counters (the caller stops when it has seen enough)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        for _ in range(bursts):
            for _ in range(8000):
                try:
                    sock.sendto(query, ("127.0.0.1", port))
                except BlockingIOError:
                    pass
            yield sock
    finally:
        sock.close()


def server_cookie(port, client_cookie):
    """The COOKIE option data (client + server cookie) steerdns gives CLIENT_COOKIE from 127.0.0.1."""
    q = build_query(NAME, "A", id=9, edns={"options": [(10, client_cookie)]})
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    try:
        sock.sendto(q, ("127.0.0.1", port))
        opt = parse_message(sock.recv(4096)).opt
    finally:
        sock.close()
    rdata, at = opt["rdata"], 0
    while at + 4 <= len(rdata):
        code, size = struct.unpack("!HH", rdata[at:at + 4])
        if code == 10:
            return rdata[at + 4:at + 4 + size]
        at += 4 + size
    raise AssertionError("no COOKIE in the reply")


def settle(srv):
    """Waits until steerdns has answered everything sent: two scrapes in a
    row count the same queries."""
    def total():
        return sum(v for (name, _), v in scrape(srv).samples.items() if name == "steerdns_queries_total")
    last = [None]

    def same():
        now = total()
        if now == last[0]:
            return True
        last[0] = now
        time.sleep(0.2)
        return False
    h.wait_for(same, what="the flood answered")


class Flood(unittest.TestCase):
    """Its own server: the flood's buckets never touch the resolvers'."""

    def test_a_flood_of_one_question_is_still_limited(self):
        """The same geo question from one address, no ECS and no cookie, in
        bursts until the limiter speaks (bounded: at most 40 bursts); then
        the same flood with a valid server cookie is never limited."""
        srv = h.Server({"example.com.yaml": example_zone()}, config_text=example_config())
        srv.start()
        self.addCleanup(srv.close)
        # Our server cookie first, while nothing is limited.
        cookie = server_cookie(srv.port, b"\x01\x02\x03\x04\x05\x06\x07\x08")
        self.assertEqual(len(cookie), 24)
        seen = {}
        for _ in flood(srv.port, build_query(NAME, "A", id=1, edns=True), 40):
            seen = limited(scrape(srv))
            if any(k.startswith("geo_answer/") for k in seen):
                break
        self.assertTrue(any(k.startswith("geo_answer/") for k in seen),
                        "a flood of %s from one address was never limited: %s" % (NAME, seen))

        settle(srv)  # the first flood's last queries answered (or limited)
        proven = build_query(NAME, "A", id=2, edns={"options": [(10, cookie)]})
        before = limited(scrape(srv))
        for _ in flood(srv.port, proven, 5):
            pass
        h.wait_for(lambda: scrape(srv).value("steerdns_cookies_total", 0, state="valid") >= 1000,
                   what="the cookie flood counted")
        self.assertEqual(limited(scrape(srv)), before, "a valid server cookie must never be limited")


if __name__ == "__main__":
    unittest.main()
