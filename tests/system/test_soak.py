#!/usr/bin/env python3
"""Soak (issue #7, hardening): about a minute of everything at once.

A geo name over three regions of two VIPs each, every VIP probed over HTTP
(the JFrog document) on a real backend on 127.61.x.y; the test turns one
backend down or up every second, reloads with SIGHUP every ~3 s (alternating
zone content: a static record and the geo name's TTL), while three client
threads ask with EDNS Client Subnet (a Paris, a Virginia and a Singapore
network) without pause.

Asserted:
  * steerdns never dies, and exits 0 on SIGTERM at the end;
  * no query is lost: every one is answered (NOERROR) within 1 s;
  * no answer holds a VIP whose backend has been down longer than the
    failover bound, fall x (interval + jitter) + timeout (README, Health:
    "leaves the answer within fall x interval + timeout (plus jitter)"), plus
    MARGIN for the test's own clock.  The test records when it turned each
    backend down (after the listening socket is closed) and up (before it is
    opened again); an answer counts against a down spell when its query was
    sent more than bound + MARGIN after the spell began and its reply came
    back before the spell ended;
  * every reload succeeds and the last content is served.
The figures (queries, answers, reloads, toggles, failover times) are printed.
The all-down policy is `nodata`, so an answer never has to name a down VIP.
STEERDNS_SOAK_SECONDS sets the duration of the load (default 45).
"""

import bisect
import os
import random
import re
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import backends as bk  # noqa: E402
import harness as h  # noqa: E402
import test_health as th  # noqa: E402  (flow(), the zone head)

SECONDS = float(os.environ.get("STEERDNS_SOAK_SECONDS", "45"))
NAME = "artifacts.example.com"
REGIONS = {
    "paris": ([48.86, 2.35], ["127.61.1.1", "127.61.1.2"]),
    "virginia": ([38.95, -77.45], ["127.61.2.1", "127.61.2.2"]),
    "singapore": ([1.29, 103.85], ["127.61.3.1", "127.61.3.2"]),
}
VIPS = [v for _, vips in REGIONS.values() for v in vips]
CLIENTS = {"paris": "193.51.24.0/24", "virginia": "8.8.8.0/24", "singapore": "1.1.1.0/24"}

INTERVAL, JITTER, TIMEOUT, RISE, FALL = 1.0, 0.1, 0.5, 2, 2
BOUND = FALL * (INTERVAL + JITTER) + TIMEOUT   # 2.7 s
MARGIN = 0.5
MAX_DOWN = 4            # backends down at once, at most (of 6)
TOGGLE_EVERY = 1.0
RELOAD_EVERY = 3.0
QUERY_TIMEOUT = 1.0
CLIENT_THREADS = 3
CLIENT_PACE = 0.001     # seconds between two queries of one client thread


def zone_text(port, variant):
    check = {"type": "http", "port": port, "path": bk.JFROG_PATH, "jfrog": True,
             "interval": "%dms" % (INTERVAL * 1000), "timeout": "%dms" % (TIMEOUT * 1000),
             "jitter": "%dms" % (JITTER * 1000), "rise": RISE, "fall": FALL}
    geo = {"regions": list(REGIONS), "ttl": 30 + variant, "all_down": "nodata", "check": check}
    lines = [th.ZONE_HEAD.rstrip("\n"),
             "  gen:", "    A: 192.0.2.%d" % (100 + variant),
             "regions:"]
    for name, (location, vips) in REGIONS.items():
        lines.append("  %s: %s" % (name, th.flow({"location": location, "vips": vips})))
    lines += ["geo:", "  artifacts: %s" % th.flow(geo)]
    return "\n".join(lines) + "\n"


def ecs_option(cidr):
    address, prefix = cidr.split("/")
    prefix = int(prefix)
    raw = socket.inet_aton(address)[:(prefix + 7) // 8]
    return (8, struct.pack("!HBB", 1, prefix, 0) + raw)


class Client(threading.Thread):
    """Asks NAME A with ECS, one query at a time, until `stop` is set (or
    `limit` queries); records (sent, received, vips) of every answer."""

    def __init__(self, port, index, stop, limit=10 ** 6):
        super().__init__(name="soak-client-%d" % index, daemon=True)
        self.port, self.stop, self.limit = port, stop, limit
        self.rng = random.Random(index)
        self.clients = list(CLIENTS.values())[index % 3:] + list(CLIENTS.values())[:index % 3]
        self.answers = []          # (t_send, t_recv, frozenset of VIPs)
        self.lost = []             # (t_send, client)
        self.wrong = []            # (t_send, client, rcode)
        self.sent = 0
        self.slowest = 0.0
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as exc:  # reported by the test
            self.error = exc

    def _run(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        queries = {c: ecs_option(c) for c in self.clients}
        try:
            while not self.stop.is_set() and self.sent < self.limit:
                client = self.clients[self.sent % len(self.clients)]
                qid = self.rng.randrange(1 << 16)
                packet = h.build_query(NAME, "A", id=qid, edns={"options": [queries[client]]})
                self.sent += 1
                t_send = time.monotonic()
                sock.sendto(packet, ("127.0.0.1", self.port))
                reply = self._receive(sock, qid, t_send + QUERY_TIMEOUT)
                t_recv = time.monotonic()
                if reply is None:
                    self.lost.append((t_send, client))
                    continue
                self.slowest = max(self.slowest, t_recv - t_send)
                if reply.rcode_name != "NOERROR":
                    self.wrong.append((t_send, client, reply.rcode_name))
                    continue
                vips = frozenset(socket.inet_ntoa(rr.rdata) for rr in reply.answer if rr.type == 1)
                self.answers.append((t_send, t_recv, vips))
                time.sleep(CLIENT_PACE)  # pacing, so the backends (threads here) keep up
        finally:
            sock.close()

    @staticmethod
    def _receive(sock, qid, deadline):
        while True:  # skips late replies to earlier queries
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            sock.settimeout(remaining)
            try:
                data = sock.recv(4096)
            except socket.timeout:
                return None
            message = h.parse_message(data)
            if message.id == qid:
                return message


class Soak(unittest.TestCase):

    def test_soak(self):
        rng = random.Random(int(os.environ.get("STEERDNS_SOAK_SEED", "7")))
        port = h.free_port(tuple(VIPS))
        backends = {vip: bk.Backend(vip, port) for vip in VIPS}
        spells = {vip: [] for vip in VIPS}   # [t_down, t_up or None]
        stop = threading.Event()
        clients = []
        srv = h.Server({"example.com.yaml": zone_text(port, 0)}, workers=2)
        try:
            for b in backends.values():
                b.start()
            srv.start()
            th.wait_answer(srv, NAME, CLIENTS["paris"], REGIONS["paris"][1], timeout=10)
            clients = [Client(srv.port, i, stop) for i in range(CLIENT_THREADS)]
            for c in clients:
                c.start()

            t_start = time.monotonic()
            end = t_start + SECONDS
            next_toggle, next_reload = t_start + TOGGLE_EVERY, t_start + RELOAD_EVERY
            reloads, variant, toggles = 0, 0, 0
            reloaded = srv.log().count("reloaded")
            while True:
                now = time.monotonic()
                if now >= end:
                    break
                self.assertTrue(srv.alive(), "steerdns died; log:\n" + th.tail(srv.log()))
                if now >= next_toggle:
                    next_toggle += TOGGLE_EVERY
                    vip = rng.choice(VIPS)
                    b = backends[vip]
                    down = sum(1 for x in backends.values() if not x.running)
                    if b.running and down < MAX_DOWN:
                        b.stop()
                        spells[vip].append([time.monotonic(), None])
                        toggles += 1
                    elif not b.running:
                        spells[vip][-1][1] = time.monotonic()
                        b.start()
                        toggles += 1
                # one reload at a time: the next SIGHUP once the last one is logged
                if now >= next_reload and srv.log().count("reloaded") >= reloaded + reloads:
                    next_reload = now + RELOAD_EVERY
                    variant = 1 - variant
                    srv.write_zone("example.com.yaml", zone_text(port, variant))
                    srv.reload()
                    reloads += 1
                stop.wait(max(0.0, min(next_toggle, next_reload, end) - time.monotonic()))
            stop.set()
            for c in clients:
                c.join(QUERY_TIMEOUT + 5)
            duration = time.monotonic() - t_start

            # every reload done, none failed, the last content served
            h.wait_for(lambda: srv.log().count("reloaded") >= reloaded + reloads, 20,
                       what="the last reload")
            self.assertNotIn("reload failed", srv.log())
            r = h.dig(srv.port, "gen.example.com", "A")
            self.assertEqual(r.rdatas("A"), ["192.0.2.%d" % (100 + variant)], r.stdout)
            self.assertTrue(srv.alive(), "steerdns died; log:\n" + th.tail(srv.log()))
            log = srv.log()
            code = srv.stop()
        finally:
            stop.set()
            for c in clients:
                c.join(QUERY_TIMEOUT + 5)
            srv.close()
            for b in backends.values():
                b.stop()

        for c in clients:
            self.assertIsNone(c.error, "client thread failed: %r" % (c.error,))
        sent = sum(c.sent for c in clients)
        answers = [a for c in clients for a in c.answers]
        lost = [x for c in clients for x in c.lost]
        wrong = [x for c in clients for x in c.wrong]

        # stale VIPs: by VIP, the send times of the answers that named it
        named = {vip: [] for vip in VIPS}
        for t_send, t_recv, vips in answers:
            for vip in vips:
                named[vip].append((t_send, t_recv))
        for vip in VIPS:
            named[vip].sort()
        stale, failovers, spell_count = [], [], 0
        for vip, vip_spells in spells.items():
            sends = [s for s, _ in named[vip]]
            for t_down, t_up in vip_spells:
                t_up = t_up if t_up is not None else float("inf")
                spell_count += 1
                lo = bisect.bisect_left(sends, t_down)
                hi = bisect.bisect_left(sends, t_up)
                inside = named[vip][lo:hi]
                if inside:
                    last = max(s for s, _ in inside)
                    if t_up - t_down > BOUND + MARGIN:
                        failovers.append(last - t_down)
                elif t_up - t_down > BOUND + MARGIN:
                    failovers.append(0.0)
                for t_send, t_recv in inside:
                    if t_send - t_down > BOUND + MARGIN and t_recv < t_up:
                        stale.append((vip, round(t_send - t_down, 2)))

        failovers.sort()
        print("\n  soak %.0f s: %d queries, %d answered, %d lost, %d not NOERROR; %d reloads,"
              " %d toggles, %d down spells (%d longer than the bound); slowest answer %.0f ms"
              % (duration, sent, len(answers), len(lost), len(wrong), reloads, toggles, spell_count,
                 len(failovers), max(c.slowest for c in clients) * 1000))
        if failovers:
            print("  failover (last answer naming a downed VIP, after it went down): median %.2f s,"
                  " max %.2f s; bound %.1f s + %.1f s margin"
                  % (failovers[len(failovers) // 2], failovers[-1], BOUND, MARGIN))
        self.assertEqual(code, 0, "exit status %s; log:\n%s" % (code, th.tail(log)))
        self.assertIsNone(re.search(r"Sanitizer|runtime error:", log))
        self.assertGreater(sent, 1000)
        self.assertEqual(len(lost), 0, "%d of %d queries unanswered within %.0f s (first: %r)"
                         % (len(lost), sent, QUERY_TIMEOUT, lost[:10]))
        self.assertEqual(len(wrong), 0, "answers not NOERROR (first: %r)" % (wrong[:10],))
        self.assertEqual(len(stale), 0, "%d answers named VIPs down longer than %.1f s"
                         " (VIP, seconds down when asked; first: %r)"
                         % (len(stale), BOUND + MARGIN, stale[:10]))
        self.assertGreaterEqual(reloads, SECONDS / RELOAD_EVERY / 2)
        self.assertGreater(len(failovers), 0, "no down spell outlasted the bound: nothing was tested")


if __name__ == "__main__":
    unittest.main()
