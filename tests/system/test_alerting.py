#!/usr/bin/env python3
"""Alerting and dashboards as files (issue #16), against a real Prometheus
scraping a real steerdns.

steerdns serves a geo name whose VIPs have HTTP checks against real backends
(tests/system/backends.py) on 127.1.0.x paris, 127.2.0.x virginia and
127.3.0.x singapore, with the admin API, a state file and dnstap (to a socket
no reader listens on: the frames are counted all the same). Debian's
Prometheus (tests/system/prometheus.py) scrapes it every second and
evaluates the shipped rules (deploy/prometheus/steerdns.rules.yml) every
second. Before the tests, queries are asked with dig over UDP and TCP and
singapore's backends are stopped, so that failure series exist.

  * the shipped Grafana dashboard (deploy/grafana/steerdns.json) is well
    formed, and every PromQL expression in it, with its template variables
    given concrete values, parses and returns at least one series;
  * the shipped rules load, every rule healthy, with its severity and
    annotations;
  * a drain through `steerdns ctl` makes SteerdnsRegionDrained pending or
    firing and never SteerdnsRegionDown, while singapore, down by its checks,
    is SteerdnsRegionDown. The shipped `for:` durations are kept: pending is
    enough.

What the rules do over time (for:, thresholds, the quiet restart, all-down
ending) is shown by promtool's unit tests, tests/prometheus/*.test.yml.
Every wait polls with one deadline (common.DEADLINE); nothing sleeps a fixed
time and no speed is asserted.
"""

import json
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import adminapi as api  # noqa: E402
import harness as h  # noqa: E402
import healthcase as th  # noqa: E402
from prometheus import JOB, Prometheus  # noqa: E402

RULES = os.path.join(h.SOURCE, "deploy", "prometheus", "steerdns.rules.yml")
DASHBOARD = os.path.join(h.SOURCE, "deploy", "grafana", "steerdns.json")
NAME = api.NAME + "."                # the geo name with checks, as the metrics write it
SEVERITIES = {"page", "ticket", "info"}
# The families the dashboard must show (issue #16).
DASHBOARD_FAMILIES = (
    "steerdns_geo_answers_total", "steerdns_geo_degraded_answers_total", "steerdns_all_down",
    "steerdns_region_up", "steerdns_vip_up", "steerdns_vip_served", "steerdns_vip_transitions_total",
    "steerdns_probe_duration_seconds_bucket", "steerdns_probe_failures_total",
    "steerdns_answer_duration_seconds_bucket", "steerdns_queries_total", "steerdns_rate_limited_total",
    "steerdns_tcp_connections", "steerdns_tcp_refused_total", "steerdns_reloads_total",
    "process_open_fds", "process_max_fds", "process_resident_memory_bytes", "process_cpu_seconds_total",
)


def alert_names():
    """The alerts of the shipped rules file, in its order."""
    with open(RULES) as f:
        return re.findall(r"(?m)^\s*- alert: (\w+)\s*$", f.read())


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def panels(dashboard):
    """Every panel, those inside collapsed rows too; rows themselves left out."""
    out = []
    for p in dashboard["panels"]:
        if p.get("type") == "row":
            out += p.get("panels", [])
        else:
            out.append(p)
    return out


def expressions(dashboard):
    """(where, expr) of every PromQL query of the dashboard: panel targets and annotations."""
    out = []
    for p in panels(dashboard):
        for t in p.get("targets", []):
            out.append(("panel %r target %s" % (p["title"], t.get("refId")), t.get("expr")))
    for a in dashboard.get("annotations", {}).get("list", []):
        if "expr" in a:
            out.append(("annotation %r" % a["name"], a["expr"]))
    return out


def label_values_queries(dashboard):
    """(variable, selector, label) of every label_values(SELECTOR, LABEL) variable."""
    out = []
    for v in dashboard["templating"]["list"]:
        if v.get("type") != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q.strip())
        assert m, "variable %s: not label_values(SELECTOR, LABEL): %r" % (v["name"], q)
        out.append((v["name"], m.group(1), m.group(2)))
    return out


class Alerting(th.HealthCase):
    """Backends on every VIP, steerdns with the admin API, a state file and
    dnstap, and Prometheus with the shipped rules."""

    prom = None
    tmp_dnstap = None

    @classmethod
    def make_zone(cls):
        return api.zone_text(cls.port)

    @classmethod
    def make_server(cls):
        cls.tmp_dnstap = os.path.join(tempfile.mkdtemp(prefix="steerdns-alerting-"), "dnstap.sock")
        return h.Server({"example.com.yaml": cls.make_zone()},
                        extra_config=api.ADMIN_CONFIG + api.STATE_CONFIG,
                        logging_options={"dnstap": "{socket: %s}" % cls.tmp_dnstap})

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.instance = "127.0.0.1:%d" % cls.srv.admin_port
            cls.prom = Prometheus([cls.instance], [RULES])
            cls.prom.start()
            cls.prom.wait_ready()
            cls.make_traffic_and_failures()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.prom is not None:
                cls.prom.stop()
                cls.prom = None
        finally:
            super().tearDownClass()
            if cls.tmp_dnstap:
                shutil.rmtree(os.path.dirname(cls.tmp_dnstap), ignore_errors=True)

    @classmethod
    def make_traffic_and_failures(cls):
        """Queries over UDP and TCP, and singapore's backends stopped: its VIPs
        down (reason refused), the region not served."""
        def every_vip_up(m):
            up = m.series("steerdns_vip_up")
            checked = [v for labels, v in up.items() if dict(labels)["check"] != "none"]
            return len(checked) == len(th.ALL_VIPS) and all(v == 1 for v in up.values())
        api.wait_metrics(cls.srv, every_vip_up, "every checked VIP up")
        for client in (api.PARIS_CLIENT, api.VIRGINIA_CLIENT, th.SINGAPORE_CLIENT):
            api.ask(cls.srv, api.NAME, client)
            api.ask(cls.srv, api.NAME, client, "AAAA", "+tcp")
        api.ask(cls.srv, "nothing-here.example.com")
        for vip in th.SINGAPORE:
            cls.backends[vip].stop()
        api.wait_metrics(cls.srv, lambda m: m.value("steerdns_region_up", name=NAME, region="singapore") == 0,
                         "singapore down by its checks")

    # -- helpers ------------------------------------------------------------
    def drain_paris(self):
        rc, out, err = api.ctl("-c", self.srv.config_path, "drain", "paris")
        self.assertEqual((rc, out.strip()), (0, "region paris: forced down"), err)
        self.addCleanup(api.ctl, "-c", self.srv.config_path, "undrain", "paris")

    def substitute(self, expr):
        """Template variables → concrete values, as Grafana sends them: a
        multi-value variable's value is a regex, escaped inside the PromQL string."""
        def regex(text):
            return re.escape(text).replace("\\", "\\\\")
        values = {"instance": regex(self.instance), "name": regex(NAME),
                  "__rate_interval": "1m", "__interval": "15s", "__range": "5m"}
        out = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), expr)
        self.assertNotIn("$", out, "a template variable without a value: %r" % expr)
        return out

    def our_alerts(self, alertname):
        return [a for a in self.prom.alerts()
                if a["labels"].get("alertname") == alertname and a["labels"].get("instance") == self.instance]

    # -- the dashboard --------------------------------------------------------
    def test_the_dashboard_is_well_formed(self):
        d = load_dashboard()
        self.assertGreaterEqual(d["schemaVersion"], 36)
        self.assertEqual(d["uid"], "steerdns")
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual((variables["datasource"]["type"], variables["datasource"]["query"]),
                         ("datasource", "prometheus"))
        self.assertIn("instance", variables)
        ids = [p["id"] for p in d["panels"]] + [p["id"] for p in panels(d) if p not in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids repeat")
        cells = set()
        for p in d["panels"]:
            g = p["gridPos"]
            with self.subTest(panel=p["title"]):
                self.assertTrue(p["title"])
                self.assertLessEqual(g["x"] + g["w"], 24, "wider than the grid")
                mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
                self.assertFalse(mine & cells, "overlaps another panel")
                cells |= mine
                if p["type"] == "row":
                    continue
                self.assertEqual(p["datasource"], {"type": "prometheus", "uid": "${datasource}"})
                self.assertTrue(p["targets"], "no query")
                for t in p["targets"]:
                    self.assertEqual(t["datasource"], p["datasource"])
                    self.assertTrue(t.get("expr"), "a target without expr")
                    self.assertIn('instance=~"$instance"', t["expr"], "not limited to the chosen instances")
        shown = " ".join(e for _, e in expressions(d))
        for family in DASHBOARD_FAMILIES:
            self.assertRegex(shown, r"\b%s\{" % family, "no panel shows " + family)

    def test_every_dashboard_query_parses_and_returns_series(self):
        self.drain_paris()  # so that the overrides panel has a series
        rc, out, err = api.ctl("-c", self.srv.config_path, "reload")  # and the reload annotation one
        self.assertEqual(rc, 0, out + err)
        d = load_dashboard()
        queries = [(where, self.substitute(expr)) for where, expr in expressions(d)]
        for where, expr in queries:
            with self.subTest(where):
                doc = self.prom.query(expr)
                self.assertEqual(doc.get("status"), "success", "%s: %s\n%s" % (where, expr, doc))
        empty = [None]

        def all_return_series():
            empty[0] = [(where, expr) for where, expr in queries if not self.prom.vector(expr)]
            return not empty[0]
        try:
            h.wait_for(all_return_series, interval=0.5, what="every dashboard query to return a series")
        except AssertionError as exc:
            raise AssertionError("%s; still without a series:\n%s" % (exc, "\n".join(
                "  %s: %s" % q for q in empty[0]))) from None

    def test_the_dashboard_variables_list_this_instance(self):
        d = load_dashboard()
        found = {}
        for name, selector, label in label_values_queries(d):
            series = self.prom.vector(self.substitute(selector))
            found[name] = {s.get(label) for s, _ in series}
        self.assertIn(self.instance, found["instance"])
        self.assertIn(NAME, found["name"])

    # -- the rules ------------------------------------------------------------
    def test_the_shipped_rules_load_and_are_healthy(self):
        names = alert_names()
        self.assertGreaterEqual(len(names), 14)
        self.assertEqual(len(names), len(set(names)), "an alert name repeats")
        last = [None]

        def loaded():
            rules = [r for g in self.prom.rules() for r in g["rules"]]
            last[0] = rules
            return rules if all(r["health"] == "ok" for r in rules) and len(rules) == len(names) else None
        try:
            rules = h.wait_for(loaded, interval=0.2, what="every rule loaded and evaluated, health ok")
        except AssertionError as exc:
            raise AssertionError("%s\n%s\nprometheus log:\n%s" % (
                exc, json.dumps(last[0], indent=1), h.tail(self.prom.log()))) from None
        self.assertEqual([r["name"] for r in rules], names)
        for r in rules:
            with self.subTest(r["name"]):
                self.assertEqual(r["type"], "alerting")
                self.assertFalse(r.get("lastError"), r)
                self.assertIn(r["labels"].get("severity"), SEVERITIES)
                self.assertEqual(set(r["annotations"]), {"summary", "description", "runbook"})
                self.assertRegex(r["annotations"]["runbook"], r"^docs/alerting\.md#steerdns[a-z]+$")

    def test_a_drain_is_region_drained_not_region_down(self):
        prom = self.prom
        # singapore, down by its checks: SteerdnsRegionDown (pending: the
        # shipped `for:` is kept); it proves the rule sees this server's series.
        h.wait_for(lambda: [a for a in self.our_alerts("SteerdnsRegionDown")
                            if a["labels"]["region"] == "singapore" and a["state"] in ("pending", "firing")],
                   interval=0.2, what="SteerdnsRegionDown for singapore")
        self.assertEqual([a for a in self.our_alerts("SteerdnsRegionDown") if a["labels"]["region"] == "paris"], [])

        self.drain_paris()
        drained = h.wait_for(lambda: [a for a in self.our_alerts("SteerdnsRegionDrained")
                                      if a["labels"].get("region") == "paris"],
                             interval=0.2, what="SteerdnsRegionDrained for paris")
        self.assertEqual(len(drained), 1, drained)
        a = drained[0]
        self.assertIn(a["state"], ("pending", "firing"))
        self.assertEqual((a["labels"]["severity"], a["labels"]["target"]), ("info", "paris"))
        self.assertEqual(a["annotations"]["summary"], "region paris is drained on %s" % self.instance)
        # paris is not served in either geo name: only the drain keeps it out of RegionDown
        down = {(s["name"], s["region"]) for s, v in prom.vector(
            'steerdns_region_up{instance="%s"} == 0' % self.instance)}
        self.assertTrue({(NAME, "paris"), (api.STEADY + ".", "paris")} <= down, down)

        # Three more evaluations of the rules with the drain in force: RegionDown
        # never names paris, and still names singapore.
        seen, wrong = set(), []

        def evaluations():
            wrong.extend(a for a in self.our_alerts("SteerdnsRegionDown") if a["labels"]["region"] == "paris")
            group = next(g for g in prom.rules() if g["name"] == JOB)
            seen.add(group["lastEvaluation"])
            return wrong or len(seen) >= 4
        h.wait_for(evaluations, interval=0.2, what="three evaluations of the rules")
        self.assertEqual(wrong, [], "a drained region raised SteerdnsRegionDown")
        regions = {a["labels"]["region"] for a in self.our_alerts("SteerdnsRegionDown")}
        self.assertEqual(regions, {"singapore"})
        self.assertEqual(self.our_alerts("SteerdnsAllDown"), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
