#!/usr/bin/env python3
"""Malformed packets over UDP (hand-crafted, raw sockets): FORMERR for bad
counts, names, labels, compression pointers and OPT records, no reply to
short packets or replies (QR set), NOTIMP for unsupported opcodes, no AXFR
over UDP, and a burst of garbage; after every bad packet steerdns still
answers normally.
"""

import os
import socket
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import ServerTestCase, standard_zone  # noqa: E402

# the zones of test_protocol.py
ZONES = {
    "example.com.yaml": standard_zone("example.com"),
    # zone TTL 600 but SOA TTL 60 < minimum 300: negative TTL must be 60
    "example.net.yaml": standard_zone("example.net", ttl=600, soa_ttl=60),
}


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


if __name__ == "__main__":
    unittest.main()
