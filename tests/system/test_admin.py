#!/usr/bin/env python3
"""The admin API's observability: Prometheus metrics that move with real
queries and real health changes, and /status and /explain (and `steerdns
ctl explain`) in content as health and operator overrides change.  (Drains:
test_admin_drains.py; reloads: test_admin_reloads.py; the token:
test_admin_token.py.)

Real HTTP backends (tests/system/backends.py) listen on the VIPs (127.1.0.x
paris, 127.2.0.x virginia, 127.3.0.x singapore); the admin API listens on
127.0.0.1:{admin_port}; HTTP goes through urllib with proxies switched off.
Checks run every second with fall 1 / rise 1; every wait polls with one
generous deadline (common.DEADLINE), nothing sleeps, and how soon a change
shows is not asserted.
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import backends as bk  # noqa: E402
import healthcase as th  # noqa: E402
from adminapi import (DEGRADED_TTL, NAME, PARIS, PARIS_CLIENT, SINGAPORE, STEADY,  # noqa: E402
                      TTL, VIRGINIA, VIRGINIA_CLIENT, AdminCase, ask, ctl, drain, explain_text,
                      geo_entry, get, parse_time, region_entry, scrape, status_doc, vip_entry,
                      wait_metrics)


# ---------------------------------------------------------------------------
# 1, 2, 4: metrics follow queries and health; /status and /explain


class Observability(AdminCase):

    def test_query_counters_move_by_the_queries_sent(self):
        srv = self.srv
        before = scrape(srv)
        sent = {}

        def expect(transport, qtype, rcode):
            key = frozenset({"transport": transport, "qtype": qtype, "rcode": rcode}.items())
            sent[key] = sent.get(key, 0) + 1

        for _ in range(3):
            self.answer(STEADY, PARIS_CLIENT, PARIS, ttl=TTL)
            expect("udp", "A", "NOERROR")
        for _ in range(2):
            r = ask(srv, "www.example.com", None, "AAAA")
            self.assertEqual((r.status, r.rdatas("AAAA")), ("NOERROR", ["2001:db8::10"]), r.stdout)
            expect("udp", "AAAA", "NOERROR")
        for _ in range(2):
            r = ask(srv, "nosuch.example.com", None, "A")
            self.assertEqual(r.status, "NXDOMAIN", r.stdout)
            expect("udp", "A", "NXDOMAIN")
        r = ask(srv, "www.example.com", None, "A", "+tcp")
        self.assertEqual((r.status, r.rdatas("A")), ("NOERROR", ["127.0.0.10"]), r.stdout)
        expect("tcp", "A", "NOERROR")
        r = ask(srv, "www.example.com", None, "TXT")
        self.assertEqual((r.status, r.answer), ("NOERROR", []), r.stdout)
        expect("udp", "TXT", "NOERROR")
        r = ask(srv, "www.example.com", None, "HINFO")       # a type without a label of its own
        self.assertEqual((r.status, r.answer), ("NOERROR", []), r.stdout)
        expect("udp", "other", "NOERROR")
        r = ask(srv, "www.example.org", None, "A")           # not our zone
        self.assertEqual(r.status, "REFUSED", r.stdout)
        expect("udp", "A", "REFUSED")

        after = scrape(srv)
        b, a = before.series("steerdns_queries_total"), after.series("steerdns_queries_total")
        for labels in set(a) | set(b) | set(sent):
            self.assertEqual(a.get(labels, 0) - b.get(labels, 0), sent.get(labels, 0),
                             "steerdns_queries_total%r\nbefore:\n%s\nafter:\n%s"
                             % (dict(labels), before.text, after.text))
        self.assertEqual(sum(a.values()) - sum(b.values()), 11)

        # geo answers: the three steady answers from paris, nothing else
        for name in ("steady.example.com.", "artifacts.example.com."):
            for region in ("paris", "virginia", "singapore", "none"):
                want = 3 if (name, region) == ("steady.example.com.", "paris") else 0
                self.assertEqual(
                    after.value("steerdns_geo_answers_total", name=name, region=region)
                    - before.value("steerdns_geo_answers_total", name=name, region=region),
                    want, "%s %s" % (name, region))
            self.assertEqual(after.value("steerdns_geo_degraded_answers_total", name=name),
                             before.value("steerdns_geo_degraded_answers_total", name=name))
            self.assertEqual(
                after.value("steerdns_all_down_total", name=name, policy="serve-nearest"),
                before.value("steerdns_all_down_total", name=name, policy="serve-nearest"))

    def test_health_changes_show_in_metrics(self):
        srv = self.srv
        self.addCleanup(self.all_healthy)
        m0 = scrape(srv)
        fqdn = NAME + "."

        def geo(m, region):
            return m.value("steerdns_geo_answers_total", name=fqdn, region=region)

        def vip_up(m, vip):
            found = [v for labels, v in m.series("steerdns_vip_up").items()
                     if dict(labels)["vip"] == vip and dict(labels)["name"] == fqdn]
            self.assertEqual(len(found), 1, m.text)
            return found[0]

        # every VIP carries its region and its check's type in its labels
        self.assertEqual(m0.value("steerdns_vip_up", name=fqdn, region="paris", vip="127.1.0.1",
                                  check="http"), 1)

        # One VIP down: vip_up 0, a refused failure counted, more probes timed.
        self.backends["127.1.0.1"].stop()
        m1 = wait_metrics(srv, lambda m: vip_up(m, "127.1.0.1") == 0, "vip_up 127.1.0.1 = 0")
        self.assertGreater(m1.value("steerdns_probe_failures_total", reason="refused"),
                           m0.value("steerdns_probe_failures_total", reason="refused"))
        self.assertGreater(m1.value("steerdns_probe_duration_seconds_count", type="http"),
                           m0.value("steerdns_probe_duration_seconds_count", type="http"))
        self.assertEqual(m1.value("steerdns_probe_duration_seconds_bucket", type="http", le="+Inf"),
                         m1.value("steerdns_probe_duration_seconds_count", type="http"))
        self.assertGreater(m1.value("steerdns_probe_duration_seconds_sum", type="http"), 0)
        self.assertEqual(m1.value("steerdns_probe_duration_seconds_count", type="https"), 0)
        self.assertEqual(vip_up(m1, "127.1.0.2"), 1)
        self.assertEqual(m1.value("steerdns_region_up", name=fqdn, region="paris"), 1)

        # still paris, one VIP, degraded
        self.answer(NAME, PARIS_CLIENT, ["127.1.0.2"], ttl=DEGRADED_TTL)
        m2 = scrape(srv)
        self.assertEqual(geo(m2, "paris") - geo(m1, "paris"), 1)
        self.assertEqual(m2.value("steerdns_geo_degraded_answers_total", name=fqdn)
                         - m1.value("steerdns_geo_degraded_answers_total", name=fqdn), 1)

        # the whole region down: region_up 0, three failover answers from virginia
        self.backends["127.1.0.2"].stop()
        m3 = wait_metrics(srv, lambda m: m.value("steerdns_region_up", name=fqdn,
                                                 region="paris") == 0, "region_up paris = 0")
        self.assertEqual(vip_up(m3, "127.1.0.2"), 0)
        self.assertEqual(m3.value("steerdns_region_up", name=fqdn, region="virginia"), 1)
        for _ in range(3):
            self.answer(NAME, PARIS_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)
        m4 = scrape(srv)
        self.assertEqual(geo(m4, "virginia") - geo(m3, "virginia"), 3)
        self.assertEqual(geo(m4, "paris") - geo(m3, "paris"), 0)
        self.assertEqual(m4.value("steerdns_geo_degraded_answers_total", name=fqdn)
                         - m3.value("steerdns_geo_degraded_answers_total", name=fqdn), 3)
        self.assertEqual(m4.value("steerdns_all_down_total", name=fqdn, policy="serve-nearest"),
                         m3.value("steerdns_all_down_total", name=fqdn, policy="serve-nearest"))
        # the static name is not a geo answer
        self.assertEqual(ask(srv, "www.example.com").rdatas("A"), ["127.0.0.10"])

        # everything down: the all-down policy (serve-nearest) answers with paris
        for b in self.backends:
            b.stop()
        m5 = wait_metrics(srv, lambda m: all(
            m.value("steerdns_region_up", name=fqdn, region=r) == 0
            for r in ("paris", "virginia", "singapore")), "every region down")
        self.answer(NAME, PARIS_CLIENT, PARIS, ttl=DEGRADED_TTL)
        m6 = scrape(srv)
        self.assertEqual(geo(m6, "paris") - geo(m5, "paris"), 1)
        self.assertEqual(m6.value("steerdns_all_down_total", name=fqdn, policy="serve-nearest")
                         - m5.value("steerdns_all_down_total", name=fqdn, policy="serve-nearest"),
                         1)
        self.assertEqual(m6.value("steerdns_geo_degraded_answers_total", name=fqdn)
                         - m5.value("steerdns_geo_degraded_answers_total", name=fqdn), 1)
        # steady has no check: untouched by all this
        self.assertEqual(m6.value("steerdns_region_up", name="steady.example.com.",
                                  region="paris"), 1)
        self.answer(STEADY, PARIS_CLIENT, PARIS, ttl=TTL)

    def test_status_and_explain_follow_health(self):
        srv = self.srv
        self.addCleanup(self.all_healthy)
        self.addCleanup(self.clear_overrides)
        port = self.port
        stopped = time.time()
        for vip in PARIS:
            self.backends[vip].stop()
        th.wait_answer(srv, NAME, PARIS_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)

        doc = status_doc(srv)
        metrics = scrape(srv)
        build = [dict(k) for k in metrics.series("steerdns_build_info")]
        self.assertEqual(len(build), 1, metrics.text)
        self.assertEqual(doc["version"], build[0]["version"])
        self.assertLessEqual(parse_time(doc["started"]), stopped + 1)
        self.assertEqual(doc["world"]["zones"], 1)
        self.assertEqual(doc["world"]["records"], metrics.value("steerdns_records"))
        self.assertEqual(doc["world"]["generation"], metrics.value("steerdns_world_generation"))
        self.assertEqual(doc["overrides"], {"regions": {}, "vips": {}})

        g = geo_entry(doc, NAME)
        self.assertEqual((g["ttl"], g["degraded_ttl"], g["all_down"]),
                         (TTL, DEGRADED_TTL, "serve-nearest"))
        self.assertEqual([r["name"] for r in g["regions"]], ["paris", "virginia", "singapore"])
        paris = region_entry(doc, NAME, "paris")
        self.assertEqual({k: paris[k] for k in ("state", "override", "threshold", "vips_up",
                                                "vips_total")},
                         {"state": "down", "override": None, "threshold": 1, "vips_up": 0,
                          "vips_total": 2})
        for vip in PARIS:
            v = vip_entry(doc, NAME, vip)
            self.assertEqual((v["state"], v["served"], v["override"], v["reason"]),
                             ("down", False, None, "refused"), v)
            self.assertEqual(v["check"], "http://%s:%d%s" % (vip, port, bk.JFROG_PATH))
            self.assertTrue(v["detail"], v)
            self.assertGreaterEqual(parse_time(v["since"]), int(stopped) - 1, v)
            self.assertLessEqual(parse_time(v["since"]), time.time() + 1, v)
        virginia = region_entry(doc, NAME, "virginia")
        self.assertEqual((virginia["state"], virginia["vips_up"]), ("up", 2))
        for vip in VIRGINIA:
            v = vip_entry(doc, NAME, vip)
            # (reason, detail: the last failure, if any, from an earlier test)
            self.assertEqual((v["state"], v["served"], v["override"]), ("up", True, None), v)
            self.assertIsNotNone(v["since"])
        # no check: "unchecked", served, no check described
        steady_vip = vip_entry(doc, STEADY, "127.1.0.1")
        self.assertEqual((steady_vip["state"], steady_vip["served"], steady_vip["check"]),
                         ("unchecked", True, None), steady_vip)
        self.assertEqual(region_entry(doc, STEADY, "paris")["state"], "up")

        # explain: the health of each region, the failover region, the records
        text = explain_text(srv, NAME, PARIS_CLIENT)
        self.assertRegex(text, r"(?m)^preference: +paris \(\d+ km\), virginia \(\d+ km\), "
                               r"singapore \(\d+ km\)$")
        self.assertRegex(text, r"(?m)^health: +paris: down, 0 of 2 VIPs up "
                               r"\[127\.1\.0\.1 down: refused \([^)]+\); "
                               r"127\.1\.0\.2 down: refused \([^)]+\)\]$")
        self.assertRegex(text, r"(?m)^ +virginia: up, 2 of 2 VIPs up$")
        self.assertRegex(text, r"(?m)^ +singapore: up, 2 of 2 VIPs up$")
        self.assertRegex(text, r"(?m)^region: +virginia \(failover: .*degraded TTL 15\)$")
        self.assertEqual(self.answer_lines(text),
                         ["artifacts.example.com.\t15\tIN\tA\t127.2.0.1",
                          "artifacts.example.com.\t15\tIN\tA\t127.2.0.2",
                          "AAAA: NODATA"], text)
        # ctl explain prints the same
        rc, out, err = ctl("-c", srv.config_path, "explain", NAME, PARIS_CLIENT)
        self.assertEqual((rc, out), (0, text), err)
        # --json: the same, as an object
        rc, out, err = ctl("-c", srv.config_path, "--json", "explain", NAME, PARIS_CLIENT)
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertTrue(doc["region"].startswith("virginia (failover: "), doc)
        self.assertEqual(doc["answer"], ["artifacts.example.com.\t15\tIN\tA\t127.2.0.1",
                                         "artifacts.example.com.\t15\tIN\tA\t127.2.0.2",
                                         "AAAA: NODATA"], doc)
        self.assertEqual([line.split(":")[0] for line in doc["health"]], ["paris", "virginia", "singapore"])
        self.assertTrue(doc["preference"].startswith("paris ("), doc)
        self.assertEqual(doc["client"], PARIS_CLIENT + " (sent as EDNS Client Subnet)")
        # virginia's own clients: the first on the list, full TTL
        vtext = explain_text(srv, NAME, VIRGINIA_CLIENT)
        self.assertRegex(vtext, r"(?m)^region: +virginia \(the first on the list\)$")
        self.assertIn("artifacts.example.com.\t30\tIN\tA\t127.2.0.1", vtext)

        # an operator drains virginia too: explain says so and moves on to singapore
        self.assertEqual(drain(srv, "regions", "virginia").status, 200)
        text = explain_text(srv, NAME, PARIS_CLIENT)
        self.assertRegex(text, r"(?m)^ +virginia: forced down by an operator, 2 of 2 VIPs up$")
        self.assertRegex(text, r"(?m)^region: +singapore \(failover: ")
        self.assertEqual(self.answer_lines(text),
                         ["artifacts.example.com.\t15\tIN\tA\t127.3.0.1",
                          "artifacts.example.com.\t15\tIN\tA\t127.3.0.2",
                          "AAAA: NODATA"], text)
        self.answer(NAME, PARIS_CLIENT, SINGAPORE, ttl=DEGRADED_TTL)
        virginia = region_entry(status_doc(srv), NAME, "virginia")
        self.assertEqual((virginia["state"], virginia["override"], virginia["vips_up"]),
                         ("down", "down", 2))

        # ... and forces paris up although its VIPs fail their checks
        r = drain(srv, "regions", "paris", "up")
        self.assertEqual((r.status, r.json()["state"]), (200, "up"), r)
        self.answer(NAME, PARIS_CLIENT, PARIS, ttl=DEGRADED_TTL)
        text = explain_text(srv, NAME, PARIS_CLIENT)
        self.assertRegex(text, r"(?m)^health: +paris: forced up by an operator, 0 of 2 VIPs up "
                               r"\[127\.1\.0\.1 down: refused")
        self.assertRegex(text, r"(?m)^region: +paris \(the first on the list")
        doc = status_doc(srv)
        self.assertEqual(doc["overrides"], {"regions": {"paris": "up", "virginia": "down"},
                                            "vips": {}})
        paris = region_entry(doc, NAME, "paris")
        self.assertEqual((paris["state"], paris["override"], paris["vips_up"]), ("up", "up", 0))
        m = scrape(srv)
        self.assertEqual(m.value("steerdns_region_up", name=NAME + ".", region="paris"), 1)
        self.assertEqual(m.value("steerdns_override", kind="region", target="paris", state="up"), 1)

        # bad requests
        for query in ("name=%s&client=not-an-address" % NAME, "name=%s" % NAME,
                      "client=" + PARIS_CLIENT):
            r = get(srv, "/explain?" + query)
            self.assertEqual(r.status, 400, r)

    @staticmethod
    def answer_lines(text):
        out, inside = [], False
        for line in text.splitlines():
            if line.startswith("answer:"):
                inside = True
            elif inside and not line.startswith(" "):
                break
            if inside:
                out.append(line.split(":", 1)[1].strip() if line.startswith("answer:")
                           else line.strip())
        return out



if __name__ == "__main__":
    unittest.main()
