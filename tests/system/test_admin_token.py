#!/usr/bin/env python3
"""A bearer token for the admin API's writes: drains, undrains and reloads
without it (or with a wrong one, or Basic auth) are refused with 401 and
change nothing; with it they apply; reads need none; `steerdns ctl` takes
the token from --token-file or the config.

No backends and no checks; the admin API listens on 127.0.0.1:{admin_port}
and HTTP goes through urllib with proxies switched off.
"""

import os
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import healthcase as th  # noqa: E402
from adminapi import (DEGRADED_TTL, OPENER, PARIS, PARIS_CLIENT, STATE_CONFIG,  # noqa: E402
                      STEADY, TOKEN, VIRGINIA, VIRGINIA_CLIENT, ask, ctl, drain, get, http, scrape,
                      TokenServer, status_doc, undrain, zone_text, forced)


# ---------------------------------------------------------------------------
# 6: a token for writes


class Token(h.ServerTestCase):

    @classmethod
    def make_server(cls):
        return TokenServer({"example.com.yaml": zone_text()},
                           extra_config="admin:\n  listen: 127.0.0.1:{admin_port}\n"
                                        "  token_file: admin.token\n" + STATE_CONFIG)

    def overrides(self):
        return forced(status_doc(self.srv))

    def state_file(self):
        try:
            with open(os.path.join(self.srv.dir, "state.yaml")) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def test_writes_need_the_token(self):
        srv = self.srv
        state_before = self.state_file()
        reloads_before = scrape(srv).value("steerdns_reloads_total", result="success")
        self.addCleanup(lambda: undrain(srv, "regions", "paris", token=TOKEN))
        for token in (False, "wrong-token-0123456789abcdef", TOKEN + "x", TOKEN[:-1], ""):
            with self.subTest(token=token):
                r = drain(srv, "regions", "paris", token=token)
                self.assertEqual(r.status, 401, r)
                self.assertEqual(r.headers.get("WWW-Authenticate"), "Bearer", r)
                r = http(srv, "POST", "/v1/reload", token=token)
                self.assertEqual(r.status, 401, r)
        # Authorization that is not "Bearer <token>"
        req = urllib.request.Request(srv.admin_url + "/v1/overrides/regions/paris",
                                     data=b'{"state":"down"}', method="PUT",
                                     headers={"Authorization": "Basic " + TOKEN})
        try:
            OPENER.open(req, timeout=10)
            self.fail("PUT with Basic auth accepted")
        except urllib.error.HTTPError as exc:
            self.assertEqual(exc.code, 401)
        # nothing changed
        self.assertEqual(self.overrides(), {"regions": {}, "vips": {}})
        self.assertEqual(self.state_file(), state_before)
        self.assertEqual(th.vips_of(ask(srv, STEADY, PARIS_CLIENT)), PARIS)
        self.assertEqual(scrape(srv).value("steerdns_reloads_total", result="success"),
                         reloads_before)

        # the right token
        r = drain(srv, "regions", "paris", token=TOKEN)
        self.assertEqual(r.status, 200, r)
        r1 = ask(srv, STEADY, PARIS_CLIENT)
        self.assertEqual((th.vips_of(r1), th.ttls_of(r1)), (VIRGINIA, [DEGRADED_TTL]), r1.stdout)
        # a DELETE without the token is refused too
        self.assertEqual(undrain(srv, "regions", "paris", token=False).status, 401)
        self.assertEqual(self.overrides()["regions"], {"paris": "down"})
        r = http(srv, "POST", "/v1/reload", token=TOKEN)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(undrain(srv, "regions", "paris", token=TOKEN).status, 200)
        self.assertEqual(th.vips_of(ask(srv, STEADY, PARIS_CLIENT)), PARIS)

        # reads need no token
        for path in ("/metrics", "/status", "/v1/overrides",
                     "/explain?name=%s&client=%s" % (STEADY, PARIS_CLIENT)):
            self.assertEqual(get(srv, path).status, 200, path)

    def test_ctl_with_token(self):
        srv = self.srv
        admin = "127.0.0.1:%d" % srv.admin_port
        self.addCleanup(lambda: undrain(srv, "vips", "127.2.0.1", token=TOKEN))
        # no token: refused, exit 1
        rc, out, err = ctl("--admin", admin, "drain", "127.2.0.1")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("401", err)
        self.assertEqual(self.overrides(), {"regions": {}, "vips": {}})
        # --token-file
        rc, out, err = ctl("--admin", admin, "--token-file", srv.token_path, "drain", "127.2.0.1")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(th.vips_of(ask(srv, STEADY, VIRGINIA_CLIENT)), ["127.2.0.2"])
        # the token from the config
        rc, out, err = ctl("-c", srv.config_path, "undrain", "127.2.0.1")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(th.vips_of(ask(srv, STEADY, VIRGINIA_CLIENT)), VIRGINIA)
        rc, out, err = ctl("-c", srv.config_path, "reload")
        self.assertEqual(rc, 0, out + err)
        # reads need none
        rc, out, err = ctl("--admin", admin, "status")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("steady.example.com.", out)


# ---------------------------------------------------------------------------
# 6b: the safe default. No token_file: steerdns makes a token beside the state
# file, mode 0640; anonymous writes are refused (any local user could drain
# a region before); `ctl -c` reads the made token; a user who cannot read it
# is told why. Without a state file either, writes are refused (403).


class MadeToken(h.ServerTestCase):

    @classmethod
    def make_server(cls):
        return h.Server({"example.com.yaml": zone_text()},
                        extra_config="admin:\n  listen: 127.0.0.1:{admin_port}\n" + STATE_CONFIG)

    @property
    def token_path(self):
        return os.path.join(self.srv.dir, "admin-token")

    def test_anonymous_writes_are_refused(self):
        srv = self.srv
        st = os.stat(self.token_path)
        self.assertEqual(st.st_mode & 0o777, 0o640)
        with open(self.token_path) as f:
            made = f.readline().strip()
        self.assertGreaterEqual(len(made), 32)
        r = drain(srv, "regions", "paris", token=False)
        self.assertEqual(r.status, 401, r)
        self.assertIn("admin-token", r.json()["error"])
        r = http(srv, "POST", "/v1/reload", token=False)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(get(srv, "/metrics").status, 200)
        self.assertEqual(forced(status_doc(srv)), {"regions": {}, "vips": {}})
        # the operator's ctl reads the made token
        self.addCleanup(lambda: undrain(srv, "regions", "paris", token=made))
        rc, out, err = ctl("-c", srv.config_path, "drain", "paris")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(th.vips_of(ask(srv, STEADY, PARIS_CLIENT)), th.vips_of(ask(srv, STEADY, VIRGINIA_CLIENT)))
        rc, out, err = ctl("-c", srv.config_path, "undrain", "paris")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(th.vips_of(ask(srv, STEADY, PARIS_CLIENT)), PARIS)

    def test_a_user_who_cannot_read_the_token_is_told(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run ctl as nobody")
        srv = self.srv
        # nobody can read the config (the test's folder is 0700: open it) but
        # not the token (0640, owned by root)
        os.chmod(srv.dir, 0o755)
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", h.BIN, "ctl",
                            "-c", srv.config_path, "drain", "paris"],
                           capture_output=True, text=True, timeout=h.DEADLINE)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("401", p.stderr)
        self.assertIn("cannot read the admin token", p.stderr)
        self.assertIn("Permission denied", p.stderr)
        self.assertEqual(forced(status_doc(srv)), {"regions": {}, "vips": {}})

    def test_the_token_survives_a_restart(self):
        srv = self.srv
        with open(self.token_path) as f:
            before = f.read()
        srv.restart()
        with open(self.token_path) as f:
            self.assertEqual(f.read(), before)
        r = http(srv, "POST", "/v1/reload", token=before.strip())
        self.assertEqual(r.status, 200, r)


class NoTokenNoStateFile(h.ServerTestCase):

    @classmethod
    def make_server(cls):
        return h.Server({"example.com.yaml": zone_text()},
                        extra_config="admin:\n  listen: 127.0.0.1:{admin_port}\n")

    def test_writes_are_refused(self):
        r = http(self.srv, "POST", "/v1/reload")
        self.assertEqual(r.status, 403, r)
        self.assertIn("admin.token_file", r.json()["error"])
        self.assertEqual(get(self.srv, "/status").status, 200)


if __name__ == "__main__":
    unittest.main()
