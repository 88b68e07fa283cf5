#!/usr/bin/env python3
"""EDNS(0) (RFC 6891) in steerdns over UDP, checked with dig, kdig and raw
packets: the OPT record in replies, BADVERS, unknown options, the advertised
payload (edns_payload from the config) as the UDP limit, truncation (TC, and
dig's fallback to TCP), minimal ANY (RFC 8482) and NOTIFY as NOTIMP.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import BIG_TXT, MED_TXT, ServerTestCase, standard_zone  # noqa: E402

# the zones of test_protocol.py
ZONES = {
    "example.com.yaml": standard_zone("example.com"),
    # zone TTL 600 but SOA TTL 60 < minimum 300: negative TTL must be 60
    "example.net.yaml": standard_zone("example.net", ttl=600, soa_ttl=60),
}


def txt_strings(rdata):
    """dig's TXT rdata '"a" "b"' -> ["a", "b"] (no escapes in our test data)."""
    parts = rdata.split('" "')
    return [p.strip('"') for p in parts]


class Edns(ServerTestCase):
    """EDNS(0) (RFC 6891), truncation and minimal ANY."""

    SERVER_ARGS = dict(zones=ZONES, edns_payload=1232)

    def test_opt_in_reply(self):
        r = self.dig("www.example.com", "A")
        self.assertAnswered(r)
        self.assertIsNotNone(r.edns, "reply to an EDNS query needs an OPT\n" + r.stdout)
        self.assertEqual(r.edns["version"], 0)
        self.assertEqual(r.edns["udp"], 1232, r.stdout)
        # a negative answer carries OPT too
        r = self.dig("nope.example.com", "A", "+bufsize=4096")
        self.assertAnswered(r, "NXDOMAIN")
        self.assertEqual(r.edns and r.edns["udp"], 1232, r.stdout)

    def test_no_opt_without_edns(self):
        r = self.dig("www.example.com", "A", "+noedns")
        self.assertAnswered(r)
        self.assertIsNone(r.edns, r.stdout)
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"])
        m = h.udp_query(self.srv.port, h.build_query("www.example.com", "A", id=7))
        self.assertIsNotNone(m, "no reply")
        self.assertEqual(m.opts, [], m)
        self.assertEqual(m.counts[3], 0, m)

    def test_badvers(self):
        r = self.dig("www.example.com", "A", "+edns=1", "+noednsnegotiation")
        self.assertAnswered(r, "BADVERS")
        self.assertIsNotNone(r.edns, r.stdout)
        self.assertEqual(r.edns["version"], 0, r.stdout)
        self.assertEqual(r.answer, [], r.stdout)
        # raw: extended rcode 1 (=> 16) in the OPT, header rcode 0, our ID
        q = h.build_query("www.example.com", "A", id=0x0B0B, edns={"version": 1})
        m = h.udp_query(self.srv.port, q)
        self.assertIsNotNone(m, "no reply")
        self.assertEqual(m.id, 0x0B0B)
        self.assertEqual(m.rcode, 16, m)
        self.assertEqual(m.opt["version"], 0, m)
        self.assertEqual(m.answer, [], m)

    def test_badvers_kdig(self):
        r = self.kdig("www.example.com", "A", "+edns=1")
        self.assertAnswered(r, "BADVERS")
        self.assertEqual(r.edns and r.edns["version"], 0, r.stdout)

    def test_unknown_option_ignored(self):
        r = self.dig("www.example.com", "A", "+ednsopt=65001:abcd")
        self.assertAnswered(r)
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"], r.stdout)
        self.assertEqual(r.edns and r.edns["udp"], 1232, r.stdout)
        # RFC 6891 6.1.2: unknown options are ignored, not echoed
        self.assertNotIn("OPT=65001", r.stdout)

    def test_do_bit_and_cookie(self):
        r = self.dig("www.example.com", "A", "+dnssec")
        self.assertAnswered(r)
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"], r.stdout)
        r = self.dig("www.example.com", "A", "+cookie")
        self.assertAnswered(r)
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"], r.stdout)

    def test_small_advertised_size_counts_as_512(self):
        # RFC 6891 6.2.5: values below 512 are treated as 512
        m = h.udp_query(self.srv.port, h.build_query("www.example.com", "A", id=1,
                                                     edns={"udp": 0}))
        self.assertIsNotNone(m, "no reply")
        self.assertEqual(m.rcode_name, "NOERROR")
        self.assertFalse(m.tc, m)
        self.assertEqual(len(m.answer), 1)
        reply = h.raw_udp(self.srv.port, h.build_query("medtxt.example.com", "TXT", id=2,
                                                       edns={"udp": 100}), timeout=2)
        self.assertIsNotNone(reply, "no reply")
        m = h.parse_message(reply)
        self.assertTrue(m.tc, m)
        self.assertLessEqual(len(reply), 512)

    # 8. truncation ---------------------------------------------------------------
    def test_big_txt_truncated_over_udp(self):
        for opts in ((), ("+bufsize=1232",), ("+bufsize=4096",), ("+noedns",)):
            with self.subTest(opts=opts):
                r = self.dig("bigtxt.example.com", "TXT", "+ignore", *opts)
                self.assertIsNotNone(r.status, r.stdout)
                self.assertIn("tc", r.flags, r.stdout)
                self.assertNotIn("ra", r.flags)
                if "+noedns" not in opts:
                    # RFC 6891 7: OPT also in a truncated reply
                    self.assertEqual(r.edns and r.edns["udp"], 1232, r.stdout)

    def test_truncated_reply_sizes_raw(self):
        for edns, limit in (({"udp": 4096}, 1232), ({"udp": 1232}, 1232),
                            ({"udp": 1000}, 1000), (None, 512)):
            with self.subTest(edns=edns):
                q = h.build_query("bigtxt.example.com", "TXT", id=0x7777, edns=edns)
                reply = h.raw_udp(self.srv.port, q, timeout=2)
                self.assertIsNotNone(reply, "no reply")
                self.assertLessEqual(len(reply), limit)
                m = h.parse_message(reply)
                self.assertEqual(m.id, 0x7777)
                self.assertTrue(m.tc, m)
                self.assertEqual(m.rcode_name, "NOERROR")
                self.assertEqual(m.question, [("bigtxt.example.com.", 16, 1)])
                self.assertEqual(bool(m.opts), edns is not None, m)

    def test_big_txt_over_tcp(self):
        r = self.dig("bigtxt.example.com", "TXT", "+tcp", "+bufsize=1232")
        self.assertAnswered(r)
        self.assertNotIn("tc", r.flags, r.stdout)
        self.assertIn("aa", r.flags)
        self.assertEqual(sorted(txt_strings(x)[0] for x in r.rdatas("TXT")), sorted(BIG_TXT),
                         r.stdout)

    def test_dig_falls_back_to_tcp(self):
        r = self.dig("bigtxt.example.com", "TXT")  # no +ignore: dig retries over TCP
        self.assertAnswered(r)
        self.assertEqual(len(r.rdatas("TXT")), 15, r.stdout)

    def test_medium_txt(self):
        r = self.dig("medtxt.example.com", "TXT", "+ignore", "+bufsize=1232")
        self.assertAnswered(r)
        self.assertNotIn("tc", r.flags, r.stdout)
        self.assertEqual(sorted(txt_strings(x)[0] for x in r.rdatas("TXT")), sorted(MED_TXT))
        for opts in (("+noedns",), ("+bufsize=512",)):
            with self.subTest(opts=opts):
                r = self.dig("medtxt.example.com", "TXT", "+ignore", *opts)
                self.assertIsNotNone(r.status, r.stdout)
                self.assertIn("tc", r.flags, r.stdout)

    # 9. ANY ----------------------------------------------------------------------
    def test_any_minimal(self):
        for name in ("example.com", "www.example.com"):
            for opts in ((), ("+tcp",)):
                with self.subTest(name=name, opts=opts):
                    r = self.dig(name, "ANY", *opts)
                    self.assertAnswered(r)
                    self.assertIn("aa", r.flags, r.stdout)
                    self.assertNotIn("tc", r.flags, r.stdout)
                    self.assertGreaterEqual(len(r.answer), 1, r.stdout)
                    self.assertEqual(len(set(r.types())), 1,
                                     "RFC 8482: one rrset for ANY\n" + r.stdout)
                    self.assertEqual({rr[0] for rr in r.answer}, {name + "."}, r.stdout)

    def test_any_kdig(self):
        r = self.kdig("example.com", "ANY")
        self.assertAnswered(r)
        self.assertEqual(len(set(r.types())), 1, r.stdout)

    def test_any_negative(self):
        r = self.dig("nope.example.com", "ANY")
        self.assertAnswered(r, "NXDOMAIN")
        self.assertEqual([rr[3] for rr in r.authority], ["SOA"], r.stdout)

    def test_notify_via_dig_is_notimp(self):
        r = self.dig("example.com", "SOA", "+opcode=notify", "+norec")
        self.assertIsNotNone(r.status, r.stdout)
        self.assertEqual(r.status, "NOTIMP", r.stdout)
        self.assertEqual(r.opcode, "NOTIFY", r.stdout)


class EdnsPayload1400(ServerTestCase):
    """edns_payload from the config is what we advertise and the limit we use."""

    SERVER_ARGS = dict(
        zones={"example.com.yaml": standard_zone(
            "example.com",
            extra_records="  t1300:\n    TXT:\n" + "".join(
                "      - t%02d-%s\n" % (i, "u" * 196) for i in range(6)))},
        edns_payload=1400)

    def test_advertised_payload(self):
        r = self.dig("www.example.com", "A")
        self.assertAnswered(r)
        self.assertEqual(r.edns and r.edns["udp"], 1400, r.stdout)

    def test_payload_limits_udp(self):
        # ~1330 bytes: fits 1400 but not 1232
        q = h.build_query("t1300.example.com", "TXT", id=1, edns={"udp": 4096})
        reply = h.raw_udp(self.srv.port, q, timeout=2)
        self.assertIsNotNone(reply, "no reply")
        m = h.parse_message(reply)
        self.assertFalse(m.tc, m)
        self.assertEqual(len(m.answer), 6, m)
        self.assertGreater(len(reply), 1232)
        q = h.build_query("t1300.example.com", "TXT", id=2, edns={"udp": 1232})
        reply = h.raw_udp(self.srv.port, q, timeout=2)
        self.assertIsNotNone(reply, "no reply")
        self.assertTrue(h.parse_message(reply).tc)
        self.assertLessEqual(len(reply), 1232)
        q = h.build_query("bigtxt.example.com", "TXT", id=3, edns={"udp": 4096})
        reply = h.raw_udp(self.srv.port, q, timeout=2)
        self.assertIsNotNone(reply, "no reply")
        self.assertTrue(h.parse_message(reply).tc)
        self.assertLessEqual(len(reply), 1400)


if __name__ == "__main__":
    unittest.main()
