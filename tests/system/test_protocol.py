#!/usr/bin/env python3
"""DNS protocol behaviour of steerdns over UDP, checked with dig, kdig and raw packets.

Covers: authoritative answers and header flags, NXDOMAIN / NODATA / empty
non-terminals with negative TTLs, REFUSED, referrals with glue, CNAME chains
(and their loops and limits), wildcards (RFC 4592), case preservation, name
compression, closest-zone selection and IPv6.  (EDNS, truncation and ANY:
test_protocol_edns.py; malformed packets: test_protocol_malformed.py.)
"""

import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import ServerTestCase, standard_zone  # noqa: E402

ZONES = {
    "example.com.yaml": standard_zone("example.com"),
    # zone TTL 600 but SOA TTL 60 < minimum 300: negative TTL must be 60
    "example.net.yaml": standard_zone("example.net", ttl=600, soa_ttl=60),
}

SOA_RDATA = "ns1.example.com. hostmaster.example.com. 2024010101 3600 600 1209600 300"
REFERRAL_NS = {"ns1.sub.example.com.", "ns.elsewhere.net."}


class Answers(ServerTestCase):
    """Positive, negative, referral, CNAME and wildcard answers."""

    SERVER_ARGS = dict(zones=ZONES, edns_payload=1232)

    def assertNegative(self, r, status, zone="example.com", ttl=300):
        self.assertAnswered(r, status)
        self.assertIn("aa", r.flags, r.stdout)
        self.assertEqual(len(r.authority), 1, r.stdout)
        owner, rttl, cls, rtype, _ = r.authority[0]
        self.assertEqual((owner, cls, rtype), (zone + ".", "IN", "SOA"), r.stdout)
        self.assertEqual(rttl, ttl, "negative TTL must be min(SOA TTL, minimum)\n" + r.stdout)

    def assertReferral(self, r):
        self.assertAnswered(r, "NOERROR")
        self.assertNotIn("aa", r.flags, "referral must not be authoritative\n" + r.stdout)
        self.assertEqual(r.answer, [], r.stdout)
        ns = [rr for rr in r.authority if rr[3] == "NS"]
        self.assertEqual({rr[0] for rr in ns}, {"sub.example.com."}, r.stdout)
        self.assertEqual({rr[4] for rr in ns}, REFERRAL_NS, r.stdout)
        self.assertEqual([rr for rr in r.authority if rr[3] != "NS"], [], r.stdout)
        glue = [(rr[0], rr[3], rr[4]) for rr in r.additional]
        self.assertIn(("ns1.sub.example.com.", "A", "192.0.2.53"), glue, r.stdout)
        self.assertFalse([g for g in glue if g[0] == "ns.elsewhere.net."],
                         "no glue for an out-of-zone NS\n" + r.stdout)

    # 1. SOA / A answers and header flags --------------------------------------
    def test_soa_at_apex(self):
        r = self.dig("example.com", "SOA")
        self.assertAnswered(r)
        self.assertIn("aa", r.flags)
        self.assertEqual(r.answer, [("example.com.", 3600, "IN", "SOA", SOA_RDATA)], r.stdout)

    def test_a_record(self):
        r = self.dig("www.example.com", "A")
        self.assertAnswered(r)
        self.assertIn("aa", r.flags)
        self.assertEqual(r.answer, [("www.example.com.", 3600, "IN", "A", "192.0.2.10")],
                         r.stdout)
        self.assertEqual(r.question, [("www.example.com.", "IN", "A")])

    def test_aaaa_record(self):
        r = self.dig("www.example.com", "AAAA")
        self.assertAnswered(r)
        self.assertEqual(r.answer, [("www.example.com.", 3600, "IN", "AAAA", "2001:db8::10")],
                         r.stdout)

    def test_mx_and_apex_ns(self):
        r = self.dig("example.com", "MX")
        self.assertAnswered(r)
        self.assertIn("aa", r.flags)
        self.assertEqual(sorted(r.rdatas("MX")), ["10 mail.example.com.", "20 mail2.example.net."],
                         r.stdout)
        r = self.dig("example.com", "NS")
        self.assertAnswered(r)
        self.assertIn("aa", r.flags)
        self.assertEqual(sorted(r.rdatas("NS")), ["ns1.example.com.", "ns2.example.com."],
                         r.stdout)

    def test_rd_copied_ra_never_set(self):
        r = self.dig("www.example.com", "A", "+rec")
        self.assertAnswered(r)
        self.assertIn("rd", r.flags, r.stdout)
        r = self.dig("www.example.com", "A", "+norec")
        self.assertAnswered(r)
        self.assertNotIn("rd", r.flags, r.stdout)
        self.assertIn("aa", r.flags, r.stdout)
        for name in ("nope.example.com", "x.sub.example.com", "www.example.org"):
            for opt in ("+rec", "+norec"):
                with self.subTest(name=name, opt=opt):
                    r = self.dig(name, "A", opt)
                    self.assertIsNotNone(r.status, r.stdout)
                    self.assertNotIn("ra", r.flags, r.stdout)
                    self.assertEqual("rd" in r.flags, opt == "+rec", r.stdout)

    def test_second_zone(self):
        r = self.dig("www.example.net", "A")
        self.assertAnswered(r)
        self.assertIn("aa", r.flags)
        self.assertEqual(r.answer, [("www.example.net.", 600, "IN", "A", "192.0.2.10")],
                         r.stdout)

    # 2. NXDOMAIN / NODATA / empty non-terminal -------------------------------
    def test_nxdomain(self):
        r = self.dig("nope.example.com", "A")
        self.assertNegative(r, "NXDOMAIN")
        self.assertEqual(r.answer, [])
        self.assertEqual(r.authority[0][4], SOA_RDATA)

    def test_nxdomain_deeper(self):
        r = self.dig("x.y.nope.example.com", "TXT")
        self.assertNegative(r, "NXDOMAIN")

    def test_negative_ttl_is_soa_ttl_when_smaller(self):
        r = self.dig("nope.example.net", "A")
        self.assertNegative(r, "NXDOMAIN", zone="example.net", ttl=60)
        r = self.dig("www.example.net", "MX")
        self.assertNegative(r, "NOERROR", zone="example.net", ttl=60)

    def test_nodata(self):
        for name, qtype in (("www.example.com", "MX"), ("example.com", "AAAA"),
                            ("mail.example.com", "TXT"), ("www.example.com", "TYPE65000")):
            with self.subTest(name=name, qtype=qtype):
                r = self.dig(name, qtype)
                self.assertNegative(r, "NOERROR")
                self.assertEqual(r.answer, [], r.stdout)

    def test_empty_non_terminal_is_nodata(self):
        for name in ("b.deep.example.com", "deep.example.com"):
            with self.subTest(name=name):
                r = self.dig(name, "A")
                self.assertNegative(r, "NOERROR")
                self.assertEqual(r.answer, [], r.stdout)
        r = self.dig("a.b.deep.example.com", "A")
        self.assertAnswered(r)
        self.assertEqual(r.rdatas("A"), ["192.0.2.60"], r.stdout)
        r = self.dig("c.b.deep.example.com", "A")
        self.assertNegative(r, "NXDOMAIN")

    # 3. REFUSED ----------------------------------------------------------------
    def test_refused_outside_our_zones(self):
        for name in ("www.example.org", "example.org", "com", ".", "notexample.com"):
            with self.subTest(name=name):
                r = self.dig(name, "A")
                self.assertAnswered(r, "REFUSED")
                self.assertNotIn("aa", r.flags, r.stdout)
                self.assertEqual(r.answer, [], r.stdout)

    def test_refused_class_ch(self):
        for name, qtype in (("example.com", "SOA"), ("www.example.com", "A"),
                            ("version.bind", "TXT")):
            with self.subTest(name=name):
                r = self.dig(name, qtype, qclass="CH")
                self.assertAnswered(r, "REFUSED")
                self.assertNotIn("aa", r.flags, r.stdout)
                self.assertEqual(r.answer, [], r.stdout)

    # 4. referrals ----------------------------------------------------------------
    def test_referral_below_cut(self):
        self.assertReferral(self.dig("x.sub.example.com", "A"))
        self.assertReferral(self.dig("a.b.c.sub.example.com", "AAAA", "+norec"))

    def test_referral_at_cut(self):
        self.assertReferral(self.dig("sub.example.com", "NS"))
        self.assertReferral(self.dig("sub.example.com", "A"))

    def test_glue_name_is_referred(self):
        # ns1.sub is below the cut: its A is glue, not authoritative data
        self.assertReferral(self.dig("ns1.sub.example.com", "A"))

    # 5. CNAME ------------------------------------------------------------------
    def test_cname_chain(self):
        r = self.dig("repo.example.com", "A")
        self.assertAnswered(r)
        self.assertIn("aa", r.flags)
        self.assertEqual(r.answer, [
            ("repo.example.com.", 3600, "IN", "CNAME", "repo2.example.com."),
            ("repo2.example.com.", 3600, "IN", "CNAME", "artifacts.example.com."),
            ("artifacts.example.com.", 30, "IN", "A", "192.0.2.30"),
        ], r.stdout)

    def test_cname_chain_nodata_at_end(self):
        r = self.dig("repo.example.com", "AAAA")
        self.assertAnswered(r)
        self.assertEqual(r.types(), ["CNAME", "CNAME"], r.stdout)
        self.assertEqual([rr[3] for rr in r.authority], ["SOA"], r.stdout)

    def test_query_type_cname(self):
        r = self.dig("repo.example.com", "CNAME")
        self.assertAnswered(r)
        self.assertIn("aa", r.flags)
        self.assertEqual(r.answer, [
            ("repo.example.com.", 3600, "IN", "CNAME", "repo2.example.com.")], r.stdout)

    def test_cname_out_of_zone(self):
        r = self.dig("outside.example.com", "A")
        self.assertAnswered(r, "NOERROR")
        self.assertIn("aa", r.flags)
        self.assertEqual(r.answer, [
            ("outside.example.com.", 3600, "IN", "CNAME", "target.example.org.")], r.stdout)

    def test_cname_dangling_in_zone(self):
        r = self.dig("dangling.example.com", "A")
        self.assertAnswered(r, "NXDOMAIN")  # RFC 6604: rcode of the last name
        self.assertIn("aa", r.flags)
        self.assertEqual(r.answer, [
            ("dangling.example.com.", 3600, "IN", "CNAME", "nowhere.example.com.")], r.stdout)
        self.assertEqual([rr[3] for rr in r.authority], ["SOA"], r.stdout)

    def test_cname_to_wildcard(self):
        r = self.dig("towild.example.com", "A")
        self.assertAnswered(r)
        self.assertEqual(r.answer, [
            ("towild.example.com.", 3600, "IN", "CNAME", "x.wild.example.com."),
            ("x.wild.example.com.", 3600, "IN", "A", "192.0.2.50"),
        ], r.stdout)

    # 6. wildcards --------------------------------------------------------------
    def test_wildcard_synthesis(self):
        for name in ("foo.wild.example.com", "a.b.wild.example.com"):
            with self.subTest(name=name):
                r = self.dig(name, "A")
                self.assertAnswered(r)
                self.assertIn("aa", r.flags)
                self.assertEqual(r.answer, [(name + ".", 3600, "IN", "A", "192.0.2.50")],
                                 r.stdout)
        r = self.dig("foo.wild.example.com", "TXT")
        self.assertAnswered(r)
        self.assertEqual(r.answer, [("foo.wild.example.com.", 3600, "IN", "TXT", '"wildcard"')],
                         r.stdout)

    def test_wildcard_cname(self):
        r = self.dig("foo.wc.example.com", "A")
        self.assertAnswered(r)
        self.assertIn("aa", r.flags)
        self.assertEqual(r.answer, [
            ("foo.wc.example.com.", 3600, "IN", "CNAME", "www.example.com."),
            ("www.example.com.", 3600, "IN", "A", "192.0.2.10"),
        ], r.stdout)

    def test_label_with_dot_is_one_label(self):
        # the single label "a.b.deep" must not match the three labels a, b, deep
        question = (b"\x08a.b.deep\x07example\x03com\x00" + struct.pack("!HH", 1, 1))
        m = h.udp_query(self.srv.port, h.build_query(id=0x0D07, question=question))
        self.assertIsNotNone(m, "no reply")
        self.assertEqual((m.id, m.rcode_name), (0x0D07, "NXDOMAIN"), m)
        self.assertEqual(m.answer, [])
        self.assertEqual(m.data[12:m.question_end], question)
        # a label holding a zero byte and a high byte: plain NXDOMAIN, not a crash
        question = (b"\x03w\x00\xff\x07example\x03com\x00" + struct.pack("!HH", 1, 1))
        m = h.udp_query(self.srv.port, h.build_query(id=0x0D08, question=question))
        self.assertIsNotNone(m, "no reply")
        self.assertEqual((m.id, m.rcode_name), (0x0D08, "NXDOMAIN"), m)

    def test_wildcard_nodata(self):
        r = self.dig("foo.wild.example.com", "AAAA")
        self.assertNegative(r, "NOERROR")
        self.assertEqual(r.answer, [], r.stdout)

    def test_wildcard_does_not_override_existing(self):
        r = self.dig("explicit.wild.example.com", "A")
        self.assertAnswered(r)
        self.assertEqual(r.rdatas("A"), ["192.0.2.51"], r.stdout)
        # the name exists: the wildcard's TXT must not apply to it (RFC 4592)
        r = self.dig("explicit.wild.example.com", "TXT")
        self.assertNegative(r, "NOERROR")
        # below an existing name the closest encloser is that name: no synthesis
        r = self.dig("x.explicit.wild.example.com", "A")
        self.assertNegative(r, "NXDOMAIN")

    def test_wildcard_parent_is_empty_non_terminal(self):
        r = self.dig("wild.example.com", "A")
        self.assertNegative(r, "NOERROR")
        self.assertEqual(r.answer, [], r.stdout)

    def test_wildcard_literal_name(self):
        r = self.dig("*.wild.example.com", "A")
        self.assertAnswered(r)
        self.assertEqual(r.answer, [("*.wild.example.com.", 3600, "IN", "A", "192.0.2.50")],
                         r.stdout)

    # 10. case ----------------------------------------------------------------
    def test_case_preserved_dig(self):
        r = self.dig("WwW.ExAmPlE.CoM", "A")
        self.assertAnswered(r)
        self.assertEqual(r.question, [("WwW.ExAmPlE.CoM.", "IN", "A")], r.stdout)
        self.assertEqual(r.answer, [("WwW.ExAmPlE.CoM.", 3600, "IN", "A", "192.0.2.10")],
                         r.stdout)

    def test_case_preserved_raw(self):
        q = h.build_query("WwW.ExAmPlE.CoM", "A", id=0x4242)
        reply = h.raw_udp(self.srv.port, q, timeout=2)
        self.assertIsNotNone(reply, "no reply")
        m = h.parse_message(reply)
        self.assertEqual(m.id, 0x4242)
        self.assertEqual(reply[12:m.question_end], q[12:], "question must be echoed byte for byte")
        self.assertEqual(len(m.answer), 1, m)
        self.assertEqual(m.answer[0].name, "WwW.ExAmPlE.CoM.", m)
        self.assertEqual(m.answer[0].rdata, bytes([192, 0, 2, 10]))
        # also for a negative answer, the question keeps its case
        q = h.build_query("NoPe.ExAmPlE.cOm", "A", id=0x4243)
        reply = h.raw_udp(self.srv.port, q, timeout=2)
        self.assertIsNotNone(reply, "no reply")
        m = h.parse_message(reply)
        self.assertEqual(m.rcode_name, "NXDOMAIN")
        self.assertEqual(reply[12:m.question_end], q[12:])

    # 11. compression -----------------------------------------------------------
    def test_compression(self):
        q = h.build_query("example.com", "MX", id=0x5151)
        reply = h.raw_udp(self.srv.port, q, timeout=2)
        self.assertIsNotNone(reply, "no reply")
        self.assertIn(b"\xc0\x0c", reply, "no compression pointer to the qname")
        m = h.parse_message(reply)
        self.assertEqual(m.rcode_name, "NOERROR")
        self.assertEqual(len(m.answer), 2)
        self.assertEqual(m.trailing, 0, "bytes after the last record")
        # the MX exchange in the rdata may be compressed too (RFC 1035 allows it
        # for MX); whatever was chosen, it must decode to the right names
        exch = sorted(h.read_name(reply, rr.offset + 2)[0] for rr in m.answer)
        self.assertEqual(exch, ["mail.example.com.", "mail2.example.net."])

    # kdig as a second client ---------------------------------------------------
    def test_kdig(self):
        r = self.kdig("www.example.com", "A")
        self.assertAnswered(r)
        self.assertIn("aa", r.flags, r.stdout)
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"], r.stdout)
        r = self.kdig("nope.example.com", "A", "+edns")
        self.assertAnswered(r, "NXDOMAIN")
        self.assertEqual(r.edns and r.edns["udp"], 1232, r.stdout)
        r = self.kdig("x.sub.example.com", "A")
        self.assertAnswered(r)
        self.assertNotIn("aa", r.flags, r.stdout)
        self.assertEqual({rr[4] for rr in r.authority}, REFERRAL_NS, r.stdout)


class CnameLimits(ServerTestCase):
    """CNAME loops and very long chains are answered (bounded), never hang."""

    SERVER_ARGS = dict(zones={"example.com.yaml": standard_zone(extra_records=(
        "  loop1:\n    CNAME: loop2\n  loop2:\n    CNAME: loop1\n"
        "  self:\n    CNAME: self\n"
        + "".join("  c%d:\n    CNAME: c%d\n" % (i, i + 1) for i in range(30))
        + "  c30:\n    A: 192.0.2.99\n"))})

    def test_loop(self):
        for name, owners in (("loop1.example.com", {"loop1.example.com.", "loop2.example.com."}),
                             ("self.example.com", {"self.example.com."})):
            with self.subTest(name=name):
                for opts in ((), ("+tcp",)):
                    r = self.dig(name, "A", *opts)
                    self.assertIsNotNone(r.status, r.stdout)
                    self.assertIn(r.status, ("NOERROR", "SERVFAIL"), r.stdout)
                    self.assertNotIn("tc", r.flags, r.stdout)
                    self.assertTrue(r.answer, r.stdout)
                    self.assertLessEqual(len(r.answer), 32, r.stdout)
                    self.assertEqual(set(r.types()), {"CNAME"}, r.stdout)
                    self.assertLessEqual({rr[0] for rr in r.answer}, owners, r.stdout)
                    self.assertEqual(r.answer[0][0], name + ".")

    def test_long_chain(self):
        r = self.dig("c0.example.com", "A")
        self.assertIsNotNone(r.status, r.stdout)
        self.assertIn(r.status, ("NOERROR", "SERVFAIL"), r.stdout)
        # followed in order as far as the server goes
        for i, rr in enumerate(r.answer):
            if rr[3] == "CNAME":
                self.assertEqual(rr[0], "c%d.example.com." % i, r.stdout)
                self.assertEqual(rr[4], "c%d.example.com." % (i + 1), r.stdout)
        self.assertLessEqual(len(r.answer), 32)


class ZoneSelection(ServerTestCase):
    """The nearest enclosing zone answers (RFC 1034 4.3.2)."""

    CHILD = (
        "zone: child.example.com\n"
        "ttl: 120\n"
        "soa: {mname: ns1, rname: admin, serial: 7, refresh: 3600, retry: 600,"
        " expire: 86400, minimum: 60}\n"
        "ns: [ns1]\n"
        "records:\n"
        "  ns1:\n"
        "    A: 192.0.2.201\n"
        "  www:\n"
        "    A: 192.0.2.200\n"
    )
    SERVER_ARGS = dict(zones={"example.com.yaml": standard_zone("example.com"),
                              "child.yaml": CHILD})

    def test_child_zone_answers(self):
        r = self.dig("www.child.example.com", "A")
        self.assertAnswered(r)
        self.assertIn("aa", r.flags)
        self.assertEqual(r.answer, [("www.child.example.com.", 120, "IN", "A", "192.0.2.200")],
                         r.stdout)
        r = self.dig("child.example.com", "SOA")
        self.assertAnswered(r)
        self.assertEqual(r.answer[0][4],
                         "ns1.child.example.com. admin.child.example.com. 7 3600 600 86400 60")
        r = self.dig("nope.child.example.com", "A")
        self.assertAnswered(r, "NXDOMAIN")
        self.assertEqual([(rr[0], rr[1], rr[3]) for rr in r.authority],
                         [("child.example.com.", 60, "SOA")], r.stdout)

    def test_parent_still_answers(self):
        r = self.dig("www.example.com", "A")
        self.assertAnswered(r)
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"])


@unittest.skipUnless(h.ipv6_usable(), "::1 not usable on this machine")
class IPv6(ServerTestCase):
    """14. listening on [::1]:PORT."""

    SERVER_ARGS = dict(zones=ZONES, listen=["[::1]:{port}"])

    def test_dig_over_ipv6(self):
        r = self.dig("www.example.com", "A", server="::1")
        self.assertAnswered(r)
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"], r.stdout)
        r = self.dig("www.example.com", "AAAA", "+tcp", server="::1")
        self.assertAnswered(r)
        self.assertEqual(r.rdatas("AAAA"), ["2001:db8::10"], r.stdout)

    def test_raw_over_ipv6(self):
        reply = h.raw_udp(self.srv.port, h.build_query("www.example.com", "A", id=66),
                          timeout=2, host="::1")
        self.assertIsNotNone(reply)
        self.assertEqual(h.parse_message(reply).id, 66)
        reply = h.raw_tcp(self.srv.port, h.build_query("www.example.com", "A", id=67),
                          host="::1")
        self.assertIsNotNone(reply)
        self.assertEqual(h.parse_message(reply).id, 67)

    def test_not_on_ipv4(self):
        # only [::1] was configured
        self.assertIsNone(h.raw_udp(self.srv.port, h.build_query("www.example.com", "A"),
                                    timeout=0.5))
        r = self.dig("www.example.com", "A", server="::1")
        self.assertAnswered(r)


@unittest.skipUnless(h.ipv6_usable(), "::1 not usable on this machine")
class DualStack(ServerTestCase):
    """Two listen entries: 127.0.0.1 and [::1] on the same port."""

    SERVER_ARGS = dict(zones=ZONES, listen=["127.0.0.1:{port}", "[::1]:{port}"])

    def test_both(self):
        for server in ("127.0.0.1", "::1"):
            with self.subTest(server=server):
                r = self.dig("www.example.com", "A", server=server)
                self.assertAnswered(r)

    def test_v4(self):
        r = self.dig("www.example.com", "A")
        self.assertAnswered(r)


if __name__ == "__main__":
    unittest.main()
