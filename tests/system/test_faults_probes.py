#!/usr/bin/env python3
"""Faults (issue #7, hardening): health probes of backends that misbehave.

  * HTTP backends that stream an endless body, endless headers, or trickle
    a healthy answer one byte a second.  The prober hangs up on each (the
    backend sees the client close, not its own 30 s limit), the 16 KiB cap
    holds (memory), the VIP goes down with its reason in /status and
    /metrics, the other VIPs keep being probed and stay up, DNS is answered
    throughout, and the VIPs come back once their backends behave.

Everything listens on 127.0.0.0/8; conditions are polled with one generous
deadline (common.DEADLINE); how long a probe took is printed, not asserted.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import adminapi as ta  # noqa: E402  (HTTP, /metrics and /status helpers)
import backends as bk  # noqa: E402
import harness as h  # noqa: E402
import healthcase as th  # noqa: E402  (zone helpers, HealthCase)

ADMIN = "admin:\n  listen: 127.0.0.1:{admin_port}\n"
PARIS, VIRGINIA = th.PARIS, th.VIRGINIA

TIMEOUT_MS = 800
PROBE = {"interval": "1s", "timeout": "%dms" % TIMEOUT_MS, "rise": 2, "fall": 2,
         "jitter": "0ms"}
ENDLESS, TRICKLE, HEADERS = "127.1.0.1", "127.2.0.1", "127.3.0.1"
FAULTY = (ENDLESS, TRICKLE, HEADERS)
HEALTHY = ("127.1.0.2", "127.2.0.2", "127.3.0.2")
ROUNDS = 4       # finished probes of each faulty backend, and probes of each healthy one
NAME, PLAIN = "artifacts.example.com", "plain.example.com"


class ProbeFaults(th.HealthCase):
    """`artifacts` checks the JFrog document (reads the body); `plain` only
    the status.  127.1.0.1 streams an endless body, 127.2.0.1 trickles,
    127.3.0.1 sends endless headers; the others are healthy."""

    @classmethod
    def make_backends(cls):
        return [bk.Backends(th.ALL_VIPS, cls.port, modes={
            ENDLESS: "endless", TRICKLE: "trickle", HEADERS: "endless_headers"})]

    @classmethod
    def make_zone(cls):
        jfrog = dict(PROBE, type="http", port=cls.port, path=bk.JFROG_PATH, jfrog=True,
                     headers={"X-Check": "jfrog"})
        plain = dict(PROBE, type="http", port=cls.port, path=bk.JFROG_PATH,
                     headers={"X-Check": "plain"})
        return th.zone_text({"artifacts": th.geo_name(jfrog), "plain": th.geo_name(plain)})

    @classmethod
    def extra_config(cls):
        return ADMIN

    def probes(self, vip, check, since=0.0):
        return [r for r in self.backends[vip].requests(since)
                if r["headers"].get("x-check") == check]

    def test_endless_trickling_and_flooding_backends(self):
        srv = self.srv
        rss0 = h.rss_kib(srv.pid)

        # down (the first round decides at once), each with its reason
        expect = {ENDLESS: ("body_mismatch", "16 KiB"), TRICKLE: ("timeout", "%d ms" % TIMEOUT_MS),
                  HEADERS: ("protocol", "headers larger than 16 KiB")}

        def reasons():
            doc = ta.status_doc(srv)
            got = {vip: (ta.vip_entry(doc, NAME, vip)["state"], ta.vip_entry(doc, NAME, vip)["reason"],
                         ta.vip_entry(doc, NAME, vip)["detail"] or "") for vip in FAULTY}
            return got if all(got[v][0] == "down" and got[v][1] == expect[v][0]
                              and expect[v][1] in got[v][2] for v in FAULTY) else None
        got = h.wait_for(reasons, interval=0.2, what="the faulty VIPs down with reasons")
        for vip in FAULTY:
            print("  %s %-16s down: %s (%s)" % (vip, self.backends[vip].mode, got[vip][1], got[vip][2]))
        # the status-only check stops at the status line: the endless body is up there
        doc = ta.status_doc(srv)
        self.assertEqual(ta.vip_entry(doc, PLAIN, ENDLESS)["state"], "up")
        self.assertEqual(ta.vip_entry(doc, PLAIN, TRICKLE)["reason"], "timeout")
        self.assertEqual(ta.vip_entry(doc, PLAIN, HEADERS)["reason"], "protocol")

        # answers without them, from the first region still
        unanswered = []
        for client, vips in ((th.PARIS_CLIENT, ["127.1.0.2"]), (th.VIRGINIA_CLIENT, ["127.2.0.2"]),
                             (th.SINGAPORE_CLIENT, ["127.3.0.2"])):
            th.wait_answer(srv, NAME, client, vips, ttl=th.DEGRADED_TTL, time_=1,
                           on_poll=lambda r: r.status is None and unanswered.append(r.stdout))

        # a few more rounds of every check, answering DNS meanwhile: the
        # healthy VIPs keep being probed while the faulty ones misbehave
        mark = time.monotonic()

        def enough_rounds():
            r = th.ask(srv, NAME, th.PARIS_CLIENT, time_=1)
            if r.status is None:
                unanswered.append(r.stdout)
            return (all(len([p for p in self.probes(v, c, mark) if "end" in p]) >= ROUNDS
                        for v in FAULTY for c in ("jfrog", "plain"))
                    and all(len(self.probes(v, c, mark)) >= ROUNDS
                            for v in HEALTHY for c in ("jfrog", "plain")))
        h.wait_for(enough_rounds, interval=0.1,
                   what="%d finished probes of each faulty backend, %d of each healthy one"
                   % (ROUNDS, ROUNDS))
        self.assertEqual(unanswered, [], "DNS went unanswered while backends misbehaved")

        # every probe ended because the prober hung up, not at the backend's
        # own limit (HANG_LIMIT, 30 s); the timeout itself is the reason above
        longest = 0.0
        for vip in FAULTY:
            for check in ("jfrog", "plain"):
                for p in self.probes(vip, check):
                    if "end" not in p:
                        continue
                    longest = max(longest, p["end"] - p["time"])
                    self.assertEqual(p.get("ended_by"), "peer",
                                     "%s (%s, %s check) kept until %s, %.2f s" % (
                                         vip, self.backends[vip].mode, check, p.get("ended_by"),
                                         p["end"] - p["time"]))

        # the healthy VIPs are up
        times = {vip: [p["time"] for p in self.probes(vip, "jfrog", mark)] for vip in HEALTHY}
        worst_gap = max(b - a for t in times.values() for a, b in zip(t, t[1:]))
        doc = ta.status_doc(srv)
        for vip in HEALTHY:
            self.assertEqual(ta.vip_entry(doc, NAME, vip)["state"], "up")

        # metrics: the VIPs down, the failures counted by reason
        m = ta.scrape(srv)
        for vip in FAULTY:
            up = {dict(k)["name"]: v for k, v in m.series("steerdns_vip_up").items()
                  if dict(k)["vip"] == vip}
            self.assertEqual(up[NAME + "."], 0, vip)
        for reason in ("timeout", "body_mismatch", "protocol"):
            self.assertGreater(m.value("steerdns_probe_failures_total", reason=reason), 0, reason)

        # memory: the 16 KiB cap holds (each endless probe was offered megabytes)
        offered = sum(p.get("sent", 0) for v in (ENDLESS, HEADERS) for p in self.backends[v].requests())
        grown = h.rss_kib(srv.pid) - rss0
        print("  probes ended within %.2f s (timeout %.1f s); healthy VIPs' widest gap %.2f s;"
              " backends offered %.0f MB; server RSS %+d KiB"
              % (longest, TIMEOUT_MS / 1000, worst_gap, offered / 1e6, grown))
        self.assertLess(grown, 32 * 1024, "the server grew by %d KiB" % grown)

        # and they come back once they behave
        self.backends[ENDLESS].set_mode("healthy")
        self.backends[TRICKLE].set_mode("healthy")
        th.wait_answer(srv, NAME, th.PARIS_CLIENT, PARIS, ttl=th.TTL)
        th.wait_answer(srv, NAME, th.VIRGINIA_CLIENT, VIRGINIA, ttl=th.TTL)


if __name__ == "__main__":
    unittest.main()
