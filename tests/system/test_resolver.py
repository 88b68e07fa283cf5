#!/usr/bin/env python3
"""steerdns behind a real resolver: unbound on loopback with subnetcache sends
EDNS Client Subnet to steerdns, clients in different places get their own
regions, and unbound answers later clients inside our ECS scope from its cache
without asking steerdns again (the point of returning the widest scope)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from geozones import EXAMPLE_ZONE, PARIS, SINGAPORE, VIRGINIA, subnet  # noqa: E402
from resolvers import Unbound, installed  # noqa: E402


@unittest.skipUnless(installed(Unbound), "unbound is not installed")
class ThroughUnbound(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = h.Server({"example.com.yaml": EXAMPLE_ZONE}, query_log=True)
        cls.srv.start()
        try:
            cls.unbound = Unbound(cls.srv.port).start()
        except BaseException:
            cls.srv.close()
            raise
        cls.port = cls.unbound.port

    @classmethod
    def tearDownClass(cls):
        cls.unbound.stop()
        cls.srv.stop()
        cls.srv.close()

    def upstream_queries(self, name="artifacts.example.com."):
        """How many times steerdns was asked NAME (its query log)."""
        return sum(1 for line in self.srv.log().splitlines()
                   if " query " in line and " name=%s type=A " % name in line)

    def ask(self, client):
        r = h.dig(self.port, "artifacts.example.com", "A", "+subnet=" + client)
        self.assertEqual(r.status, "NOERROR", r.stdout)
        return r

    def test_regions_per_client_and_cache_reuse_within_scope(self):
        before = self.upstream_queries()
        paris = self.ask("193.51.24.0/24")
        self.assertEqual(sorted(paris.rdatas("A")), PARIS, paris.stdout)
        h.wait_for(lambda: self.upstream_queries() == before + 1, what="steerdns asked once")
        scope = subnet(paris)
        self.assertIsNotNone(scope, "unbound passes the scope back to its client\n" + paris.stdout)
        self.assertGreater(scope[2], 0)
        self.assertLess(scope[2], 24, "the built-in database merges France wider than a /24")

        # Another French /24 inside that scope: answered from unbound's cache.
        neighbour = self.ask("193.51.25.0/24")
        self.assertEqual(sorted(neighbour.rdatas("A")), PARIS)
        self.assertEqual(self.upstream_queries(), before + 1,
                         "a client inside the scope must not reach steerdns")

        # Clients elsewhere: their own regions, each one more upstream query.
        virginia = self.ask("8.8.8.0/24")
        self.assertEqual(sorted(virginia.rdatas("A")), VIRGINIA, virginia.stdout)
        singapore = self.ask("1.1.1.0/24")
        self.assertEqual(sorted(singapore.rdatas("A")), SINGAPORE, singapore.stdout)
        self.assertEqual(self.upstream_queries(), before + 3)

        # And Paris again: still cached.
        self.assertEqual(sorted(self.ask("193.51.24.0/24").rdatas("A")), PARIS)
        self.assertEqual(self.upstream_queries(), before + 3)

    def test_static_names_are_shared_by_everyone(self):
        before = self.upstream_queries("mail.example.com.")
        for client in ("193.51.24.0/24", "8.8.8.0/24", "1.1.1.0/24"):
            r = h.dig(self.port, "mail.example.com", "A", "+subnet=" + client)
            self.assertEqual(r.rdatas("A"), ["127.0.0.25"], r.stdout)
        self.assertEqual(self.upstream_queries("mail.example.com.") - before, 1,
                         "scope 0: one cached answer for every client")


if __name__ == "__main__":
    unittest.main()
