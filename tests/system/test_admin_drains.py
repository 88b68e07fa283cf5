#!/usr/bin/env python3
"""Drains through the admin API and `steerdns ctl`: a region or VIP forced
down applies to the very next answer, is written to the state file and
survives a restart, shows in /status, /metrics and `ctl status`, and comes
back to automatic; refused requests (400, 404) change nothing, and ctl
without a server exits 2.

Real HTTP backends (tests/system/backends.py) listen on the VIPs (127.1.0.x
paris, 127.2.0.x virginia, 127.3.0.x singapore); the admin API listens on
127.0.0.1:{admin_port}; HTTP goes through urllib with proxies switched off.
Checks run every second with fall 1 / rise 1; every wait polls with one
generous deadline (common.DEADLINE), nothing sleeps, and how soon a change
shows is not asserted.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import healthcase as th  # noqa: E402
from adminapi import (DEGRADED_TTL, NAME, PARIS, PARIS_CLIENT, SINGAPORE, STEADY,  # noqa: E402
                      TTL, VIRGINIA, VIRGINIA_CLIENT, AdminCase, ctl, drain, explain_text, http,
                      made_token, region_entry, scrape, status_doc, undrain, vip_entry)


# ---------------------------------------------------------------------------
# 3, 7: drains through the API and ctl; what is refused


class Drains(AdminCase):

    def setUp(self):
        super().setUp()
        self.addCleanup(self.clear_overrides)

    def test_region_drain_applies_at_once_and_survives_restart(self):
        srv = self.srv
        r = drain(srv, "regions", "paris")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"kind": "region", "name": "paris", "state": "down"})
        # the very next answers, no waiting
        self.answer(STEADY, PARIS_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)
        self.answer(NAME, PARIS_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)
        self.answer(STEADY, VIRGINIA_CLIENT, VIRGINIA, ttl=TTL)

        state = self.state_file()
        self.assertIsNotNone(state, "no state file written")
        self.assertRegex(state, r"(?m)^regions:\s*\n\s+paris:\s*down\s*$", state)
        doc = status_doc(srv)
        self.assertEqual(doc["overrides"], {"regions": {"paris": "down"}, "vips": {}})
        for name in (NAME, STEADY):
            paris = region_entry(doc, name, "paris")
            self.assertEqual((paris["state"], paris["override"]), ("down", "down"), name)
        m = scrape(srv)
        self.assertEqual(m.value("steerdns_override", kind="region", target="paris",
                                 state="down"), 1)
        self.assertEqual(m.value("steerdns_region_up", name=STEADY + ".", region="paris"), 0)

        # a new process with the same config and state file: drained from its first answer
        old_pid = srv.pid
        self.assertEqual(srv.restart(), 0, srv.all_output())
        self.assertNotEqual(srv.pid, old_pid)
        self.answer(STEADY, PARIS_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)
        self.answer(NAME, PARIS_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)
        self.assertEqual(region_entry(status_doc(srv), STEADY, "paris")["override"], "down")

        r = undrain(srv, "regions", "paris")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"kind": "region", "name": "paris", "state": "automatic"})
        self.answer(STEADY, PARIS_CLIENT, PARIS, ttl=TTL)
        self.answer(NAME, PARIS_CLIENT, PARIS, ttl=TTL)
        self.assertNotRegex(self.state_file(), r"paris")
        self.assertEqual(status_doc(srv)["overrides"], {"regions": {}, "vips": {}})
        self.assertEqual(scrape(srv).series("steerdns_override"), {})

    def test_vip_drain_with_ctl(self):
        srv = self.srv
        rc, out, err = ctl("-c", srv.config_path, "drain", "127.1.0.1")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.strip(), "vip 127.1.0.1: forced down")
        self.answer(STEADY, PARIS_CLIENT, ["127.1.0.2"], ttl=DEGRADED_TTL)
        self.answer(NAME, PARIS_CLIENT, ["127.1.0.2"], ttl=DEGRADED_TTL)
        self.assertRegex(self.state_file(), r"(?m)^vips:\s*\n\s+127\.1\.0\.1:\s*down\s*$")

        doc = status_doc(srv)
        v = vip_entry(doc, NAME, "127.1.0.1")
        # probed up, not served
        self.assertEqual((v["state"], v["served"], v["override"]), ("up", False, "down"), v)
        paris = region_entry(doc, NAME, "paris")
        self.assertEqual((paris["state"], paris["override"], paris["vips_up"]), ("up", None, 1))
        m = scrape(srv)
        self.assertEqual(m.value("steerdns_override", kind="vip", target="127.1.0.1",
                                 state="down"), 1)
        self.assertEqual(m.value("steerdns_vip_up", name=NAME + ".", region="paris",
                                 vip="127.1.0.1", check="http"), 1)

        rc, out, err = ctl("--admin", "127.0.0.1:%d" % srv.admin_port, "status")
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"(?m)^ +127\.1\.0\.1 +up \(forced down\)")
        self.assertRegex(out, r"(?m)^overrides:.* VIP 127\.1\.0\.1 down;")
        self.assertRegex(out, r"(?m)^  paris +\S+ +\d of 2 VIPs up, threshold 1$", out)
        rc, out, err = ctl("-c", srv.config_path, "--json", "status")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(json.loads(out)["overrides"], {"regions": {}, "vips": {"127.1.0.1": "down"}})

        rc, out, err = ctl("--admin", "127.0.0.1:%d" % srv.admin_port,
                           "--token-file", os.path.join(srv.dir, "admin-token"), "undrain", "127.1.0.1")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.strip(), "vip 127.1.0.1: back to automatic")
        self.answer(STEADY, PARIS_CLIENT, PARIS, ttl=TTL)
        self.answer(NAME, PARIS_CLIENT, PARIS, ttl=TTL)
        self.assertEqual(status_doc(srv)["overrides"], {"regions": {}, "vips": {}})

        # a region by name through ctl, too
        rc, out, err = ctl("-c", srv.config_path, "drain", "singapore")
        self.assertEqual((rc, out.strip()), (0, "region singapore: forced down"), err)
        self.answer(STEADY, th.SINGAPORE_CLIENT, self.nearest_after_singapore(),
                    ttl=DEGRADED_TTL)
        rc, out, err = ctl("-c", srv.config_path, "undrain", "singapore")
        self.assertEqual(rc, 0, out + err)
        self.answer(STEADY, th.SINGAPORE_CLIENT, SINGAPORE, ttl=TTL)

    def nearest_after_singapore(self):
        """The second region of a singapore client, as explain reports it."""
        text = explain_text(self.srv, STEADY, th.SINGAPORE_CLIENT)
        m = re.search(r"(?m)^preference: +singapore \(\d+ km\), (\w+)", text)
        self.assertIsNotNone(m, text)
        return {"paris": PARIS, "virginia": VIRGINIA}[m.group(1)]

    def test_refusals_change_nothing(self):
        srv = self.srv
        state_before = self.state_file()
        cases = [
            ("PUT", "/v1/overrides/regions/atlantis", {"state": "down"}, 404, "atlantis"),
            ("PUT", "/v1/overrides/vips/127.9.9.9", {"state": "down"}, 404, "127.9.9.9"),
            ("PUT", "/v1/overrides/vips/not-an-address", {"state": "down"}, 400, "not-an-address"),
            ("PUT", "/v1/overrides/regions/paris", {"state": "sideways"}, 400, "state"),
            ("PUT", "/v1/overrides/regions/paris", "down", 400, "state"),
            ("PUT", "/v1/overrides/regions/paris", "{", 400, "state"),
            ("PUT", "/v1/overrides/regions/paris", {}, 400, "state"),
            ("GET", "/v1/nothing-here", None, 404, "no such endpoint"),
        ]
        for method, path, body, code, needle in cases:
            with self.subTest(method=method, path=path, body=body):
                r = http(srv, method, path, body)
                self.assertEqual(r.status, code, r)
                self.assertIn(needle, r.json()["error"], r)
        rc, out, err = ctl("-c", srv.config_path, "drain", "atlantis")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("404", err)
        self.assertIn("atlantis", err)
        # nothing changed
        self.assertEqual(self.state_file(), state_before)
        self.assertEqual(status_doc(srv)["overrides"], {"regions": {}, "vips": {}})
        self.answer(STEADY, PARIS_CLIENT, PARIS, ttl=TTL)
        # nobody listening: exit 2
        rc, out, err = ctl("--admin", "127.0.0.1:%d" % h.free_port(), "status")
        self.assertEqual(rc, 2, out + err)
        self.assertIn("cannot reach", err)


    @unittest.skipUnless(shutil.which("curl"), "curl is not installed")
    def test_plain_curl_without_a_body(self):
        """`curl -X PUT` and `curl -X POST` send no body and no Content-Length:
        a drain (state down) and a reload, not an empty 400."""
        srv = self.srv

        token = made_token(srv)

        def curl(method, path):
            p = subprocess.run(["curl", "-s", "--noproxy", "*", "-H", "Authorization: Bearer " + token,
                                "-X", method, srv.admin_url + path],
                               capture_output=True, text=True, timeout=h.DEADLINE)
            self.assertEqual(p.returncode, 0, p.stderr)
            return json.loads(p.stdout)

        self.assertEqual(curl("PUT", "/v1/overrides/regions/paris"),
                         {"kind": "region", "name": "paris", "state": "down"})
        self.answer(STEADY, PARIS_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)
        self.assertEqual(curl("PUT", "/v1/overrides/regions/pariss")["error"],
                         "no geo name has a region 'pariss'")
        self.assertEqual(curl("POST", "/v1/reload")["result"], "success")
        self.assertIn("bad request", curl("POST", "/v1/nothing-here")["error"])


if __name__ == "__main__":
    unittest.main()
