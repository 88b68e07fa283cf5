#!/usr/bin/env python3
"""Reloads through the admin API and `steerdns ctl`: a changed zone is
served at once, a broken one is refused with file:line while the old answers
stay, the reload metrics and /status follow; without a state file overrides
are refused (409).

No backends and no checks; the admin API listens on 127.0.0.1:{admin_port}
and HTTP goes through urllib with proxies switched off.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import healthcase as th  # noqa: E402
from adminapi import (ADMIN_CONFIG, PARIS, PARIS_CLIENT, STEADY, ask, ctl, drain,  # noqa: E402
                      TokenServer, http, line_number, scrape, status_doc, zone_text, forced)


# ---------------------------------------------------------------------------
# 5, 7: reloads (API and ctl); no state file


class Reloads(h.ServerTestCase):
    """No backends, no checks, no state file; a token_file."""

    @classmethod
    def make_server(cls):
        return TokenServer({"example.com.yaml": zone_text()},
                           extra_config=ADMIN_CONFIG + "  token_file: admin.token\n")

    def www(self):
        r = ask(self.srv, "www.example.com")
        self.assertEqual(r.status, "NOERROR", r.stdout)
        return r.rdatas("A"), th.ttls_of(r)

    def test_reload_success_and_failure(self):
        srv = self.srv
        self.assertEqual(self.www(), (["127.0.0.10"], [3600]))
        m0 = scrape(srv)
        self.assertEqual(m0.value("steerdns_last_reload_success"), 1)

        # a changed zone: 200 and the new answer
        srv.write_zone("example.com.yaml", zone_text(www="127.0.0.11", www_ttl=600))
        r = http(srv, "POST", "/v1/reload")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["result"], "success", r)
        self.assertEqual(r.json()["zones"], 1, r)
        self.assertEqual(self.www(), (["127.0.0.11"], [600]))
        m1 = scrape(srv)
        self.assertEqual(m1.value("steerdns_reloads_total", result="success")
                         - m0.value("steerdns_reloads_total", result="success"), 1)
        self.assertEqual(m1.value("steerdns_world_generation")
                         - m0.value("steerdns_world_generation"), 1)
        self.assertEqual(m1.value("steerdns_last_reload_success"), 1)
        self.assertGreater(m1.value("steerdns_last_reload_timestamp_seconds"), time.time() - 60)
        self.assertEqual(r.json()["records"], m1.value("steerdns_records"))

        # a broken zone: 422 with file:line, the old answers stay
        text = zone_text(www="127.0.0.12", www_ttl=600).replace(
            "    A: 127.0.0.12\n", "    A: not-an-address\n")
        line = line_number(text, "not-an-address")
        srv.write_zone("example.com.yaml", text)
        r = http(srv, "POST", "/v1/reload")
        self.assertEqual(r.status, 422, r)
        body = r.json()
        self.assertEqual(body["result"], "failure", r)
        self.assertRegex(body["error"], r"example\.com\.yaml:%d:" % line, r)
        self.assertIn("not-an-address", body["error"])
        self.assertEqual(self.www(), (["127.0.0.11"], [600]))
        m2 = scrape(srv)
        self.assertEqual(m2.value("steerdns_reloads_total", result="failure")
                         - m1.value("steerdns_reloads_total", result="failure"), 1)
        self.assertEqual(m2.value("steerdns_reloads_total", result="success"),
                         m1.value("steerdns_reloads_total", result="success"))
        self.assertEqual(m2.value("steerdns_last_reload_success"), 0)
        self.assertEqual(m2.value("steerdns_world_generation"),
                         m1.value("steerdns_world_generation"))
        self.assertGreaterEqual(m2.value("steerdns_last_reload_timestamp_seconds"),
                                m1.value("steerdns_last_reload_timestamp_seconds"))
        doc = status_doc(srv)
        self.assertEqual(doc["reload"]["last_result"], "failure")
        self.assertEqual(doc["reload"]["failed"], m2.value("steerdns_reloads_total",
                                                           result="failure"))
        self.assertRegex(doc["reload"]["last_error"], r"example\.com\.yaml:%d:" % line)
        self.assertIsNotNone(doc["reload"]["last"])

        # ctl reload: refused (exit 1, the error on stderr) while broken ...
        rc, out, err = ctl("-c", srv.config_path, "reload")
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(err, r"example\.com\.yaml:%d:" % line)
        self.assertEqual(self.www(), (["127.0.0.11"], [600]))
        # ... and done once fixed
        srv.write_zone("example.com.yaml", zone_text(www="127.0.0.12", www_ttl=300))
        rc, out, err = ctl("-c", srv.config_path, "reload")
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"^reloaded: 1 zones, \d+ records in ")
        self.assertEqual(self.www(), (["127.0.0.12"], [300]))
        m3 = scrape(srv)
        self.assertEqual(m3.value("steerdns_last_reload_success"), 1)
        self.assertEqual(m3.value("steerdns_reloads_total", result="failure")
                         - m1.value("steerdns_reloads_total", result="failure"), 2)
        self.assertEqual(m3.value("steerdns_world_generation")
                         - m1.value("steerdns_world_generation"), 1)
        self.assertEqual(status_doc(srv)["reload"]["last_result"], "success")

    def test_overrides_need_a_state_file(self):
        srv = self.srv
        r = drain(srv, "regions", "paris")
        self.assertEqual(r.status, 409, r)
        self.assertIn("state_file", r.json()["error"])
        rc, out, err = ctl("-c", srv.config_path, "drain", "127.1.0.1")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("state_file", err)
        self.assertEqual(forced(status_doc(srv)), {"regions": {}, "vips": {}})
        r = ask(srv, STEADY, PARIS_CLIENT)
        self.assertEqual(th.vips_of(r), PARIS, r.stdout)



if __name__ == "__main__":
    unittest.main()
