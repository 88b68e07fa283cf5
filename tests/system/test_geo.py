#!/usr/bin/env python3
"""Geo names with real dig +subnet (RFC 7871): the nearest region's VIPs, the
ECS scope of the merged network, overrides, the resolver's address when there
is no ECS, `steerdns explain`, and a reload that picks up a replaced database.
Runs on the built-in world database and on the test database the build writes
(tests/geoip/make-test-mmdb.pl)."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from geozones import (EXAMPLE_ZONE, PARIS, SINGAPORE, SOURCE, TEST_MMDB,  # noqa: E402,F401
                      VIRGINIA, WORLD_MMDB, subnet)
from harness import ServerTestCase  # noqa: E402

GEO_ZONE = EXAMPLE_ZONE + """
  nearest:
    regions: [paris, virginia, singapore]
    overrides:
      default: [singapore, paris, virginia]
  pinned:
    regions: [paris, virginia, singapore]
    overrides:
      cidr: {"193.51.24.0/24": [singapore, paris, virginia]}
      country: {JP: [paris, singapore, virginia]}
      continent: {OC: [virginia, singapore, paris]}
      default: [singapore, paris, virginia]
"""


class GeoCase(ServerTestCase):
    def ask(self, name, client, qtype="A", *opts):
        r = self.dig(name, qtype, "+subnet=" + client, *opts)
        self.assertAnswered(r)
        return r

    def vips(self, r, qtype="A"):
        return sorted(r.rdatas(qtype))


class BuiltInDatabase(GeoCase):
    """The example zone on the built-in world database (no geoip key)."""
    SERVER_ARGS = dict(zones={"example.com.yaml": EXAMPLE_ZONE})

    def test_issue_examples(self):
        for client, vips in (("193.51.24.0/24", PARIS), ("8.8.8.0/24", VIRGINIA),
                             ("1.1.1.0/24", SINGAPORE), ("2001:4860:4860::/48", VIRGINIA)):
            with self.subTest(client=client):
                r = self.ask("artifacts.example.com", client)
                self.assertEqual(self.vips(r), vips, r.stdout)
                echoed = subnet(r)
                self.assertIsNotNone(echoed, r.stdout)
                self.assertEqual(echoed[1], int(client.split("/")[1]))
                self.assertGreater(echoed[2], 0, "a geo answer has a scope")
                # The scope is the merged network the client fell in, as
                # `steerdns explain` (the same code) reports it.
                out = subprocess.run([h.BIN, "explain", "-c", self.srv.config_path,
                                      "artifacts.example.com", client],
                                     capture_output=True, text=True, timeout=30)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertIn("scope:       /%d" % echoed[2], out.stdout)
                self.assertIn(vips[0], out.stdout)

    def explain(self, *args):
        return subprocess.run([h.BIN, "explain", "-c", self.srv.config_path] + list(args),
                              capture_output=True, text=True, timeout=30)

    def test_explain_without_ecs_and_outside_our_zones(self):
        # A resolver without ECS: the client is placed by the resolver's
        # address, as the server places the query.
        r = h.dig(self.srv.port, "artifacts.example.com", "A", "+noedns")
        out = self.explain("artifacts.example.com", "127.0.0.1", "--no-ecs")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("(the resolver's address: no EDNS Client Subnet)", out.stdout)
        for vip in self.vips(r):
            self.assertIn(vip, out.stdout)
        out = self.explain("artifacts.example.com", "8.8.8.8", "--no-ecs")
        self.assertIn("virginia", out.stdout.split("region:")[1].splitlines()[0], out.stdout)
        out = self.explain("artifacts.example.com", "8.8.8.0/24", "--no-ecs")
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("one address", out.stderr)
        # A name we do not serve: said so, exit 1.
        out = self.explain("www.example.org", "8.8.8.0/24")
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("'www.example.org.' is in no zone this server serves", out.stderr)

    def test_ttl_and_no_ecs_on_static_names(self):
        r = self.ask("artifacts.example.com", "8.8.8.0/24")
        self.assertTrue(all(rr[1] == 30 for rr in r.answer), r.stdout)
        www = self.ask("www.example.com", "8.8.8.0/24")
        self.assertEqual(subnet(www)[2], 0, "static data answers scope 0")

    def test_cname_into_geo_name(self):
        r = self.ask("repo.example.com", "1.1.1.0/24")
        self.assertEqual(r.types(), ["CNAME", "A", "A"], r.stdout)
        self.assertEqual(self.vips(r), SINGAPORE)


class TestDatabase(GeoCase):
    """Exact scopes and overrides on the repo's own test database."""
    SERVER_ARGS = dict(zones={"example.com.yaml": GEO_ZONE},
                       extra_config="geoip:\n  database: %s\n" % TEST_MMDB)

    def test_merged_scopes(self):
        # Paris and Frankfurt /17s give the same list: one /16. (`nearest`
        # has a default list unlike any distance order, so nothing merges
        # with unplaced space.)
        for client in ("193.51.24.0/24", "193.51.200.0/24", "193.51.0.0/16"):
            with self.subTest(client=client):
                r = self.ask("nearest.example.com", client)
                self.assertEqual(self.vips(r), PARIS)
                self.assertEqual(subnet(r)[2], 16, r.stdout)
        r = self.ask("nearest.example.com", "8.8.8.0/24")
        self.assertEqual(self.vips(r), VIRGINIA)
        self.assertEqual(subnet(r)[2], 24, r.stdout)
        # With the declared order as default, Paris's list is also that of
        # unplaced space: the answer holds for a far wider network.
        r = self.ask("artifacts.example.com", "193.51.24.0/24")
        self.assertEqual(self.vips(r), PARIS)
        self.assertLess(subnet(r)[2], 16, r.stdout)
        r = self.ask("nearest.example.com", "2001:db8:5::/48", "AAAA")
        self.assertEqual(r.answer, [], "singapore has no IPv6 VIP: NODATA")
        self.assertEqual(r.types("authority"), ["SOA"])
        self.assertGreater(subnet(r)[2], 0)

    def test_overrides(self):
        cases = (("193.51.24.0/24", SINGAPORE, 24),   # CIDR beats country (FR) and distance
                 ("203.0.113.0/24", PARIS, 24),       # country JP
                 ("1.1.1.0/24", VIRGINIA, 24),        # continent OC
                 ("8.8.8.0/24", VIRGINIA, 24))        # distance
        for client, vips, scope in cases:
            with self.subTest(client=client):
                r = self.ask("pinned.example.com", client)
                self.assertEqual(self.vips(r), vips, r.stdout)
                self.assertEqual(subnet(r)[2], scope, r.stdout)

    def test_resolver_address_without_ecs(self):
        # 127.0.0.1 is in no database: the default list (singapore first for
        # `pinned`, declared order for `artifacts`), and no ECS in the reply.
        r = self.dig("pinned.example.com", "A")
        self.assertEqual(self.vips(r), SINGAPORE, r.stdout)
        self.assertIsNone(subnet(r))
        r = self.dig("artifacts.example.com", "A", "+subnet=0.0.0.0/0")
        self.assertEqual(self.vips(r), PARIS)
        self.assertEqual(subnet(r)[2], 0, "source prefix 0 answers scope 0")

    def test_kdig_subnet(self):
        r = self.kdig("artifacts.example.com", "A", "+subnet=8.8.8.0/24")
        self.assertEqual(sorted(r.rdatas("A")), VIRGINIA, r.stdout)

    def test_bad_ecs_is_formerr(self):
        q = h.build_query("artifacts.example.com", "A", id=99,
                          edns={"options": [(8, bytes([0, 1, 33, 0, 8, 8, 8, 8, 0]))]})
        self.assertEqual(h.udp_query(self.srv.port, q).rcode_name, "FORMERR")


MAXMIND_CITY = os.path.join(SOURCE, "tests", "geoip", "maxmind", "GeoIP2-City-Test.mmdb")
MAXMIND_ZONE = """zone: example.net
soa: {mname: ns1, rname: hostmaster}
ns: [ns1]
records:
  ns1: {A: 127.0.0.1}
regions:
  london: {location: [51.51, -0.13], vips: [127.4.0.1]}
  stockholm: {location: [59.33, 18.07], vips: [127.5.0.1]}
  seattle: {location: [47.61, -122.33], vips: [127.6.0.1, "::1"]}
geo:
  artifacts:
    regions: [london, stockholm, seattle]
"""


class MaxMindCityDatabase(GeoCase):
    """A user's own GeoIP2 City database (MaxMind's public test file)."""
    SERVER_ARGS = dict(zones={"example.net.yaml": MAXMIND_ZONE},
                       extra_config="geoip:\n  database: %s\n" % MAXMIND_CITY)

    def test_city_level_placement(self):
        # The test file's networks are as narrow as /28: ECS for a wider
        # prefix places the client at its first address, elsewhere.
        for client, vip in (("81.2.69.0/24", "127.4.0.1"),        # London
                            ("89.160.20.112/28", "127.5.0.1"),    # Linköping
                            ("216.160.83.56/29", "127.6.0.1")):   # Milton, WA
            with self.subTest(client=client):
                r = self.ask("artifacts.example.net", client)
                self.assertEqual(r.rdatas("A"), [vip], r.stdout)
                self.assertGreater(subnet(r)[2], 0)


class DatabaseReload(GeoCase):
    """A replaced database file is picked up by SIGHUP; a broken one is not."""

    @classmethod
    def make_server(cls):
        cls.tmp = tempfile.mkdtemp(prefix="steerdns-geo-")
        cls.db_path = os.path.join(cls.tmp, "geo.mmdb")
        shutil.copyfile(TEST_MMDB, cls.db_path)
        return h.Server({"example.com.yaml": EXAMPLE_ZONE},
                        extra_config="geoip:\n  database: %s\n" % cls.db_path)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_replaced_database(self):
        # 9.9.9.0/24 is in no network of the test database (default list:
        # paris first); the world database places it in the US (virginia).
        self.assertEqual(self.vips(self.ask("artifacts.example.com", "9.9.9.0/24")), PARIS)
        shutil.copyfile(WORLD_MMDB, self.db_path + ".new")
        os.replace(self.db_path + ".new", self.db_path)
        self.srv.reload_and_wait()
        h.wait_for(lambda: self.vips(self.dig("artifacts.example.com", "A",
                                              "+subnet=9.9.9.0/24")) == VIRGINIA,
                   what="virginia for 9.9.9.0/24 after the reload")
        with open(self.db_path, "wb") as f:
            f.write(b"not a database")
        self.srv.reload()
        h.wait_for(lambda: "reload failed" in self.srv.log(), what="reload failed")
        self.assertIn("geo.mmdb", self.srv.log())
        self.assertEqual(self.vips(self.ask("artifacts.example.com", "9.9.9.0/24")), VIRGINIA)


if __name__ == "__main__":
    unittest.main()
