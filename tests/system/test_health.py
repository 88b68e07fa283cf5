#!/usr/bin/env python3
"""Health checks (issue #4): a background prober pulls failed VIPs out of geo
answers, fails over to the next region, applies the all-down policy, checks
JFrog states, status codes and bodies, times out hanging backends without
stalling DNS, finishes its first round before the first answer, merges check
layers (geo name < region < VIP) and region thresholds; `steerdns check`
refuses bad health keys with file:line.  (HTTPS: test_health_https.py; the
state file, restarts and SIGHUP: test_health_state.py.)

Real HTTP backends (tests/system/backends.py) listen on the VIP addresses
(127.1.0.x paris, 127.2.0.x virginia, 127.3.0.x singapore), one port per test
class; the test stops them, switches them to 503 / unhealthy JSON / hanging,
and watches `dig +subnet=...` follow.  Probes run every second (timeout
500 ms, rise 2, fall 2, no jitter); every wait polls with one generous
deadline (common.DEADLINE) and never sleeps a fixed time; how soon a
transition shows is not asserted.
"""

import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import backends as bk  # noqa: E402
import harness as h  # noqa: E402
from healthcase import (ALL_VIPS, DEGRADED_TTL, FALL, NAME, PARIS, PARIS_CLIENT,  # noqa: E402
                        RISE, SINGAPORE, SINGAPORE_CLIENT, TTL, VIRGINIA, VIRGINIA_CLIENT,
                        HealthCase, ask, check, default_regions, geo_name, state_of, vip_lines,
                        wait_answer, wait_log, zone_text)


# ---------------------------------------------------------------------------
# 1, 2: a VIP leaves and returns; a region fails over


class VipAndRegionFailover(HealthCase):
    """HTTP checks of the JFrog health path with a custom header."""

    @classmethod
    def make_zone(cls):
        return zone_text({"artifacts": geo_name(
            check(cls.port, headers={"X-Probe": "steerdns"}, jfrog=True))})

    def setUp(self):
        self.addCleanup(self.restore)
        wait_answer(self.srv, NAME, PARIS_CLIENT, PARIS, ttl=TTL,
                    what="the healthy baseline (both paris VIPs, ttl 30)")

    def restore(self):
        for b in self.backends:
            b.set_mode("healthy")
            b.start()

    def test_probe_requests(self):
        for vip in ALL_VIPS:
            b = self.backends[vip]
            reqs = h.wait_for(lambda: b.requests(), what="a probe of %s" % vip)
            r = reqs[-1]
            self.assertEqual(r["method"], "GET", r)
            self.assertEqual(r["path"], bk.JFROG_PATH, r)
            self.assertEqual(r["headers"].get("x-probe"), "steerdns", r)
        self.answer(NAME, VIRGINIA_CLIENT, VIRGINIA, ttl=TTL)
        self.answer(NAME, SINGAPORE_CLIENT, SINGAPORE, ttl=TTL)

    def test_vip_leaves_and_returns(self):
        mark = len(self.srv.log())
        b = self.backends["127.1.0.1"]
        b.stop()
        # The other paris VIP keeps answering, with the degraded TTL.
        wait_answer(self.srv, NAME, PARIS_CLIENT, ["127.1.0.2"], ttl=DEGRADED_TTL)
        self.answer(NAME, VIRGINIA_CLIENT, VIRGINIA, ttl=TTL)
        wait_log(self.srv, "127.1.0.1", "down", "refused", since=mark)

        restarted = time.monotonic()
        b.start()
        wait_answer(self.srv, NAME, PARIS_CLIENT, PARIS, ttl=TTL)
        self.assertGreaterEqual(b.count(since=restarted), RISE,
                                "127.1.0.1 came back before %d successful probes" % RISE)
        wait_log(self.srv, "127.1.0.1", "up", since=mark)
        lines = vip_lines(self.srv.log()[mark:], "127.1.0.1")
        self.assertEqual([state_of(ln) for ln in lines], ["down", "up"],
                         "each transition is logged once:\n" + "\n".join(lines))

    def test_region_fails_over(self):
        self.backends["127.1.0.1"].stop()
        self.backends["127.1.0.2"].set_mode("unhealthy")
        wait_answer(self.srv, NAME, PARIS_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)
        # virginia's own clients get a normal answer
        self.answer(NAME, VIRGINIA_CLIENT, VIRGINIA, ttl=TTL)
        self.restore()
        wait_answer(self.srv, NAME, PARIS_CLIENT, PARIS, ttl=TTL)


# ---------------------------------------------------------------------------
# 3: all-down policies


class AllDownPolicies(HealthCase):
    """No backend anywhere: every check fails (connection refused)."""

    @classmethod
    def make_backends(cls):
        return []

    @classmethod
    def make_zone(cls):
        c = check(cls.port)
        return zone_text({
            "artifacts": geo_name(c, all_down="serve-nearest"),
            "dflt": geo_name(c),
            "nd": geo_name(c, all_down="nodata"),
            "sf": geo_name(c, all_down="servfail"),
            "fb": geo_name(c, all_down={"fallback": "singapore"}, degraded_ttl=10),
        })

    def test_serve_nearest(self):
        wait_answer(self.srv, NAME, PARIS_CLIENT, PARIS, ttl=DEGRADED_TTL)
        self.answer(NAME, VIRGINIA_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)

    def test_default_policy_is_serve_nearest(self):
        # DESIGN.md: by default answer as if all were healthy, nearest first.
        wait_answer(self.srv, "dflt.example.com", PARIS_CLIENT, PARIS, ttl=DEGRADED_TTL)

    def test_nodata(self):
        r = wait_answer(self.srv, "nd.example.com", PARIS_CLIENT, [])
        self.assertEqual(r.answer, [], r.stdout)
        self.assertEqual(r.types("authority"), ["SOA"], r.stdout)
        self.assertIn("aa", r.flags, r.stdout)

    def test_servfail(self):
        wait_answer(self.srv, "sf.example.com", PARIS_CLIENT, [], status="SERVFAIL")
        wait_answer(self.srv, "sf.example.com", VIRGINIA_CLIENT, [], status="SERVFAIL")

    def test_fallback(self):
        wait_answer(self.srv, "fb.example.com", PARIS_CLIENT, SINGAPORE, ttl=10)
        self.answer("fb.example.com", VIRGINIA_CLIENT, SINGAPORE, ttl=10)

    def test_static_names_unaffected(self):
        r = ask(self.srv, "www.example.com", PARIS_CLIENT)
        self.assertEqual(r.status, "NOERROR", r.stdout)
        self.assertEqual(r.rdatas("A"), ["127.0.0.10"], r.stdout)


# ---------------------------------------------------------------------------
# 4: JFrog states, status codes, body


class JFrogStatusAndBody(HealthCase):
    """`artifacts` parses the JFrog JSON; `codes` only checks status codes and a body
    substring, on the same backends."""

    @classmethod
    def make_zone(cls):
        return zone_text({
            "artifacts": geo_name(check(cls.port, jfrog=True)),
            "codes": geo_name(check(cls.port, expect=[200, "300-399"], body="HEALTHY")),
        })

    def test_states_codes_and_body(self):
        srv = self.srv
        wait_answer(srv, NAME, PARIS_CLIENT, PARIS, ttl=TTL)
        wait_answer(srv, "codes.example.com", SINGAPORE_CLIENT, SINGAPORE, ttl=TTL)
        mark = len(srv.log())
        switched = time.monotonic()
        self.backends["127.1.0.1"].set_mode("unhealthy")          # 503 + UNHEALTHY JSON
        self.backends["127.2.0.1"].set_mode("service_unhealthy")  # 200, a service UNHEALTHY
        self.backends["127.3.0.1"].set_mode("redirect")           # 302, body has HEALTHY
        self.backends["127.3.0.2"].set_mode("text")               # 200, "all good"

        wait_answer(srv, NAME, PARIS_CLIENT, ["127.1.0.2"], ttl=DEGRADED_TTL)
        self.assertGreaterEqual(self.backends["127.1.0.1"].count(switched, "unhealthy"), FALL,
                                "127.1.0.1 left before %d failed probes" % FALL)
        wait_answer(srv, "codes.example.com", PARIS_CLIENT, ["127.1.0.2"], ttl=DEGRADED_TTL)
        wait_log(srv, "127.1.0.1", "down", "status 503", since=mark)

        # HTTP 200 with a service UNHEALTHY: down for the JFrog check only.
        wait_answer(srv, NAME, VIRGINIA_CLIENT, ["127.2.0.2"], ttl=DEGRADED_TTL)
        wait_log(srv, "127.2.0.1", "down", "jfrog", since=mark)
        self.answer("codes.example.com", VIRGINIA_CLIENT, VIRGINIA, ttl=TTL)

        # 302 is in "300-399" (and its body has HEALTHY); "all good" misses the body.
        wait_answer(srv, "codes.example.com", SINGAPORE_CLIENT, ["127.3.0.1"],
                    ttl=DEGRADED_TTL)
        wait_log(srv, "127.3.0.2", "down", "body_mismatch", since=mark)
        # For the JFrog check (default expect [200]) all of singapore is down: a
        # singapore client fails over to whichever region comes next for it.
        wait_answer(srv, NAME, SINGAPORE_CLIENT,
                    lambda got: got in (["127.1.0.2"], ["127.2.0.2"]), ttl=DEGRADED_TTL)


# ---------------------------------------------------------------------------
# 6: a hanging backend times out without stalling anything


class HungBackend(HealthCase):

    @classmethod
    def make_zone(cls):
        return zone_text({"artifacts": geo_name(check(cls.port))})

    def test_hang_times_out_and_nothing_stalls(self):
        srv = self.srv
        wait_answer(srv, NAME, PARIS_CLIENT, PARIS, ttl=TTL)
        mark = len(srv.log())
        for vip in ("127.1.0.1", "127.3.0.1", "127.3.0.2"):
            self.backends[vip].set_mode("hang")
        self.backends["127.2.0.1"].stop()

        lost = []

        def must_answer(r):
            if r.status is None:
                lost.append(r.stdout + r.stderr)

        # (How soon is not asserted: that every dig is answered meanwhile is.)
        wait_answer(srv, NAME, VIRGINIA_CLIENT, ["127.2.0.2"], ttl=DEGRADED_TTL, time_=1,
                    on_poll=must_answer, what="refused 127.2.0.1 to leave while three VIPs hang")
        wait_answer(srv, NAME, PARIS_CLIENT, ["127.1.0.2"], ttl=DEGRADED_TTL, time_=1,
                    on_poll=must_answer)
        wait_log(srv, "127.1.0.1", "down", "timeout", since=mark)
        self.assertEqual(lost, [], "dig +time=1 went unanswered while backends hung")
        hung = self.backends["127.1.0.1"].count(mode="hang")
        self.assertGreaterEqual(hung, FALL, "the hung backend was probed")


# ---------------------------------------------------------------------------
# 7: the first probe round completes before the first answer


class FirstRound(HealthCase):
    """127.1.0.1 has no backend and 127.3.0.1 hangs from the start.  fall: 3, so
    a prober that started "up" could not have marked them down yet."""

    @classmethod
    def make_backends(cls):
        return [bk.Backends(ALL_VIPS, cls.port, modes={"127.3.0.1": "hang"},
                            running={"127.1.0.1": False})]

    @classmethod
    def make_zone(cls):
        return zone_text({"artifacts": geo_name(check(cls.port, fall=3))})

    def test_first_answer_is_health_aware(self):
        # No waiting: the harness saw the SOA answered, this is the next query.
        self.answer(NAME, PARIS_CLIENT, ["127.1.0.2"], ttl=DEGRADED_TTL)
        self.answer(NAME, SINGAPORE_CLIENT, ["127.3.0.2"], ttl=DEGRADED_TTL)
        self.answer(NAME, VIRGINIA_CLIENT, VIRGINIA, ttl=TTL)


# ---------------------------------------------------------------------------
# check layers (geo name < region < VIP) and region thresholds


class CheckLayersAndThreshold(HealthCase):
    """paris: threshold 2 with only 127.1.0.1 healthy -> down.
    virginia: 127.2.0.2's VIP layer moves its check to port2 (the geo layer's
    path and header must still apply); nothing listens on port for it.
    singapore: the region layer changes the path to /nope (404)."""

    @classmethod
    def make_backends(cls):
        main = bk.Backends(ALL_VIPS, cls.port,
                           running={"127.1.0.2": False, "127.2.0.2": False})
        vip_layer = bk.Backends(["127.2.0.2"], cls.port2)
        return [main, vip_layer]

    @classmethod
    def make_zone(cls):
        regions = default_regions()
        regions["paris"]["threshold"] = 2
        regions["virginia"]["vips"] = ["127.2.0.1",
                                       {"address": "127.2.0.2", "check": {"port": cls.port2}}]
        regions["singapore"]["check"] = {"path": "/nope"}
        return zone_text({"artifacts": geo_name(
            check(cls.port, headers={"X-Probe": "steerdns"}, jfrog=True))}, regions)

    def test_threshold(self):
        wait_answer(self.srv, NAME, PARIS_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)

    def test_vip_layer_merges_key_by_key(self):
        wait_answer(self.srv, NAME, VIRGINIA_CLIENT, VIRGINIA, ttl=TTL)
        b = self.groups[1]["127.2.0.2"]
        reqs = h.wait_for(lambda: b.requests(), what="a probe on port2")
        self.assertEqual(reqs[-1]["path"], bk.JFROG_PATH)
        self.assertEqual(reqs[-1]["headers"].get("x-probe"), "steerdns")

    def test_region_layer(self):
        # singapore is down (404), paris is down (threshold): virginia.
        wait_answer(self.srv, NAME, SINGAPORE_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)
        b = self.backends["127.3.0.1"]
        reqs = h.wait_for(lambda: b.requests(), what="a probe of 127.3.0.1")
        self.assertEqual({r["path"] for r in reqs}, {"/nope"})


# ---------------------------------------------------------------------------
# configuration errors are refused with file:line


class CheckValidation(unittest.TestCase):
    """`steerdns check` on zones with bad health keys (no server, no probes)."""

    def check_zone(self, text):
        with tempfile.TemporaryDirectory(prefix="steerdns-hcheck-") as d:
            with open(os.path.join(d, "example.com.yaml"), "w") as f:
                f.write(text)
            with open(os.path.join(d, "steerdns.yaml"), "w") as f:
                f.write('server:\n  listen: ["127.0.0.1:53"]\nzones: [example.com.yaml]\n'
                        "health:\n  state_file: overrides.yaml\n")
            p = subprocess.run([h.BIN, "check", "-c", os.path.join(d, "steerdns.yaml")],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=30, cwd=d)
            return p.returncode, p.stdout + p.stderr

    def test_full_example_is_valid(self):
        regions = default_regions()
        regions["paris"]["vips"] = ["127.1.0.1", {"address": "127.1.0.2",
                                                  "check": {"port": 8083}}]
        regions["paris"]["threshold"] = 1
        regions["virginia"]["check"] = {"path": "/other"}
        rc, out = self.check_zone(zone_text({
            "artifacts": geo_name({
                "type": "https", "port": 8443, "path": bk.JFROG_PATH,
                "service": "artifacts.example.com", "headers": {"X-Probe": "steerdns"},
                "expect": [200, "300-399"], "body": "OK", "jfrog": True, "interval": "2s",
                "timeout": "1s", "rise": 2, "fall": 3, "jitter": "0ms",
                "ca": "/etc/ssl/certs/ca-certificates.crt", "insecure": False},
                degraded_ttl=15, all_down="serve-nearest"),
            "plain": geo_name({"type": "http"}, all_down="nodata"),
            # (not virginia: its region layer's `path` would not fit a tcp check)
            "tcp": geo_name({"type": "tcp", "port": 22}, regions=["paris", "singapore"],
                            all_down="servfail"),
            "fb": geo_name({"type": "http", "port": 8082}, all_down={"fallback": "singapore"}),
        }, regions))
        self.assertEqual(rc, 0, out)

    def test_errors(self):
        cases = {
            "interval below 1s": ({"check": check(80, interval="500ms")}, "interval"),
            "timeout above interval": ({"check": check(80, interval="2s", timeout="3s")},
                                       "timeout"),
            "tcp without port": ({"check": {"type": "tcp"}}, "port"),
            "unknown type": ({"check": check(80, type="ftp")}, "ftp"),
            "bad expect": ({"check": check(80, expect=["abc"])}, "abc"),
            "unknown check key": ({"check": check(80, bogus=1)}, "bogus"),
            "unknown policy": ({"all_down": "bogus"}, "bogus"),
            "fallback to a region not listed": ({"all_down": {"fallback": "mars"}}, "mars"),
        }
        for what, (keys, needle) in cases.items():
            with self.subTest(what):
                g = geo_name(check(80))
                g.update(keys)
                rc, out = self.check_zone(zone_text({"artifacts": g}))
                self.assertNotEqual(rc, 0, out)
                self.assertRegex(out, r"example\.com\.yaml:\d+:", out)
                self.assertIn(needle, out)


if __name__ == "__main__":
    unittest.main()
