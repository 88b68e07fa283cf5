#!/usr/bin/env python3
"""DNS protocol behaviour of steerdns over UDP, checked with dig, kdig and raw packets.

Covers: authoritative answers and header flags, NXDOMAIN / NODATA / empty
non-terminals with negative TTLs, REFUSED, referrals with glue, CNAME chains,
wildcards (RFC 4592), EDNS (RFC 6891), truncation, minimal ANY (RFC 8482),
case preservation, name compression, malformed packets, closest-zone
selection and IPv6.
"""

import os
import socket
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import BIG_TXT, MED_TXT, ServerTestCase, Server, standard_zone  # noqa: E402

ZONES = {
    "example.com.yaml": standard_zone("example.com"),
    # zone TTL 600 but SOA TTL 60 < minimum 300: negative TTL must be 60
    "example.net.yaml": standard_zone("example.net", ttl=600, soa_ttl=60),
}

SOA_RDATA = "ns1.example.com. hostmaster.example.com. 2024010101 3600 600 1209600 300"
REFERRAL_NS = {"ns1.sub.example.com.", "ns.elsewhere.net."}


def txt_strings(rdata):
    """dig's TXT rdata '"a" "b"' -> ["a", "b"] (no escapes in our test data)."""
    parts = rdata.split('" "')
    return [p.strip('"') for p in parts]


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
        exch = sorted(h._read_name(reply, rr.offset + 2)[0] for rr in m.answer)
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


class Malformed(ServerTestCase):
    """12. Hand-crafted bad packets over UDP."""

    SERVER_ARGS = dict(zones=ZONES)

    def tearDown(self):
        super().tearDown()
        # after every bad packet the server still answers normally
        m = h.udp_query(self.srv.port, h.build_query("www.example.com", "A", id=0x600D), 2.0)
        self.assertIsNotNone(m, "server stopped answering; log:\n" + self.srv.log())
        self.assertEqual((m.id, m.rcode_name, len(m.answer)), (0x600D, "NOERROR", 1))

    def send(self, data, timeout=2.0):
        return h.raw_udp(self.srv.port, data, timeout)

    def assertRcode(self, data, rcode, qid):
        reply = self.send(data)
        self.assertIsNotNone(reply, "no reply to %r" % data)
        self.assertGreaterEqual(len(reply), 12)
        rid, flags, *_ = h.header_of(reply)
        self.assertEqual(rid, qid, "reply must carry the query ID")
        self.assertTrue(flags & h.QR, "QR must be set")
        self.assertEqual(h.RCODES.get(flags & 0xF, flags & 0xF), rcode, "reply %r" % reply)
        self.assertFalse(flags & h.RA)
        return reply

    def assertNoReply(self, data):
        self.assertIsNone(self.send(data, timeout=0.5), "expected no reply to %r" % data)

    QUESTION = h.encode_name("www.example.com") + struct.pack("!HH", 1, 1)

    def test_qdcount_zero(self):
        self.assertRcode(h.build_query(id=0x0101, qdcount=0, question=b""), "FORMERR", 0x0101)

    def test_qdcount_zero_with_edns(self):
        self.assertRcode(h.build_query(id=0x0111, qdcount=0, question=b"", edns=True),
                         "FORMERR", 0x0111)

    def test_qdcount_two(self):
        q = h.build_query(id=0x0102, qdcount=2, question=self.QUESTION + self.QUESTION)
        self.assertRcode(q, "FORMERR", 0x0102)

    def test_question_cut_short(self):
        full = h.build_query("www.example.com", "A", id=0x0103)
        for cut in (2, 4, 8):
            with self.subTest(cut=cut):
                self.assertRcode(full[:-cut], "FORMERR", 0x0103)

    def test_label_too_long(self):
        q = h.build_query(id=0x0104, question=b"\x40" + b"a" * 64 + b"\x07example\x03com\x00"
                          + struct.pack("!HH", 1, 1))
        self.assertRcode(q, "FORMERR", 0x0104)

    def test_name_too_long(self):
        name = (b"\x3f" + b"a" * 63) * 4 + b"\x07example\x03com\x00"  # 269 octets > 255
        q = h.build_query(id=0x0105, question=name + struct.pack("!HH", 1, 1))
        self.assertRcode(q, "FORMERR", 0x0105)

    def test_compression_pointer_in_qname(self):
        for name in (b"\xc0\x0c", b"\x03www\xc0\x0c", b"\x03www\xc0\x00"):
            with self.subTest(name=name):
                q = h.build_query(id=0x0106, question=name + struct.pack("!HH", 1, 1))
                self.assertRcode(q, "FORMERR", 0x0106)

    def test_two_opt_records(self):
        q = h.build_query("www.example.com", "A", id=0x0107, edns=True,
                          additional=[h.opt_rr()])
        self.assertRcode(q, "FORMERR", 0x0107)

    def test_opt_with_non_root_owner(self):
        q = h.build_query("www.example.com", "A", id=0x0108,
                          additional=[h.opt_rr(owner=h.encode_name("example.com"))])
        self.assertRcode(q, "FORMERR", 0x0108)

    def test_opt_option_overruns_rdata(self):
        bad = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 6) + struct.pack("!HH", 10, 8) + b"ab"
        q = h.build_query("www.example.com", "A", id=0x0109, additional=[bad])
        self.assertRcode(q, "FORMERR", 0x0109)

    def test_additional_count_without_records(self):
        q = h.build_query("www.example.com", "A", id=0x010A, arcount=1)
        self.assertRcode(q, "FORMERR", 0x010A)

    def test_short_packet_no_reply(self):
        for data in (b"\x12\x34\x01\x00\x00", b"", b"\x12"):
            with self.subTest(data=data):
                self.assertNoReply(data)

    def test_qr_set_no_reply(self):
        self.assertNoReply(h.build_query("www.example.com", "A", id=0x0110, flags=h.QR))
        self.assertNoReply(h.build_query("www.example.com", "A", id=0x0110,
                                         flags=h.QR | h.AA | 3))

    def test_unsupported_opcodes_notimp(self):
        for opcode in (1, 2, 4):  # IQUERY (RFC 3425), STATUS, NOTIFY
            with self.subTest(opcode=opcode):
                q = h.build_query("example.com", "SOA", id=0x0200 + opcode, opcode=opcode)
                reply = self.assertRcode(q, "NOTIMP", 0x0200 + opcode)
                self.assertEqual((h.header_of(reply)[1] >> 11) & 0xF, opcode,
                                 "opcode copied into the reply")

    def test_axfr_over_udp_not_served(self):
        q = h.build_query("example.com", "AXFR", id=0x0300)
        reply = self.send(q)
        if reply is not None:  # no reply is fine; an answer must not be a transfer
            rid, flags, qd, an, ns, ar = h.header_of(reply)
            self.assertEqual(rid, 0x0300)
            self.assertNotEqual(flags & 0xF, 0, "AXFR over UDP must not succeed")
            self.assertEqual(an, 0)

    def test_garbage_burst_then_normal(self):
        # many different bad packets back to back; each gets FORMERR or nothing
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            full = h.build_query("www.example.com", "A", id=0x0400, edns=True)
            for i in range(len(full)):
                sock.sendto(full[:i], ("127.0.0.1", self.srv.port))
            # and one good query on the same socket: its answer arrives
            sock.sendto(h.build_query("www.example.com", "A", id=0x0401),
                        ("127.0.0.1", self.srv.port))
            sock.settimeout(2.0)
            got = False
            for _ in range(len(full) + 1):
                data = sock.recv(65535)
                if h.header_of(data)[0] == 0x0401:
                    got = True
                    break
            self.assertTrue(got)
        finally:
            sock.close()


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
