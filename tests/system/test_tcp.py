#!/usr/bin/env python3
"""DNS over TCP (RFC 7766) in steerdns: dig/kdig over TCP, pipelining, keep-open,
idle timeout, slow clients, the connection limit, AXFR refusal and per-listener
transports."""

import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import BIG_TXT, ServerTestCase, standard_zone  # noqa: E402

ZONES = {"example.com.yaml": standard_zone("example.com")}

NAMES = [("www.example.com", "A", "NOERROR"), ("mail.example.com", "A", "NOERROR"),
         ("nope.example.com", "A", "NXDOMAIN"), ("example.com", "SOA", "NOERROR"),
         ("ns1.example.com", "A", "NOERROR")]


def query_on(sock, qid, name="www.example.com", qtype="A", timeout=5.0):
    sock.sendall(h.frame(h.build_query(name, qtype, id=qid)))
    data = h.tcp_read_msg(sock, timeout)
    if data is None:
        return None
    return h.parse_message(data)


class TcpBasics(ServerTestCase):
    SERVER_ARGS = dict(zones=ZONES, workers=2,
                       tcp={"idle_timeout": "10s", "max_pipelined": 4})

    def test_dig_tcp(self):
        r = self.dig("www.example.com", "A", "+tcp")
        self.assertAnswered(r)
        self.assertIn("aa", r.flags, r.stdout)
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"], r.stdout)
        self.assertIn("(TCP)", r.stdout)
        r = self.dig("nope.example.com", "A", "+tcp")
        self.assertAnswered(r, "NXDOMAIN")
        self.assertEqual([rr[1] for rr in r.authority], [300], r.stdout)

    def test_kdig_tcp(self):
        r = self.kdig("www.example.com", "A", "+tcp")
        self.assertAnswered(r)
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"], r.stdout)

    def test_dig_keepopen(self):
        results, out = h.dig_multi(self.srv.port, [(n, t) for n, t, _ in NAMES],
                                   "+tcp", "+keepopen")
        self.assertEqual([r.status for r in results], [s for _, _, s in NAMES], out)
        for r in results:
            self.assertNotIn("ra", r.flags)
            self.assertIn("aa", r.flags, out)

    def test_kdig_keepopen(self):
        argv = [h.KDIG, "@127.0.0.1", "-p", str(self.srv.port), "+tcp", "+keepopen",
                "+time=2", "+retry=0"]
        for n, t, _ in NAMES:
            argv += [n, t]
        rc, out, err, _ = h.run_client(argv, 30)
        results = h.parse_dig_output(out)
        self.assertEqual([r.status for r in results], [s for _, _, s in NAMES], out + err)

    def test_sequential_queries_one_connection(self):
        with h.tcp_connect(self.srv.port) as s:
            for i, (name, qtype, status) in enumerate(NAMES):
                m = query_on(s, 0x100 + i, name, qtype)
                self.assertIsNotNone(m, "connection closed after %d answers" % i)
                self.assertEqual((m.id, m.rcode_name), (0x100 + i, status))

    def test_pipelining(self):
        with h.tcp_connect(self.srv.port) as s:
            msgs = {0x2000 + i: (n, t, st) for i, (n, t, st) in enumerate(NAMES)}
            s.sendall(b"".join(h.frame(h.build_query(n, t, id=qid))
                               for qid, (n, t, _) in msgs.items()))
            seen = {}
            for _ in range(len(msgs)):
                data = h.tcp_read_msg(s, 5.0)
                self.assertIsNotNone(data, "connection closed after %d answers" % len(seen))
                m = h.parse_message(data)
                self.assertIn(m.id, msgs)
                self.assertNotIn(m.id, seen, "duplicate answer")
                seen[m.id] = m
            self.assertEqual(set(seen), set(msgs))
            for qid, m in seen.items():
                name, qtype, status = msgs[qid]
                self.assertEqual(m.rcode_name, status, m)
                self.assertEqual(m.question[0][0], name + ".", "answer matched to its query")

    def test_pipelining_more_than_max_pipelined(self):
        # max_pipelined 4: the server reads ahead at most 4, but answers all 20
        n = 20
        with h.tcp_connect(self.srv.port) as s:
            s.sendall(b"".join(h.frame(h.build_query("www.example.com", "A", id=0x3000 + i))
                               for i in range(n)))
            ids = set()
            for _ in range(n):
                data = h.tcp_read_msg(s, 5.0)
                self.assertIsNotNone(data, "closed after %d answers" % len(ids))
                ids.add(h.parse_message(data).id)
            self.assertEqual(ids, {0x3000 + i for i in range(n)})

    def test_split_writes(self):
        q = h.frame(h.build_query("www.example.com", "A", id=0x4444))
        with h.tcp_connect(self.srv.port) as s:
            for part in (q[:1], q[1:2], q[2:9], q[9:]):
                s.sendall(part)
            data = h.tcp_read_msg(s, 5.0)
        self.assertIsNotNone(data)
        m = h.parse_message(data)
        self.assertEqual((m.id, m.rcode_name, len(m.answer)), (0x4444, "NOERROR", 1))

    def test_big_answer_over_tcp(self):
        q = h.build_query("bigtxt.example.com", "TXT", id=0x5555, edns=True)
        data = h.raw_tcp(self.srv.port, q)
        self.assertIsNotNone(data)
        self.assertGreater(len(data), 3000)
        m = h.parse_message(data)
        self.assertFalse(m.tc)
        self.assertEqual(len(m.answer), len(BIG_TXT))
        self.assertEqual(sorted(rr.rdata[1:].decode() for rr in m.answer), sorted(BIG_TXT))

    def test_axfr_refused(self):
        data = h.raw_tcp(self.srv.port, h.build_query("example.com", "AXFR", id=0x6666))
        self.assertIsNotNone(data, "no reply to AXFR")
        m = h.parse_message(data)
        self.assertEqual((m.id, m.rcode_name), (0x6666, "REFUSED"), m)
        self.assertEqual(m.answer, [])
        rc, out, err, _ = h.run_client(
            [h.DIG, "@127.0.0.1", "-p", str(self.srv.port), "example.com", "AXFR",
             "+time=2", "+tries=1"], 20)
        self.assertIn("Transfer failed", out + err)
        self.assertNotIn("IN\tSOA", out, "no zone data may be transferred")

    def test_ixfr_refused(self):
        for qid, edns in ((0x6667, None), (0x6668, True)):
            data = h.raw_tcp(self.srv.port, h.build_query("example.com", "IXFR", id=qid,
                                                          edns=edns))
            self.assertIsNotNone(data, "no reply to IXFR")
            m = h.parse_message(data)
            self.assertEqual(m.id, qid)
            self.assertIn(m.rcode_name, ("REFUSED", "NOTIMP"), m)
            self.assertEqual(m.answer, [])

    def test_formerr_over_tcp(self):
        data = h.raw_tcp(self.srv.port, h.build_query(id=0x7777, qdcount=0, question=b""))
        self.assertIsNotNone(data)
        rid, flags, *_ = h.header_of(data)
        self.assertEqual((rid, flags & 0xF), (0x7777, 1))

    def test_garbage_over_tcp_then_normal(self):
        for junk in (h.frame(b"\x12\x34\x01"), b"\x00\x00", h.frame(b"\xff" * 40)):
            with self.subTest(junk=junk):
                with h.tcp_connect(self.srv.port) as s:
                    s.sendall(junk)
                    try:
                        s.settimeout(0.5)
                        s.recv(65535)  # a reply or a close are both fine
                    except (socket.timeout, ConnectionResetError):
                        pass
                r = self.dig("www.example.com", "A", "+tcp")
                self.assertAnswered(r)


class TcpSlowClient(ServerTestCase):
    """A client that sends part of a query must not hold up anyone else."""

    SERVER_ARGS = dict(zones=ZONES, workers=1, tcp={"idle_timeout": "30s"})

    def test_half_sent_query_does_not_block(self):
        q = h.build_query("www.example.com", "A", id=0x0A0A)
        framed = h.frame(q)
        a = h.tcp_connect(self.srv.port)
        b = h.tcp_connect(self.srv.port)
        c = h.tcp_connect(self.srv.port)
        try:
            a.sendall(framed[:1])          # one byte of the length prefix
            b.sendall(framed[:2 + 5])      # the prefix and 5 bytes of the message
            # c: connected, sends nothing
            # Others are answered meanwhile (within dig's own +time=2, one try).
            r = self.dig("mail.example.com", "A", "+tcp")
            self.assertAnswered(r)
            self.assertEqual(r.rdatas("A"), ["192.0.2.25"])
            r = self.dig("mail.example.com", "A")
            self.assertAnswered(r)
            # the slow clients' queries are still completed and answered
            a.sendall(framed[1:])
            b.sendall(framed[7:])
            for s in (a, b):
                data = h.tcp_read_msg(s, 5.0)
                self.assertIsNotNone(data, "slow client's query lost")
                m = h.parse_message(data)
                self.assertEqual((m.id, m.rcode_name), (0x0A0A, "NOERROR"))
            m = query_on(c, 0x0C0C)
            self.assertIsNotNone(m)
            self.assertEqual(m.id, 0x0C0C)
        finally:
            a.close()
            b.close()
            c.close()

    def test_client_not_reading_does_not_block(self):
        # a client that pipelines many queries and never reads its answers
        with h.tcp_connect(self.srv.port) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            blob = b"".join(h.frame(h.build_query("bigtxt.example.com", "TXT", id=i))
                            for i in range(2000))
            s.settimeout(1.0)
            try:
                s.sendall(blob)
            except (socket.timeout, OSError):
                pass  # the server stopped reading (back-pressure): fine
            r = self.dig("www.example.com", "A", "+tcp")
            self.assertAnswered(r)
            r = self.dig("www.example.com", "A")
            self.assertAnswered(r)


class TcpIdle(ServerTestCase):
    SERVER_ARGS = dict(zones=ZONES, tcp={"idle_timeout": "1s"})

    def test_idle_connection_closed(self):
        with h.tcp_connect(self.srv.port) as s:
            how = h.wait_closed(s, h.DEADLINE)
        self.assertIn(how, ("eof", "reset"), "idle connection never closed")

    def test_idle_after_answer_closed(self):
        with h.tcp_connect(self.srv.port) as s:
            m = query_on(s, 0x1234)
            self.assertIsNotNone(m)
            self.assertEqual(m.id, 0x1234)
            how = h.wait_closed(s, h.DEADLINE)
        self.assertIn(how, ("eof", "reset"))

    def test_partial_query_closed(self):
        with h.tcp_connect(self.srv.port) as s:
            s.sendall(b"\x00")
            how = h.wait_closed(s, h.DEADLINE)
        self.assertIn(how, ("eof", "reset"))

    def test_active_connection_kept(self):
        # a client that keeps asking (faster than the idle timeout) is served
        with h.tcp_connect(self.srv.port) as s:
            for i in range(5):
                m = query_on(s, 0x2000 + i)
                self.assertIsNotNone(m, "closed while active")
                self.assertEqual(m.id, 0x2000 + i)


class TcpMaxConnections(ServerTestCase):
    # the idle timeout outlasts every wait (h.DEADLINE): a connection closed
    # meanwhile was refused, not timed out
    SERVER_ARGS = dict(zones=ZONES, workers=2,
                       tcp={"max_connections": 4, "idle_timeout": "120s"})

    def test_connection_limit(self):
        held = []
        try:
            for i in range(4):
                # an answer proves the server accepted it (retries only while
                # slots of earlier tests' closed connections are being freed)
                held.append(self.open_served_connection(0x100 + i))
            fifth = h.tcp_connect(self.srv.port)
            try:
                how = h.wait_closed(fifth, h.DEADLINE)
            finally:
                fifth.close()
            self.assertIn(how, ("eof", "reset"), "5th connection never closed")
            # the 4 held connections are unaffected
            for i, s in enumerate(held):
                m = query_on(s, 0x200 + i)
                self.assertIsNotNone(m, "held connection %d was closed" % i)
                self.assertEqual(m.id, 0x200 + i)
        finally:
            for s in held:
                s.close()
        # once they are gone, new connections are served again
        r = h.wait_for(lambda: (lambda r: r if r.status == "NOERROR" else None)(
            self.dig("www.example.com", "A", "+tcp")), what="dig +tcp after closing")
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"])
        # and the slots are really free: 4 at once work again
        again = []
        try:
            for i in range(4):
                again.append(self.open_served_connection(0x300 + i))
        finally:
            for s in again:
                s.close()

    def test_slots_not_leaked(self):
        # many short connections ending in every way: EOF after nothing, after a
        # partial query, after a full query, and RST; afterwards all 4 slots are free
        for i in range(60):
            s = h.tcp_connect(self.srv.port)
            kind = i % 4
            if kind == 1:
                s.sendall(b"\x00")
            elif kind == 2:
                s.sendall(h.frame(h.build_query("www.example.com", "A", id=i)))
            elif kind == 3:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        held = []
        try:
            for i in range(4):
                held.append(self.open_served_connection(0x400 + i))
        finally:
            for s in held:
                s.close()

    def open_served_connection(self, qid, timeout=h.DEADLINE):
        """Connect and get one answer; retry (bounded) while slots are being freed."""
        deadline = time.monotonic() + timeout
        while True:
            s = h.tcp_connect(self.srv.port)
            try:
                m = query_on(s, qid, timeout=2.0)
            except (OSError, socket.timeout):
                m = None
            if m is not None:
                self.assertEqual(m.id, qid)
                return s
            s.close()
            if time.monotonic() > deadline:
                self.fail("no free TCP slot within %.0fs" % timeout)
            time.sleep(0.05)


class TransportSplit(ServerTestCase):
    """listen entries with transport: udp on one port, tcp on another."""

    SERVER_ARGS = dict(zones=ZONES, listen=[
        {"address": "127.0.0.1:{port}", "transport": "udp"},
        {"address": "127.0.0.1:{port2}", "transport": "tcp"},
    ])

    def test_udp_only_port(self):
        r = self.dig("www.example.com", "A")
        self.assertAnswered(r)
        with self.assertRaises(OSError):
            h.tcp_connect(self.srv.port, timeout=2.0).close()

    def test_tcp_only_port(self):
        r = h.dig(self.srv.port2, "www.example.com", "A", "+tcp")
        self.assertAnswered(r)
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"])
        self.assertIsNone(h.raw_udp(self.srv.port2, h.build_query("www.example.com", "A"),
                                    timeout=0.5))
        self.assertAnswered(self.dig("www.example.com", "A"))


if __name__ == "__main__":
    unittest.main()
