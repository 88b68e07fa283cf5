#!/usr/bin/env python3
"""The zone YAML format as served: TTL rules, relative/absolute names, every
record type, TXT quoting and splitting, a zones directory, and wildcards at
the apex."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import ServerTestCase  # noqa: E402

COM = """\
zone: example.com.
ttl: 600
soa:
  mname: ns1
  rname: hostmaster.example.net.
  serial: 42
  refresh: 3600
  retry: 600
  expire: 1209600
  minimum: 300
ns: [ns1, ns.example.net.]
records:
  "@":
    MX: 10 mail
    TXT: "v=spf1 -all"
  ns1:
    A: 192.0.2.1
  mail:
    A: 192.0.2.25
  multi:
    A: [192.0.2.11, 192.0.2.12, 192.0.2.13]
  owner-ttl:
    ttl: 30
    A: 192.0.2.30
    TXT: thirty
  rrset-ttl:
    A: {ttl: 45, data: 192.0.2.45}
    AAAA: {ttl: 46, data: ["2001:db8::45", "2001:db8::46"]}
    TXT: default-ttl
  abs.example.com.:
    A: 192.0.2.77
  MixedCase:
    A: 192.0.2.78
  alias:
    CNAME: mail
  alias-abs:
    CNAME: mail.example.com.
  _sip._udp:
    SRV: [0 5 5060 sip, 10 5 5060 sip.example.net.]
  sip:
    A: 192.0.2.79
  caa:
    CAA: 0 issue "ca.example.net"
  ptr:
    PTR: www
  plain:
    TXT: 'say "hi" now'
  spaces:
    TXT: hello world
  presentation:
    TXT: '"first part" "second part"'
  long:
    TXT: %(long)s
  delegated:
    NS: [ns1.delegated, ns2.delegated.example.com.]
  ns1.delegated:
    A: 192.0.2.91
  ns2.delegated:
    A: 192.0.2.92
""" % {"long": "L" * 600}

NET = """\
zone: example.net
soa:
  mname: ns1.example.com.
  rname: hostmaster
  serial: 7
  refresh: 3600
  retry: 600
  expire: 1209600
  minimum: 900
ns: [ns1.example.com.]
records:
  "*":
    A: 198.51.100.1
  www:
    A: 198.51.100.2
"""


class ZoneFormat(ServerTestCase):
    # zones given as a directory; a non-*.yaml file in it must be ignored
    SERVER_ARGS = dict(zones={"com.yaml": COM, "net.yaml": NET,
                              "README.txt": "not a zone: [\n"},
                       zones_entry="zones", ready_zone="example.com")

    def one(self, name, qtype, status="NOERROR"):
        r = self.dig(name, qtype)
        self.assertAnswered(r, status)
        return r

    def test_zone_ttl_default(self):
        r = self.one("mail.example.com", "A")
        self.assertEqual(r.answer, [("mail.example.com.", 600, "IN", "A", "192.0.2.25")])

    def test_ttl_default_3600_when_absent(self):
        r = self.one("www.example.net", "A")
        self.assertEqual(r.answer, [("www.example.net.", 3600, "IN", "A", "198.51.100.2")])

    def test_soa_fields_and_ttl(self):
        r = self.one("example.com", "SOA")
        self.assertEqual(r.answer, [("example.com.", 600, "IN", "SOA",
                                     "ns1.example.com. hostmaster.example.net. 42 3600 600 "
                                     "1209600 300")], r.stdout)
        r = self.one("example.net", "SOA")
        self.assertEqual(r.answer, [("example.net.", 3600, "IN", "SOA",
                                     "ns1.example.com. hostmaster.example.net. 7 3600 600 "
                                     "1209600 900")], r.stdout)
        # negative TTL = min(SOA TTL 600, minimum 300)
        r = self.one("nope.example.com", "A", "NXDOMAIN")
        self.assertEqual([rr[1] for rr in r.authority], [300], r.stdout)

    def test_apex_ns(self):
        r = self.one("example.com", "NS")
        self.assertEqual(sorted(r.rdatas("NS")), ["ns.example.net.", "ns1.example.com."])

    def test_rrset_of_three(self):
        r = self.one("multi.example.com", "A")
        self.assertEqual(sorted(r.rdatas("A")), ["192.0.2.11", "192.0.2.12", "192.0.2.13"])
        self.assertEqual({rr[1] for rr in r.answer}, {600})

    def test_owner_ttl(self):
        r = self.one("owner-ttl.example.com", "A")
        self.assertEqual([rr[1] for rr in r.answer], [30])
        r = self.one("owner-ttl.example.com", "TXT")
        self.assertEqual(r.answer, [("owner-ttl.example.com.", 30, "IN", "TXT", '"thirty"')])

    def test_rrset_ttl(self):
        r = self.one("rrset-ttl.example.com", "A")
        self.assertEqual(r.answer, [("rrset-ttl.example.com.", 45, "IN", "A", "192.0.2.45")])
        r = self.one("rrset-ttl.example.com", "AAAA")
        self.assertEqual(sorted((rr[1], rr[4]) for rr in r.answer),
                         [(46, "2001:db8::45"), (46, "2001:db8::46")])
        r = self.one("rrset-ttl.example.com", "TXT")
        self.assertEqual([rr[1] for rr in r.answer], [600])

    def test_absolute_owner(self):
        r = self.one("abs.example.com", "A")
        self.assertEqual(r.rdatas("A"), ["192.0.2.77"])

    def test_owner_names_case_insensitive(self):
        r = self.one("mixedcase.example.com", "A")
        self.assertEqual(r.rdatas("A"), ["192.0.2.78"])
        r = self.one("MIXEDCASE.EXAMPLE.COM", "A")
        self.assertEqual(r.answer, [("MIXEDCASE.EXAMPLE.COM.", 600, "IN", "A", "192.0.2.78")])

    def test_relative_names_in_rdata(self):
        self.assertEqual(self.one("example.com", "MX").rdatas("MX"), ["10 mail.example.com."])
        r = self.one("alias.example.com", "A")
        self.assertEqual(r.answer, [("alias.example.com.", 600, "IN", "CNAME", "mail.example.com."),
                                    ("mail.example.com.", 600, "IN", "A", "192.0.2.25")])
        r = self.one("alias-abs.example.com", "CNAME")
        self.assertEqual(r.rdatas("CNAME"), ["mail.example.com."])
        r = self.one("_sip._udp.example.com", "SRV")
        self.assertEqual(sorted(r.rdatas("SRV")),
                         ["0 5 5060 sip.example.com.", "10 5 5060 sip.example.net."])
        self.assertEqual(self.one("ptr.example.com", "PTR").rdatas("PTR"), ["www.example.com."])

    def test_caa(self):
        r = self.one("caa.example.com", "CAA")
        self.assertEqual(r.rdatas("CAA"), ['0 issue "ca.example.net"'])

    def test_txt_plain_is_one_string(self):
        self.assertEqual(self.one("spaces.example.com", "TXT").rdatas("TXT"), ['"hello world"'])
        self.assertEqual(self.one("example.com", "TXT").rdatas("TXT"), ['"v=spf1 -all"'])
        # inner quotes are data, escaped in presentation
        self.assertEqual(self.one("plain.example.com", "TXT").rdatas("TXT"),
                         ['"say \\"hi\\" now"'])

    def test_txt_presentation_format(self):
        self.assertEqual(self.one("presentation.example.com", "TXT").rdatas("TXT"),
                         ['"first part" "second part"'])

    def test_txt_long_split_into_255(self):
        q = h.build_query("long.example.com", "TXT", id=9, edns=True)
        m = h.udp_query(self.srv.port, q)
        self.assertIsNotNone(m)
        self.assertEqual(len(m.answer), 1, m)
        rdata, chunks = m.answer[0].rdata, []
        i = 0
        for _ in range(10):
            if i >= len(rdata):
                break
            n = rdata[i]
            chunks.append(rdata[i + 1:i + 1 + n])
            i += 1 + n
        self.assertEqual([len(c) for c in chunks], [255, 255, 90])
        self.assertEqual(b"".join(chunks), b"L" * 600)

    def test_delegation_in_custom_zone(self):
        r = self.dig("x.delegated.example.com", "A")
        self.assertAnswered(r)
        self.assertNotIn("aa", r.flags)
        self.assertEqual(sorted(r.rdatas("NS", "authority")),
                         ["ns1.delegated.example.com.", "ns2.delegated.example.com."])
        self.assertEqual(sorted(rr[4] for rr in r.additional if rr[3] == "A"),
                         ["192.0.2.91", "192.0.2.92"])

    def test_wildcard_at_apex(self):
        r = self.one("anything.example.net", "A")
        self.assertEqual(r.answer, [("anything.example.net.", 3600, "IN", "A", "198.51.100.1")])
        r = self.one("a.b.c.example.net", "A")
        self.assertEqual(r.rdatas("A"), ["198.51.100.1"])
        r = self.one("www.example.net", "A")
        self.assertEqual(r.rdatas("A"), ["198.51.100.2"])
        # the apex itself is not matched by "*"
        r = self.one("example.net", "A")
        self.assertEqual(r.answer, [])
        self.assertEqual([rr[3] for rr in r.authority], ["SOA"])
        # below an existing name, no synthesis: NXDOMAIN
        self.one("x.www.example.net", "A", "NXDOMAIN")


if __name__ == "__main__":
    unittest.main()
