#!/usr/bin/env python3
"""The metrics operators expect (issue #16), driven as an operator would:
/metrics scraped with the real curl and checked by the real `promtool check
metrics`; the standard process_* figures against /proc; answer durations
that count every answer sent; a stopped backend seen in
steerdns_vip_transitions_total and steerdns_vip_served; a drain told from a
failure (steerdns_override); steerdns_all_down set while some clients are
answered by the all-down policy and clear the moment that ends; the zero
series of a quiet start; the GeoIP database's build time by source.

Real HTTP backends (tests/system/backends.py) listen on the VIPs (127.1.0.x
paris, 127.2.0.x virginia, 127.3.0.x singapore); the admin API listens on
127.0.0.1:{admin_port}.  Checks run every second with fall 1 / rise 1; every
wait polls with one generous deadline (common.DEADLINE), nothing sleeps, and
how soon a change shows is not asserted.
"""

import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import healthcase as th  # noqa: E402
from adminapi import (ADMIN_CONFIG, NAME, PARIS, PARIS_CLIENT, STATE_CONFIG, STEADY,  # noqa: E402
                      VIRGINIA, AdminCase, Metrics, ask, drain, explain_text, scrape, status_doc,
                      undrain, vip_entry, wait_metrics)
from geozones import EXAMPLE_ZONE, TEST_MMDB  # noqa: E402

PROMTOOL = os.environ.get("PROMTOOL", "promtool")
ARTIFACTS, STEADY_FQDN = NAME + ".", STEADY + "."
REGIONS = ("paris", "virginia", "singapore")
SNAKE = re.compile(r"[a-z]+(_[a-z]+)*\Z")


def curl_metrics(srv):
    """GET /metrics with curl (no proxy; -f: an HTTP error fails)."""
    p = subprocess.run(["curl", "-sSf", "--noproxy", "*", "--max-time", str(int(h.DEADLINE)),
                        srv.admin_url + "/metrics"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=h.DEADLINE)
    assert p.returncode == 0, "curl exited %d: %s" % (p.returncode, p.stderr)
    return p.stdout


def promtool_problems(text):
    """What `promtool check metrics` says of TEXT: its exit code and every line
    it printed (lint warnings, such as a counter without _total, included)."""
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=h.DEADLINE)
    return p.returncode, (p.stdout + p.stderr).strip()


def proc_stat_fields(pid):
    """/proc/PID/stat's fields from field 3 on (after the command)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def boot_time():
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return int(line.split()[1])
    raise AssertionError("no btime in /proc/stat")


def soft_nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no Max open files in /proc/%d/limits" % pid)


def histogram(m, name, **labels):
    """(cumulative bucket counts by le, sum, count) of one histogram series."""
    buckets = {}
    for key, v in m.series(name + "_bucket").items():
        d = dict(key)
        le = d.pop("le")
        if d == labels:
            buckets[float(le)] = v
    return buckets, m.value(name + "_sum", **labels), m.value(name + "_count", **labels)


class OperatorMetrics(AdminCase):

    def assertPromtoolAccepts(self, text):
        rc, said = promtool_problems(text)
        self.assertEqual((rc, said), (0, ""), "promtool check metrics on:\n" + text)

    def served(self, m, name, region, vip):
        return m.value("steerdns_vip_served", name=name, region=region, vip=vip)

    def transitions(self, m, vip, to):
        return m.value("steerdns_vip_transitions_total", vip=vip, check="http", to=to)

    def test_scrape_passes_promtool_with_every_family_moving(self):
        srv = self.srv
        self.addCleanup(self.all_healthy)
        self.assertPromtoolAccepts(curl_metrics(srv))
        # Non-zero samples everywhere: answers on both transports, a failed
        # probe, a transition, a drain.
        for opts in ((), ("+tcp",)):
            self.assertEqual(ask(srv, NAME, PARIS_CLIENT, "A", *opts).status, "NOERROR")
        before = scrape(srv)
        self.backends["127.1.0.1"].stop()
        wait_metrics(srv, lambda m: self.transitions(m, "127.1.0.1", "down")
                     > self.transitions(before, "127.1.0.1", "down"), "a transition to down")
        self.addCleanup(self.clear_overrides)
        self.assertEqual(drain(srv, "regions", "singapore").status, 200)
        text = curl_metrics(srv)
        self.assertPromtoolAccepts(text)
        m = Metrics(text)
        # every label value names a thing, never a URL; reasons are one word
        for (name, labels) in m.samples:
            for label, value in labels:
                self.assertNotIn("://", value, "%s{%s=%r}" % (name, label, value))
        for labels in m.series("steerdns_probe_failures_total"):
            self.assertRegex(dict(labels)["reason"], SNAKE)
        for labels in m.series("steerdns_vip_up"):
            self.assertIn(dict(labels)["check"], ("http", "https", "tcp", "none"))

    def test_process_figures_are_the_processes_own(self):
        srv = self.srv
        cpu_before = h.cpu_seconds(srv.pid)
        m = scrape(srv)
        cpu_after = h.cpu_seconds(srv.pid)
        self.assertLessEqual(cpu_before, m.value("process_cpu_seconds_total"))
        self.assertLessEqual(m.value("process_cpu_seconds_total"), cpu_after)
        self.assertGreater(m.value("process_open_fds"), 0)
        self.assertLessEqual(m.value("process_open_fds"), m.value("process_max_fds"))
        self.assertEqual(m.value("process_max_fds"), soft_nofile(srv.pid))
        self.assertGreater(m.value("process_resident_memory_bytes"), 0)
        self.assertGreaterEqual(m.value("process_virtual_memory_bytes"),
                                m.value("process_resident_memory_bytes"))
        # the start time as the Go client computes it: btime + starttime / ticks
        started = boot_time() + int(proc_stat_fields(srv.pid)[19]) / os.sysconf("SC_CLK_TCK")
        self.assertAlmostEqual(m.value("process_start_time_seconds"), started, places=2)
        self.assertLessEqual(m.value("process_start_time_seconds"),
                             m.value("steerdns_start_time_seconds"))
        self.assertLessEqual(m.value("process_start_time_seconds"), time.time())
        self.assertEqual(m.value("steerdns_geoip_build_timestamp_seconds", source="builtin"),
                         self.explained_build_time())

    def explained_build_time(self):
        text = explain_text(self.srv, NAME, PARIS_CLIENT)
        found = re.search(r"(?m)^database: .*, built (\d+)\)$", text)
        self.assertIsNotNone(found, text)
        self.assertGreater(int(found.group(1)), 0)
        return int(found.group(1))

    def test_answer_durations_count_every_answer(self):
        srv = self.srv
        before = scrape(srv)
        for _ in range(5):
            self.assertEqual(ask(srv, "www.example.com", None, "A").status, "NOERROR")
        for _ in range(3):
            self.assertEqual(ask(srv, "www.example.com", None, "AAAA", "+tcp").status, "NOERROR")
        name = "steerdns_answer_duration_seconds"

        def counted(m):
            return (m.value(name + "_count", transport="udp")
                    - before.value(name + "_count", transport="udp"),
                    m.value(name + "_count", transport="tcp")
                    - before.value(name + "_count", transport="tcp"))
        after = wait_metrics(srv, lambda m: counted(m) >= (5, 3), "5 udp and 3 tcp answers timed")
        self.assertEqual(counted(after), (5, 3), after.text)
        for transport, sent in (("udp", 5), ("tcp", 3)):
            buckets, total, count = histogram(after, name, transport=transport)
            self.assertEqual(sorted(buckets), [1e-05, 2.5e-05, 5e-05, 1e-04, 2.5e-04, 5e-04, 0.001,
                                               0.0025, 0.005, 0.01, 0.05, float("inf")])
            values = [buckets[le] for le in sorted(buckets)]
            self.assertEqual(values, sorted(values), "buckets are cumulative")
            self.assertEqual(buckets[float("inf")], count)
            self.assertGreater(total, before.value(name + "_sum", transport=transport))
            # and the queries counted are the same answers
            qtype = "A" if transport == "udp" else "AAAA"
            self.assertEqual(after.value("steerdns_queries_total", transport=transport, qtype=qtype,
                                         rcode="NOERROR")
                             - before.value("steerdns_queries_total", transport=transport,
                                            qtype=qtype, rcode="NOERROR"), sent)

    def test_stopped_backend_transitions_and_leaves_the_answers(self):
        srv = self.srv
        self.addCleanup(self.all_healthy)
        m0 = scrape(srv)
        vip = "127.1.0.1"
        self.assertEqual(self.served(m0, ARTIFACTS, "paris", vip), 1)
        # zero from the start for a VIP without a check, too
        self.assertEqual(m0.value("steerdns_vip_transitions_total", vip=vip, check="none", to="down"),
                         0)

        self.backends[vip].stop()
        m1 = wait_metrics(srv, lambda m: self.served(m, ARTIFACTS, "paris", vip) == 0,
                          "vip_served %s = 0" % vip)
        self.assertEqual(self.transitions(m1, vip, "down"), self.transitions(m0, vip, "down") + 1)
        self.assertEqual(self.transitions(m1, vip, "up"), self.transitions(m0, vip, "up"))
        self.assertEqual(m1.value("steerdns_vip_up", name=ARTIFACTS, region="paris", vip=vip,
                                  check="http"), 0)
        self.assertEqual(vip_entry(status_doc(srv), NAME, vip)["served"], False)
        # the other paris VIP still serves; steady's (unchecked) VIP is untouched
        self.assertEqual(self.served(m1, ARTIFACTS, "paris", "127.1.0.2"), 1)
        self.assertEqual(self.served(m1, STEADY_FQDN, "paris", vip), 1)
        self.assertEqual(m1.value("steerdns_region_up", name=ARTIFACTS, region="paris"), 1)
        self.assertEqual(m1.value("steerdns_all_down", name=ARTIFACTS), 0)
        self.answer(NAME, PARIS_CLIENT, ["127.1.0.2"])

        self.backends[vip].start()
        m2 = wait_metrics(srv, lambda m: self.served(m, ARTIFACTS, "paris", vip) == 1,
                          "vip_served %s = 1 again" % vip)
        self.assertEqual(self.transitions(m2, vip, "up"), self.transitions(m0, vip, "up") + 1)
        self.assertEqual(self.transitions(m2, vip, "down"), self.transitions(m1, vip, "down"))

    def test_drain_told_from_failure_and_all_down_now(self):
        srv = self.srv
        self.addCleanup(self.all_healthy)
        self.addCleanup(self.clear_overrides)

        # A drain: region_up 0 with an override down; its VIPs are probed up but not served.
        self.assertEqual(drain(srv, "regions", "paris").status, 200)
        m = scrape(srv)
        self.assertEqual(m.value("steerdns_override", kind="region", target="paris", state="down"), 1)
        for name in (ARTIFACTS, STEADY_FQDN):
            self.assertEqual(m.value("steerdns_region_up", name=name, region="paris"), 0)
            self.assertEqual(m.value("steerdns_all_down", name=name), 0)
            for vip in PARIS:
                self.assertEqual(self.served(m, name, "paris", vip), 0, (name, vip))
        for vip in PARIS:
            self.assertEqual(m.value("steerdns_vip_up", name=ARTIFACTS, region="paris", vip=vip,
                                     check="http"), 1)
            self.assertEqual(vip_entry(status_doc(srv), NAME, vip)["served"], False)
        self.answer(NAME, PARIS_CLIENT, VIRGINIA)

        # Every region drained: all down now, for both names; clear at once when one comes back.
        for region in ("virginia", "singapore"):
            self.assertEqual(drain(srv, "regions", region).status, 200)
        m = scrape(srv)
        for name in (ARTIFACTS, STEADY_FQDN):
            self.assertEqual(m.value("steerdns_all_down", name=name), 1, name)
        self.assertEqual(undrain(srv, "regions", "singapore").status, 200)
        m = scrape(srv)
        for name in (ARTIFACTS, STEADY_FQDN):
            self.assertEqual(m.value("steerdns_all_down", name=name), 0, name)
        self.clear_overrides()

        # A failure: region_up 0 and no override; all down once every region fails.
        for vip in PARIS:
            self.backends[vip].stop()
        m = wait_metrics(srv, lambda m: m.value("steerdns_region_up", name=ARTIFACTS,
                                                region="paris") == 0, "paris failed")
        self.assertEqual(m.series("steerdns_override"), {})
        self.assertEqual(m.value("steerdns_all_down", name=ARTIFACTS), 0)
        for b in self.backends:
            b.stop()
        m = wait_metrics(srv, lambda m: m.value("steerdns_all_down", name=ARTIFACTS) == 1,
                         "all_down %s = 1" % NAME)
        self.assertEqual(m.value("steerdns_all_down", name=STEADY_FQDN), 0)  # no checks
        for region in REGIONS:
            self.assertEqual(m.value("steerdns_region_up", name=ARTIFACTS, region=region), 0)
        self.answer(NAME, PARIS_CLIENT, PARIS, ttl=th.DEGRADED_TTL)  # serve-nearest
        for vip in VIRGINIA:
            self.backends[vip].start()
        wait_metrics(srv, lambda m: m.value("steerdns_all_down", name=ARTIFACTS) == 0,
                     "all_down %s = 0 with virginia back" % NAME)
        self.answer(NAME, PARIS_CLIENT, VIRGINIA)


# ---------------------------------------------------------------------------
# a quiet start: no answer yet, a GeoIP database named in the config


class QuietStart(h.ServerTestCase):

    @classmethod
    def make_server(cls):
        config = ADMIN_CONFIG + STATE_CONFIG + "geoip:\n  database: %s\n" % TEST_MMDB
        return h.Server({"example.com.yaml": EXAMPLE_ZONE}, extra_config=config)

    def test_series_an_alert_needs_are_there_before_any_answer(self):
        text = curl_metrics(self.srv)
        rc, said = promtool_problems(text)
        self.assertEqual((rc, said), (0, ""), text)
        m = Metrics(text)
        # the readiness probe was a SOA query: no A or AAAA answered yet
        for transport in ("udp", "tcp"):
            for qtype in ("A", "AAAA"):
                self.assertEqual(m.value("steerdns_queries_total", transport=transport, qtype=qtype,
                                         rcode="NOERROR"), 0, (transport, qtype))
            # the readiness probes' answers, timed as they were counted
            self.assertEqual(m.value("steerdns_answer_duration_seconds_count", transport=transport),
                             m.value("steerdns_queries_total", 0, transport=transport, qtype="SOA",
                                     rcode="NOERROR"))
        self.assertGreater(m.value("steerdns_answer_duration_seconds_count", transport="udp"), 0)
        self.assertEqual(m.value("steerdns_all_down", name="artifacts.example.com."), 0)
        # the database named by geoip.database: source "file", as explain dates it
        explained = re.search(r"(?m)^database: +%s .*, built (\d+)\)$" % re.escape(TEST_MMDB),
                              explain_text(self.srv, "artifacts.example.com", PARIS_CLIENT))
        self.assertIsNotNone(explained)
        self.assertEqual(m.series("steerdns_geoip_build_timestamp_seconds"),
                         {frozenset({("source", "file")}): float(explained.group(1))})
        self.assertGreater(float(explained.group(1)), 0)


if __name__ == "__main__":
    unittest.main()
