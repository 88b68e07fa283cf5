#!/usr/bin/env python3
"""Faults (issue #7, hardening): sockets at their limits.

  * Out of descriptors: steerdns under RLIMIT_NOFILE 64 and 120 TCP clients
    (plus a bounded connect storm): accept failures are counted
    (steerdns_tcp_accept_errors_total) and logged at most twice a second per
    worker, no thread spins, UDP is answered throughout, and TCP works again
    once the clients leave.
  * Full socket buffers: a UDP client that floods and never reads, a TCP
    client that pipelines and never reads: other clients are answered, every
    query of the UDP flood is answered (the answers are lost at the
    client's own full buffer), the stuck TCP connection is closed by the
    idle timeout with its unsent answers counted (steerdns_send_errors_total),
    memory stays bounded.

Everything listens on 127.0.0.0/8; every load loop is paced and bounded in
count and time; conditions are polled with one generous deadline
(common.DEADLINE), and no speed is asserted.
"""

import os
import resource
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import adminapi as ta  # noqa: E402  (HTTP, /metrics and /status helpers)
import harness as h  # noqa: E402
from common import cpu_seconds, open_fds, rss_kib, udp_drops, udp_rx_queue  # noqa: E402

ADMIN = "admin:\n  listen: 127.0.0.1:{admin_port}\n"


# ---------------------------------------------------------------------------
# 3. out of descriptors


class LimitedServer(h.Server):
    """steerdns with RLIMIT_NOFILE soft = hard = `nofile` (it raises the soft
    limit to the hard one at start, so both are set)."""

    def __init__(self, *args, nofile=64, **kw):
        self.nofile = nofile
        super().__init__(*args, **kw)

    def _spawn(self):
        limit = self.nofile

        def lower_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        self.proc = subprocess.Popen([os.path.abspath(h.BIN), "serve", "-c", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._log, cwd=self.dir, preexec_fn=lower_limit)
        try:
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.close()
            raise


def udp_answers(port, count, deadline, pace=0.01, what="www.example.com"):
    """Send up to `count` queries, one every `pace` s, each from a fresh socket (a
    fresh source port, so both workers' sockets get some), until `deadline`;
    returns (sent, answered)."""
    sent = answered = 0
    while sent < count and time.monotonic() < deadline:
        sent += 1
        reply = h.raw_udp(port, h.build_query(what, "A", id=sent), timeout=1.0)
        answered += reply is not None
        time.sleep(pace)  # pacing a load, not waiting for anything
    return sent, answered


class OutOfDescriptors(unittest.TestCase):
    NOFILE = 64
    CLIENTS = 120     # from 127.0.9.1 .. 127.0.9.120: below the per-client limit each

    def test_accept_at_the_descriptor_limit(self):
        with LimitedServer({"example.com.yaml": h.standard_zone()}, nofile=self.NOFILE, workers=2,
                           tcp={"max_connections": 1000, "idle_timeout": "60s"},
                           extra_config=ADMIN) as srv:
            base = open_fds(srv.pid)
            held = []
            try:
                for i in range(self.CLIENTS):
                    held.append(socket.create_connection(
                        ("127.0.0.1", srv.port), timeout=2,
                        source_address=("127.0.9.%d" % (1 + i), 0)))
                h.wait_for(lambda: open_fds(srv.pid) >= self.NOFILE - 1,
                           what="steerdns at its descriptor limit")
                at_limit = open_fds(srv.pid)

                # a bounded storm of short connections from other addresses: two
                # workers racing for the few descriptors (libuv's own EMFILE
                # trick loses its spare descriptor that way and then spins)
                stop = time.monotonic() + 3.0
                storm = [0, 0]

                def connect_storm(k):
                    for i in range(5000):
                        if time.monotonic() >= stop:
                            return
                        try:
                            s = socket.create_connection(
                                ("127.0.0.1", srv.port), timeout=0.5,
                                source_address=("127.0.%d.%d" % (20 + k, 1 + i % 250), 0))
                            s.close()
                            storm[0] += 1
                        except OSError:
                            storm[1] += 1
                threads = [threading.Thread(target=connect_storm, args=(k,)) for k in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(10)
                self.assertTrue(srv.alive(), srv.all_output())

                # nothing spins, and UDP is answered while TCP is starved
                log_at = len(srv.log())
                c0, t0 = cpu_seconds(srv.pid), time.monotonic()
                sent, answered = udp_answers(srv.port, 250, t0 + 2.5)
                elapsed = time.monotonic() - t0
                cpu = (cpu_seconds(srv.pid) - c0) / elapsed
                self.assertEqual(answered, sent, "UDP went unanswered at the descriptor limit")
                self.assertLess(cpu, 0.5, "steerdns used %.0f%% of a core while out of descriptors"
                                % (cpu * 100))
                r = h.dig(srv.port, "www.example.com", "A")
                self.assertEqual(r.status, "NOERROR", r.stdout)
                # logged, not flooded: at most an error and a "suppressed" line a second per worker
                lines = [ln for ln in srv.log()[log_at:].splitlines() if ln.strip()]
                self.assertLessEqual(len(lines), (elapsed + 1) * 2 * 2 + 2,
                                     "log flooded:\n" + "\n".join(lines[-20:]))
            finally:
                for s in held:
                    s.close()
            # once the clients leave, TCP works again
            t_back = time.monotonic()
            h.wait_for(lambda: h.dig(srv.port, "www.example.com", "A", "+tcp").status == "NOERROR",
                       what="TCP answered again after the clients left")
            back = time.monotonic() - t_back
            m = ta.scrape(srv)
            errors = m.value("steerdns_tcp_accept_errors_total")
            self.assertGreater(errors, 0, "accept failures not counted")
            self.assertIn("tcp accept: Too many open files", srv.log())
            print("  fds %d at start, %d at the limit (%d); storm %d connects, %d failed; UDP %d/%d"
                  " answered at %.0f%% CPU; accept errors counted %d; TCP back in %.2f s"
                  % (base, at_limit, self.NOFILE, storm[0], storm[1], answered, sent, cpu * 100,
                     errors, back))
            self.assertEqual(srv.stop(), 0, srv.all_output())


# ---------------------------------------------------------------------------
# 4. full socket buffers


def udp_queries(m):
    """UDP queries steerdns counted, in one scrape."""
    return sum(v for k, v in m.series("steerdns_queries_total").items()
               if dict(k)["transport"] == "udp")


OTHER_ANSWERED = 20  # the flood lasts until another client was answered this often
FLOOD_MIN = 20000    # ... and this many flood queries were sent
FLOOD_MAX = 400000   # at most this many flood queries, for at most h.DEADLINE
FLOOD_BATCH = 20     # sent back to back, then a pause
QUEUE_LIMIT = 32768  # bytes waiting at steerdns's socket before the flood sends more


class FullSocketBuffers(h.ServerTestCase):
    SERVER_ARGS = dict(zones={"example.com.yaml": h.standard_zone()}, workers=2,
                       tcp={"idle_timeout": "2s", "max_pipelined": 16}, extra_config=ADMIN)

    def test_udp_client_that_never_reads(self):
        srv = self.srv
        m0 = ta.scrape(srv)
        server_drops0 = udp_drops(srv.port)
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum
        flood.connect(("127.0.0.1", srv.port))
        flood_port = flood.getsockname()[1]
        query = h.build_query("bigtxt.example.com", "TXT", id=7, edns={"udp": 4096})
        sent = [0]
        done = threading.Event()
        stop_at = time.monotonic() + h.DEADLINE

        def blast():
            # Paced: FLOOD_BATCH queries at most a millisecond, and only while
            # steerdns's receive queue is short, so the kernel drops none of
            # them there (every one is answered; the client's buffer loses the
            # answers), however fast steerdns goes.
            while not done.is_set() and sent[0] < FLOOD_MAX and time.monotonic() < stop_at:
                if udp_rx_queue(srv.port) < QUEUE_LIMIT:
                    for _ in range(FLOOD_BATCH):
                        try:
                            flood.send(query)
                            sent[0] += 1
                        except OSError:  # ICMP or ENOBUFS: keep going, it's a flood
                            pass
                time.sleep(0.001)  # pacing the load
        t = threading.Thread(target=blast)
        t.start()
        try:
            h.wait_for(lambda: sent[0] >= 1000 or not t.is_alive(), what="the flood under way")
            # another client meanwhile: answered (a fresh socket per try, 3 tries),
            # and the flood goes on until it has been answered OTHER_ANSWERED times
            # and FLOOD_MIN queries are out
            asked, lost, first_try_lost, tries = 0, 0, 0, 0
            while (t.is_alive() and asked < 10000
                   and (asked - lost < OTHER_ANSWERED or sent[0] < FLOOD_MIN)):
                if asked:
                    time.sleep(0.01)  # pacing this client
                asked += 1
                for attempt in range(3):
                    tries += 1
                    if h.raw_udp(srv.port, h.build_query("www.example.com", id=asked), 1.0):
                        break
                    first_try_lost += attempt == 0
                else:
                    lost += 1
            flooding = t.is_alive()
            done.set()
            t.join(h.DEADLINE)
            client_drops = udp_drops(flood_port)

            # steerdns's counters show the whole flood handled: every query
            # counted, or dropped by the kernel at steerdns's full socket
            def handled():
                m = ta.scrape(srv)
                n = (udp_queries(m) - udp_queries(m0)) - tries
                return (m, n) if n + udp_drops(srv.port) - server_drops0 >= sent[0] else None
            m1, answered = h.wait_for(handled, what="steerdns's counters to show the flood handled")
        finally:
            done.set()
            t.join(h.DEADLINE)
            flood.close()
        self.assertTrue(srv.alive())
        self.assertTrue(flooding, "the flood reached its bounds before the other client was"
                        " answered %d times and %d queries were sent" % (OTHER_ANSWERED, FLOOD_MIN))
        self.assertEqual(lost, 0, "another client went unanswered during the flood")
        print("  UDP flood: %d sent; steerdns answered %d (its own sockets dropped %d, queue full);"
              " %d answers dropped at the client's full buffer; send errors %+d;"
              " another client %d/%d answered (%d needed a retry)"
              % (sent[0], answered, udp_drops(srv.port) - server_drops0, client_drops,
                 m1.value("steerdns_send_errors_total") - m0.value("steerdns_send_errors_total"),
                 asked - lost, asked, first_try_lost))
        # over loopback the answers leave steerdns's socket: the loss is the
        # client's own full buffer, not a send failure; steerdns answered the
        # whole flood (paced to its receive queue, none was dropped there)
        self.assertEqual(answered, sent[0])
        r = h.dig(srv.port, "www.example.com", "A")
        self.assertEqual(r.status, "NOERROR", r.stdout)

    def test_tcp_client_that_pipelines_and_never_reads(self):
        srv = self.srv
        m0 = ta.scrape(srv)
        rss0 = rss_kib(srv.pid)
        s = h.tcp_connect(srv.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        blob = b"".join(h.frame(h.build_query("bigtxt.example.com", "TXT", id=i & 0xFFFF))
                        for i in range(20000))
        pushed = 0
        s.settimeout(0.5)
        try:
            while pushed < len(blob):
                pushed += s.send(blob[pushed:pushed + 65536])
        except (socket.timeout, OSError):
            pass  # steerdns stopped reading: back-pressure
        try:
            # others are answered meanwhile, over TCP and UDP
            for i in range(20):
                r = h.dig(srv.port, "www.example.com", "A", *(["+tcp"] if i % 2 else []))
                self.assertEqual(r.status, "NOERROR", r.stdout)
            self.assertLess(rss_kib(srv.pid) - rss0, 16 * 1024)
            # the stuck connection is closed by the idle timeout (2 s), its unsent answers counted
            m = ta.wait_metrics(srv, lambda m: m.value("steerdns_tcp_timeouts_total", timeout="idle")
                                > m0.value("steerdns_tcp_timeouts_total", timeout="idle"),
                                "the stuck connection closed by the idle timeout")
            self.assertEqual(m.value("steerdns_tcp_connections"), 0)
            unsent = m.value("steerdns_send_errors_total") - m0.value("steerdns_send_errors_total")
            self.assertGreater(unsent, 0, "answers dropped with the connection are not counted")
            self.assertLessEqual(unsent, 16, "at most max_pipelined answers were pending")
        finally:
            s.close()
        print("  TCP: %d of %d bytes of queries accepted before back-pressure; closed after the idle"
              " timeout with %d answers unsent; RSS %+d KiB"
              % (pushed, len(blob), unsent, rss_kib(srv.pid) - rss0))



if __name__ == "__main__":
    unittest.main()
