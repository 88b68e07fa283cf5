#!/usr/bin/env python3
"""Conformance details where steerdns once differed from gdnsd and Knot,
checked with dig and kdig: TSIG-signed queries answered NOTAUTH with an
unsigned BADKEY TSIG (RFC 8945 §5.2: we hold no keys), QCLASS ANY answered
from IN data, CD not copied on NOTIMP, edns-tcp-keepalive (RFC 7828) over
TCP with the configured idle timeout; and the query log's fields."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import ServerTestCase  # noqa: E402
from geozones import EXAMPLE_ZONE, TEST_MMDB  # noqa: E402

ZONES = {"example.com.yaml": h.standard_zone("example.com")}
KEY = "hmac-sha256:transfer-key:c3RlZXJkbnMgdGVzdCBrZXkgMDEyMzQ1Njc4OWFi"


class Conformance(ServerTestCase):
    SERVER_ARGS = dict(zones=ZONES, tcp={"idle_timeout": "3s"})

    def test_tsig_gets_notauth_badkey(self):
        r = self.dig("www.example.com", "A", "-y", KEY)
        self.assertEqual(r.status, "NOTAUTH", r.stdout + r.stderr)
        self.assertEqual(r.answer, [], r.stdout)
        self.assertRegex(r.stdout, r"transfer-key\.\s+0\s+ANY\s+TSIG\s+hmac-sha256\. \d+ 300 0 \d+ BADKEY 0",
                         "an unsigned BADKEY TSIG record:\n" + r.stdout)
        # kdig shows the TSIG error as the status.
        r = self.kdig("www.example.com", "A", "-y", KEY)
        self.assertIn("status: BADKEY", r.stdout, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"TSIG\s+hmac-sha256\. \d+ 300 0 \d+ BADKEY 0", r.stdout)

    def test_qclass_any_is_answered_from_in(self):
        r = self.dig("www.example.com", "A", qclass="ANY")
        self.assertAnswered(r)
        self.assertIn("aa", r.flags, r.stdout)
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"], r.stdout)
        self.assertEqual(r.question[0][1], "ANY", r.stdout)
        r = self.dig("www.example.com", "A", qclass="HS")
        self.assertAnswered(r, "REFUSED")

    def test_cd_is_not_copied_on_notimp(self):
        r = self.dig("www.example.com", "A", "+opcode=7", "+cdflag")
        self.assertEqual(r.status, "NOTIMP", r.stdout)
        self.assertNotIn("cd", r.flags, r.stdout)
        r = self.dig("www.example.com", "A", "+cdflag")
        self.assertIn("cd", r.flags, "a QUERY keeps CD (RFC 6840 §5.9):\n" + r.stdout)

    def test_tcp_keepalive_says_our_idle_timeout(self):
        r = self.dig("www.example.com", "A", "+tcp", "+keepalive")
        self.assertAnswered(r)
        self.assertIn("TCP KEEPALIVE: 3.0 secs", r.stdout)
        r = self.dig("www.example.com", "A", "+keepalive")
        self.assertAnswered(r)
        self.assertNotIn("KEEPALIVE", r.stdout, "never over UDP:\n" + r.stdout)


class QueryLog(ServerTestCase):
    """One line per query with client, client subnet and scope, question,
    rcode, answered region, size, flags, cookie state and time spent."""

    SERVER_ARGS = dict(zones={"example.com.yaml": EXAMPLE_ZONE}, query_log=True,
                       extra_config="geoip:\n  database: %s\n" % TEST_MMDB)

    def line_for(self, needle):
        def found():
            lines = [l for l in self.srv.log().splitlines() if " query " in l and needle in l]
            return lines[-1] if lines else None
        return h.wait_for(found, what="a query log line with %r" % needle)

    def test_geo_answer_line(self):
        r = self.dig("artifacts.example.com", "A", "+subnet=193.51.24.0/24", "+cookie")
        self.assertAnswered(r)
        line = self.line_for("name=artifacts.example.com.")
        self.assertRegex(line, r"query udp client=127\.0\.0\.1#\d+ ecs=193\.51\.24\.0/24 scope=\d+ "
                               r"name=artifacts\.example\.com\. type=A rcode=NOERROR region=paris "
                               r"size=\d+ flags=- cookie=client us=\d+$")

    def test_static_answer_over_tcp(self):
        r = self.dig("nothing.example.com", "AAAA", "+tcp", "+nocookie")
        self.assertAnswered(r, "NXDOMAIN")
        line = self.line_for("name=nothing.example.com.")
        self.assertRegex(line, r"query tcp client=127\.0\.0\.1#\d+ ecs=- name=nothing\.example\.com\. "
                               r"type=AAAA rcode=NXDOMAIN region=- size=\d+ flags=- cookie=none us=\d+$")


if __name__ == "__main__":
    unittest.main()
