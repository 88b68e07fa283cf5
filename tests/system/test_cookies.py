#!/usr/bin/env python3
"""DNS Cookies (RFC 7873, server cookies as RFC 9018) and identity (NSID,
CH TXT id.server and hostname.bind) as an operator checks them with dig:
a server cookie that a second query echoes is accepted, a wrong one gets
BADCOOKIE, two instances with the same secret file accept each other's
cookies while one with another secret does not, a secret rollover keeps
the previous secret's cookies working, and every instance names itself
in NSID, CH TXT, /status and steerdns_build_info."""

import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from adminapi import ADMIN_CONFIG, scrape, status_doc  # noqa: E402

ZONES = {"example.com.yaml": h.standard_zone("example.com")}
SECRET = "000102030405060708090a0b0c0d0e0f"
OTHER = "f0e0d0c0b0a090807060504030201000"


def cookie_of(r):
    """The COOKIE dig printed (client + server, hex) and dig's verdict, or (None, None)."""
    m = re.search(r"; COOKIE: ([0-9a-f]+)(?: \((\w+)\))?", r.stdout)
    return (m.group(1), m.group(2)) if m else (None, None)


def nsid_of(r):
    m = re.search(r'; NSID: [0-9a-f ]+ \("(.*)"\)', r.stdout)
    return m.group(1) if m else None


class Cookies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="steerdns-cookies-")
        cls.secret = os.path.join(cls.dir, "cookie-secret")
        with open(cls.secret, "w") as f:
            f.write(SECRET + "\n")
        other = os.path.join(cls.dir, "other-secret")
        with open(other, "w") as f:
            f.write(OTHER + "\n")
        cls.servers = []
        try:
            for identity, secret in (("ns-a.test", cls.secret), ("ns-b.test", cls.secret),
                                     ("ns-c.test", other)):
                srv = h.Server(ZONES, extra_config=ADMIN_CONFIG, server_options={
                    "identity": identity, "cookies": "{secret_file: %s}" % secret})
                srv.start()
                cls.servers.append(srv)
        except BaseException:
            cls.tearDownClass()
            raise
        cls.a, cls.b, cls.c = cls.servers

    @classmethod
    def tearDownClass(cls):
        for srv in cls.servers:
            srv.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def first_cookie(self, srv):
        r = h.dig(srv.port, "www.example.com", "A", "+cookie")
        self.assertEqual(r.status, "NOERROR", r.stdout)
        cookie, _ = cookie_of(r)
        self.assertIsNotNone(cookie, "no COOKIE in the reply to +cookie:\n" + r.stdout)
        self.assertEqual(len(cookie), 48, "client (8) and server (16) octets:\n" + r.stdout)
        self.assertEqual(cookie[16:18], "01", "server cookie version 1 (RFC 9018):\n" + r.stdout)
        return cookie

    def test_echoed_cookie_is_accepted(self):
        cookie = self.first_cookie(self.a)
        r = h.dig(self.a.port, "www.example.com", "A", "+cookie=" + cookie)
        self.assertEqual(r.status, "NOERROR", r.stdout)
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"], r.stdout)
        echoed, verdict = cookie_of(r)
        self.assertEqual(echoed, cookie, "a fresh valid cookie comes back unchanged:\n" + r.stdout)
        self.assertEqual(verdict, "good", r.stdout)

    def test_wrong_server_cookie_gets_badcookie(self):
        cookie = self.first_cookie(self.a)
        wrong = cookie[:-2] + ("00" if cookie[-2:] != "00" else "11")
        r = h.dig(self.a.port, "www.example.com", "A", "+cookie=" + wrong, "+nobadcookie")
        self.assertEqual(r.status, "BADCOOKIE", r.stdout)
        self.assertEqual(r.answer, [], r.stdout)
        fresh, _ = cookie_of(r)
        self.assertEqual(fresh[:16], cookie[:16], "the client cookie is echoed:\n" + r.stdout)
        self.assertNotEqual(fresh, wrong, r.stdout)
        # dig, as a resolver would, retries with the cookie it was given.
        r = h.dig(self.a.port, "www.example.com", "A", "+cookie=" + wrong)
        self.assertEqual(r.status, "NOERROR", r.stdout)
        self.assertEqual(r.rdatas("A"), ["192.0.2.10"], r.stdout)
        # Over TCP the address is proven: answered, with a good cookie.
        r = h.dig(self.a.port, "www.example.com", "A", "+cookie=" + wrong, "+nobadcookie", "+tcp")
        self.assertEqual(r.status, "NOERROR", r.stdout)
        self.assertEqual(cookie_of(r)[1], "good", r.stdout)

    def test_instances_sharing_a_secret_accept_each_others_cookies(self):
        cookie = self.first_cookie(self.a)
        r = h.dig(self.b.port, "www.example.com", "A", "+cookie=" + cookie, "+nobadcookie")
        self.assertEqual(r.status, "NOERROR", r.stdout)
        self.assertEqual(cookie_of(r), (cookie, "good"), r.stdout)
        r = h.dig(self.c.port, "www.example.com", "A", "+cookie=" + cookie, "+nobadcookie")
        self.assertEqual(r.status, "BADCOOKIE", "another secret: not ours\n" + r.stdout)

    def test_identity(self):
        for srv, name in ((self.a, "ns-a.test"), (self.b, "ns-b.test")):
            r = h.dig(srv.port, "www.example.com", "A", "+nsid")
            self.assertEqual(nsid_of(r), name, r.stdout)
            for qname in ("id.server", "hostname.bind"):
                r = h.dig(srv.port, qname, "TXT", qclass="CH")
                self.assertEqual(r.status, "NOERROR", r.stdout)
                self.assertIn("aa", r.flags, r.stdout)
                self.assertEqual(r.rdatas("TXT"), ['"%s"' % name], r.stdout)
            self.assertEqual(status_doc(srv)["identity"], name)
            m = scrape(srv)
            info = [labels for (metric, labels) in m.samples if metric == "steerdns_build_info"]
            self.assertEqual(len(info), 1, m.text)
            self.assertEqual(dict(info[0]).get("identity"), name, m.text)
        # No version configured: version.bind is not answered.
        r = h.dig(self.a.port, "version.bind", "TXT", qclass="CH")
        self.assertEqual(r.status, "REFUSED", r.stdout)

    def test_secret_rollover_keeps_the_previous_secrets_cookies(self):
        # Its own instance: the others keep their secret for the other tests.
        path = os.path.join(self.dir, "rolling-secret")
        with open(path, "w") as f:
            f.write(SECRET + "\n")
        with h.Server(ZONES, server_options={"cookies": "{secret_file: %s}" % path}) as srv:
            cookie = self.first_cookie(srv)
            # The new secret first, the previous one second; reload.
            with open(path, "w") as f:
                f.write("# rolled\n%s\n%s\n" % (OTHER, SECRET))
            ok, log = srv.reload_and_wait()
            self.assertTrue(ok, log)
            r = h.dig(srv.port, "www.example.com", "A", "+cookie=" + cookie, "+nobadcookie")
            self.assertEqual(r.status, "NOERROR", "the previous secret's cookie:\n" + r.stdout)
            renewed, verdict = cookie_of(r)
            self.assertEqual(verdict, "good", r.stdout)
            self.assertNotEqual(renewed, cookie, "replaced by one under the new secret:\n" + r.stdout)
            # The rollover ends: the previous secret is gone, so are its cookies.
            with open(path, "w") as f:
                f.write(OTHER + "\n")
            ok, log = srv.reload_and_wait()
            self.assertTrue(ok, log)
            r = h.dig(srv.port, "www.example.com", "A", "+cookie=" + cookie, "+nobadcookie")
            self.assertEqual(r.status, "BADCOOKIE", r.stdout)
            r = h.dig(srv.port, "www.example.com", "A", "+cookie=" + renewed, "+nobadcookie")
            self.assertEqual(r.status, "NOERROR", r.stdout)
            # A bad secret file is refused by the reload; the last good one stays.
            with open(path, "w") as f:
                f.write("not hex\n")
            ok, log = srv.reload_and_wait()
            self.assertFalse(ok, log)
            self.assertIn("rolling-secret:1: a cookie secret is 32 hexadecimal digits", log)
            r = h.dig(srv.port, "www.example.com", "A", "+cookie=" + renewed, "+nobadcookie")
            self.assertEqual(r.status, "NOERROR", r.stdout)


if __name__ == "__main__":
    unittest.main()
