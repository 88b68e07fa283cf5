#!/usr/bin/env python3
"""Socket behaviour an operator relies on: a wildcard listen address answers
from the address each query was sent to, and a TCP client that sends its
queries and half-closes still gets every answer (RFC 7766 §6.2.1)."""

import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import ServerTestCase, standard_zone  # noqa: E402

ZONES = {"example.com.yaml": standard_zone("example.com")}


class WildcardListen(ServerTestCase):
    SERVER_ARGS = dict(zones=ZONES, listen=["0.0.0.0:{port}"], ready_addr="127.0.0.1")

    def test_udp_answer_leaves_from_the_queried_address(self):
        # dig ignores a reply from any other source than the one it asked
        # ("reply from unexpected source"), so an answer proves the source.
        for addr in ("127.0.0.1", "127.0.0.2", "127.0.0.53"):
            r = h.dig(self.srv.port, "www.example.com", "A", server=addr)
            self.assertAnswered(r)
            self.assertNotIn("unexpected source", r.stdout)

    def test_raw_reply_source_address(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2.0)
            s.sendto(h.build_query("www.example.com", "A", id=7), ("127.0.0.9", self.srv.port))
            data, source = s.recvfrom(4096)
        self.assertEqual(source, ("127.0.0.9", self.srv.port))
        self.assertEqual(h.parse_message(data).id, 7)

    def test_tcp_on_another_loopback_address(self):
        self.assertAnswered(h.dig(self.srv.port, "www.example.com", "A", "+tcp",
                                  server="127.0.0.7"))


@unittest.skipUnless(h.ipv6_usable(), "::1 is not usable here")
class WildcardListen6(ServerTestCase):
    @classmethod
    def make_server(cls):
        return h.Server(ZONES, listen=["[::]:{port}"], ready_addr="::1")

    def test_udp_over_ipv6_wildcard(self):
        self.assertAnswered(h.dig(self.srv.port, "www.example.com", "A", server="::1"))


class HalfClose(ServerTestCase):
    SERVER_ARGS = dict(zones=ZONES, tcp={"max_pipelined": 2})

    def test_queries_then_shutdown_get_every_answer(self):
        ids = list(range(40, 46))
        sock = h.tcp_connect(self.srv.port)
        try:
            sock.sendall(b"".join(h.frame(h.build_query("www.example.com", "A", id=i))
                                  for i in ids))
            sock.shutdown(socket.SHUT_WR)
            got = []
            for _ in ids:
                data = h.tcp_read_msg(sock, timeout=5.0)
                self.assertIsNotNone(data, f"answers so far: {got}")
                got.append(h.parse_message(data).id)
            self.assertEqual(got, ids)
            self.assertTrue(h.wait_closed(sock, 5.0), "the server should close after answering")
        finally:
            sock.close()


if __name__ == "__main__":
    unittest.main()
