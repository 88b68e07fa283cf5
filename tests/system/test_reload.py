#!/usr/bin/env python3
"""Reloading steerdns with SIGHUP: new data is served, broken data is rejected
with file:line and the old data kept, SOA serial "auto" follows the file's
content (alike on two instances), and no query is lost while reloads happen."""

import os
import re
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import Server, standard_zone  # noqa: E402

ZF = "example.com.yaml"


def with_name(name, addr):
    return "  %s:\n    A: %s\n" % (name, addr)


def line_of(text, needle):
    """1-based line number of the first line containing needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise ValueError(needle)


def insert_after(text, prefix, new_line):
    """Insert new_line after the first line starting with prefix; return (text, lineno)."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith(prefix):
            lines.insert(i + 1, new_line + "\n")
            return "".join(lines), i + 2
    raise ValueError(prefix)


def answer_of(port, name, qtype="A"):
    r = h.dig(port, name, qtype)
    return r


def serial_of(port, zone="example.com"):
    r = h.dig(port, zone, "SOA")
    assert r.status == "NOERROR" and r.answer, r.stdout
    return int(r.answer[0][4].split()[2])


def wait_answer(port, name, rdata, timeout=h.DEADLINE):
    def ok():
        r = h.dig(port, name, "A")
        return r if r.status == "NOERROR" and rdata in r.rdatas("A") else None
    return h.wait_for(ok, timeout, what="%s A %s to be served" % (name, rdata))


class Reload(unittest.TestCase):

    def assertServes(self, srv, name, rdata):
        r = h.dig(srv.port, name, "A")
        self.assertEqual(r.status, "NOERROR", r.stdout)
        self.assertEqual(r.rdatas("A"), [rdata], r.stdout)

    def assertNx(self, srv, name):
        r = h.dig(srv.port, name, "A")
        self.assertEqual(r.status, "NXDOMAIN", r.stdout)

    def assertReloadFailed(self, srv, file_re, line, *needles):
        ok, text = srv.reload_and_wait()
        self.assertFalse(ok, "reload of broken data succeeded; log:\n" + text)
        self.assertIn("reload failed", text)
        pat = r"%s:%d:" % (file_re, line)
        self.assertRegex(text, pat, "error location %s:%d: missing" % (file_re, line))
        err_line = [ln for ln in text.splitlines() if re.search(pat, ln)][0]
        for needle in needles:
            self.assertIn(needle, err_line, "reason should name %r" % needle)
        self.assertTrue(srv.alive())

    def test_add_break_fix(self):
        zone0 = standard_zone(serial="1")
        with Server({ZF: zone0}) as srv:
            self.assertNx(srv, "new1.example.com")
            self.assertEqual(serial_of(srv.port), 1)

            # 1. add a name
            zone1 = standard_zone(serial="2", extra_records=with_name("new1", "192.0.2.101"))
            srv.write_zone(ZF, zone1)
            ok, text = srv.reload_and_wait()
            self.assertTrue(ok, text)
            wait_answer(srv.port, "new1.example.com", "192.0.2.101")
            self.assertEqual(serial_of(srv.port), 2)

            # 2. an unknown key: rejected, old data kept, the new edit not served
            broken = standard_zone(serial="3", extra_records=with_name("new1", "192.0.2.101")
                                   + with_name("new2", "192.0.2.102"))
            broken, line = insert_after(broken, "ttl:", "colour: blue")
            srv.write_zone(ZF, broken)
            self.assertReloadFailed(srv, re.escape(ZF), line, "colour")
            self.assertServes(srv, "new1.example.com", "192.0.2.101")
            self.assertServes(srv, "www.example.com", "192.0.2.10")
            self.assertNx(srv, "new2.example.com")
            self.assertEqual(serial_of(srv.port), 2)

            # 3. bad A data: rejected likewise
            broken = standard_zone(serial="3", extra_records=with_name("new1", "192.0.2.101")
                                   + with_name("new2", "999.1.1.1"))
            srv.write_zone(ZF, broken)
            self.assertReloadFailed(srv, re.escape(ZF), line_of(broken, "999.1.1.1"),
                                    "999.1.1.1")
            self.assertNx(srv, "new2.example.com")
            self.assertEqual(serial_of(srv.port), 2)

            # 4. fixed: served
            fixed = standard_zone(serial="3", extra_records=with_name("new1", "192.0.2.101")
                                  + with_name("new2", "192.0.2.102"))
            srv.write_zone(ZF, fixed)
            ok, text = srv.reload_and_wait()
            self.assertTrue(ok, text)
            wait_answer(srv.port, "new2.example.com", "192.0.2.102")
            self.assertEqual(serial_of(srv.port), 3)
            self.assertEqual(srv.stop(), 0)

    def test_removed_name_disappears(self):
        with Server({ZF: standard_zone(extra_records=with_name("gone", "192.0.2.99"))}) as srv:
            self.assertServes(srv, "gone.example.com", "192.0.2.99")
            srv.write_zone(ZF, standard_zone())
            ok, text = srv.reload_and_wait()
            self.assertTrue(ok, text)
            h.wait_for(lambda: h.dig(srv.port, "gone.example.com", "A").status == "NXDOMAIN",
                       what="gone.example.com to disappear")

    def test_missing_zone_file_keeps_old_data(self):
        with Server({ZF: standard_zone()}) as srv:
            os.unlink(srv.zone_path(ZF))
            ok, text = srv.reload_and_wait()
            self.assertFalse(ok, text)
            self.assertIn(ZF, text)
            self.assertServes(srv, "www.example.com", "192.0.2.10")

    def test_in_zone_name_server_without_an_address_keeps_old_data(self):
        # Issue #16: ns3 of the zone with no A or AAAA could never be reached.
        with Server({ZF: standard_zone(serial="1")}) as srv:
            broken = standard_zone(serial="2", extra_records=with_name("new1", "192.0.2.101"))
            broken = broken.replace("ns: [ns1, ns2]\n", "ns: [ns1, ns2, ns3]\n")
            srv.write_zone(ZF, broken)
            self.assertReloadFailed(srv, re.escape(ZF), line_of(broken, "ns: [ns1, ns2, ns3]"),
                                    "NS ns3.example.com. of example.com. is inside the zone "
                                    "but has no address")
            self.assertNx(srv, "new1.example.com")
            self.assertServes(srv, "www.example.com", "192.0.2.10")
            self.assertEqual(serial_of(srv.port), 1)

    def test_broken_main_config_keeps_old_data(self):
        with Server({ZF: standard_zone()}) as srv:
            cfg = srv.render_config()
            cfg, line = insert_after(cfg, "  workers:", "  colour: blue")
            srv.write_file(srv.config_path, cfg)
            self.assertReloadFailed(srv, re.escape("steerdns.yaml"), line, "colour")
            self.assertServes(srv, "www.example.com", "192.0.2.10")

    def test_reload_adds_zone_from_config(self):
        net = standard_zone("example.net")
        with Server({ZF: standard_zone()}) as srv:
            self.assertEqual(h.dig(srv.port, "www.example.net", "A").status, "REFUSED")
            srv.write_zone("example.net.yaml", net)
            srv.zones_entry = [ZF, "example.net.yaml"]
            srv.write_config()
            ok, text = srv.reload_and_wait()
            self.assertTrue(ok, text)
            wait_answer(srv.port, "www.example.net", "192.0.2.10")
            self.assertServes(srv, "www.example.com", "192.0.2.10")

    def test_sighup_burst(self):
        with Server({ZF: standard_zone()}) as srv:
            srv.write_zone(ZF, standard_zone(extra_records=with_name("burst", "192.0.2.77")))
            for _ in range(5):
                srv.reload()
            wait_answer(srv.port, "burst.example.com", "192.0.2.77")
            self.assertTrue(srv.alive())
            self.assertServes(srv, "www.example.com", "192.0.2.10")
            self.assertEqual(srv.stop(), 0)

    def test_serial_auto_follows_the_content(self):
        """Two instances serving copies of one file (another mtime, another
        folder) give one serial; a touch changes nothing; an edit gives a
        greater serial (RFC 1982) on both; a restart keeps it."""
        def ahead(a, b):
            return 0 < (a - b) % 2 ** 32 < 2 ** 31

        state = "health:\n  state_file: state.yaml\n"
        t0 = int(time.time()) - 200000
        with Server({ZF: standard_zone(serial="auto")}, zone_mtime=t0, extra_config=state) as one, \
                Server({ZF: standard_zone(serial="auto")}, extra_config=state) as two:
            s0 = serial_of(one.port)
            self.assertEqual(serial_of(two.port), s0, "copies of one file, one serial")

            os.utime(one.zone_path(ZF), (t0 + 9000, t0 + 9000))  # only the mtime moves
            ok, text = one.reload_and_wait()
            self.assertTrue(ok, text)
            self.assertEqual(serial_of(one.port), s0, "a touch is no change")

            edited = standard_zone(serial="auto", extra_records=with_name("later", "192.0.2.88"))
            for srv in (one, two):
                srv.write_zone(ZF, edited)
                ok, text = srv.reload_and_wait()
                self.assertTrue(ok, text)
                wait_answer(srv.port, "later.example.com", "192.0.2.88")
            s1 = serial_of(one.port)
            self.assertTrue(ahead(s1, s0), "serial %d must be ahead of %d" % (s1, s0))
            self.assertEqual(serial_of(two.port), s1, "the same edit, the same serial")

            one.restart()
            self.assertEqual(serial_of(one.port), s1)

    def test_no_lost_queries_during_reloads(self):
        many = "".join("  gen%d:\n    A: 10.%d.%d.1\n" % (i, i // 250, i % 250)
                       for i in range(1500))
        with Server({ZF: standard_zone(extra_records=many)}) as srv:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(1.0)
            lost, wrong, sent = [], [], 0
            reloads_seen = 0
            deadline = time.monotonic() + 5 * h.DEADLINE
            qid = 0

            def one_query():
                nonlocal qid, sent
                qid = (qid + 1) & 0xFFFF
                sent += 1
                sock.sendto(h.build_query("www.example.com", "A", id=qid),
                            ("127.0.0.1", srv.port))
                end = time.monotonic() + 1.0
                while True:  # skip stale replies (bounded by the 1 s timeout)
                    remaining = end - time.monotonic()
                    # 0: a last look without blocking, for a reply that
                    # arrived while this process was not scheduled
                    sock.settimeout(max(remaining, 0.0))
                    try:
                        data = sock.recv(65535)
                    except (socket.timeout, BlockingIOError):
                        if remaining > 0:
                            continue
                        lost.append(qid)
                        return
                    m = h.parse_message(data)
                    if m.id != qid:
                        continue
                    if m.rcode_name != "NOERROR" or len(m.answer) != 1:
                        wrong.append((qid, m))
                    return

            try:
                for cycle in range(5):
                    n_ok = srv.log().count("reloaded")
                    # alternate the data so every reload changes something
                    srv.write_zone(ZF, standard_zone(
                        serial=str(10 + cycle),
                        extra_records=many + with_name("cycle%d" % cycle, "192.0.2.%d" % cycle)))
                    srv.reload()
                    in_cycle = 0
                    # Until the reload is seen (the builder runs at nice 19,
                    # so on a busy machine it may take seconds), bounded in time.
                    cycle_end = min(deadline, time.monotonic() + h.DEADLINE)
                    while time.monotonic() < cycle_end:
                        one_query()
                        in_cycle += 1
                        if in_cycle >= 60 and srv.log().count("reloaded") > n_ok:
                            reloads_seen += 1
                            break
                    self.assertTrue(srv.alive(), srv.all_output())
                for _ in range(max(0, 300 - sent)):
                    one_query()
            finally:
                sock.close()
            self.assertEqual(reloads_seen, 5, "not all reloads completed; log:\n" + srv.log())
            self.assertGreaterEqual(sent, 300)
            self.assertEqual(lost, [], "%d of %d queries got no answer" % (len(lost), sent))
            self.assertEqual(wrong, [])
            wait_answer(srv.port, "cycle4.example.com", "192.0.2.4")
            self.assertEqual(srv.stop(signal.SIGTERM), 0)


if __name__ == "__main__":
    unittest.main()
