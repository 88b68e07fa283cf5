#!/usr/bin/env python3
"""GeoIP databases in other layouts than the City one (issue 16), with the
real binary: `steerdns check`, `steerdns serve` and dig +subnet on loopback.

  * A Country-schema database (GeoLite2-Country style: countries and
    continents, no coordinates) places each client at its country's point,
    else its continent's: a French subnet gets paris with a real ECS scope,
    and `explain` says where the location came from.
  * A flat database (IPinfo/DB-IP lite style: country_code, latitude,
    longitude, continent at the top of each record) is read, not called
    corrupt.
  * A database that can place no client is refused by `check` (exit 1) and
    `serve`, naming the file and why; on reload the running server keeps its
    last good world, and picks up a good file again.

The databases are written at build time by tests/geoip/make-schema-test-mmdbs.pl.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from geozones import (COUNTRY_MMDB, EXAMPLE_ZONE, FLAT_MMDB, PARIS, SINGAPORE,  # noqa: E402
                      UNPLACEABLE_MMDB, VIRGINIA, subnet)
from harness import ServerTestCase  # noqa: E402

# `nearest` has a default list unlike any distance order: a client placed by
# no location (the old behaviour with a Country database) gets singapore.
GEO_ZONE = EXAMPLE_ZONE + """
  nearest:
    regions: [paris, virginia, singapore]
    overrides:
      default: [singapore, paris, virginia]
"""

UNPLACEABLE_REASON = ("no network in this database carries a location, a country or a continent; "
                      "steerdns cannot place any client with it")


def geoip_config(path):
    return "geoip:\n  database: %s\n" % path


def run(*args):
    return subprocess.run([h.BIN] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=h.DEADLINE)


class GeoCase(ServerTestCase):
    def ask(self, name, client, qtype="A"):
        r = self.dig(name, qtype, "+subnet=" + client)
        self.assertAnswered(r)
        return r

    def assertPlaced(self, client, vips, name="nearest.example.com"):
        r = self.ask(name, client)
        self.assertEqual(sorted(r.rdatas("A")), vips, r.stdout)
        echoed = subnet(r)
        self.assertIsNotNone(echoed, r.stdout)
        self.assertGreater(echoed[2], 0, "a placed client gets a non-zero ECS scope\n" + r.stdout)
        return echoed[2]

    def explain(self, client):
        out = run("explain", "-c", self.srv.config_path, "nearest.example.com", client)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def assertCheckAccepts(self):
        out = run("check", "-c", self.srv.config_path)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)


class CountryDatabase(GeoCase):
    """A Country-schema database: placed by the built-in country table."""
    SERVER_ARGS = dict(zones={"example.com.yaml": GEO_ZONE}, extra_config=geoip_config(COUNTRY_MMDB))

    def test_check_accepts_it(self):
        self.assertCheckAccepts()

    def test_french_subnet_gets_paris(self):
        # France and Germany (both nearest paris from their points): one /16.
        self.assertEqual(self.assertPlaced("193.51.24.0/24", PARIS), 16)
        self.assertEqual(self.assertPlaced("193.51.200.0/24", PARIS), 16)

    def test_countries_and_continents(self):
        for client, vips in (("8.8.8.0/24", VIRGINIA),        # US: New York
                             ("192.0.2.0/25", VIRGINIA),      # registered country BR: São Paulo
                             ("203.0.113.0/24", SINGAPORE),   # JP: Tokyo
                             ("198.51.100.0/24", PARIS),      # XK, no ISO code: continent EU
                             ("192.0.2.128/25", SINGAPORE)):  # continent OC alone: Sydney
            with self.subTest(client=client):
                self.assertPlaced(client, vips)
        # Unplaced space still gets the default list.
        r = self.ask("nearest.example.com", "10.1.2.0/24")
        self.assertEqual(sorted(r.rdatas("A")), SINGAPORE, r.stdout)

    def test_explain_says_where_the_location_came_from(self):
        out = self.explain("193.51.24.0/24")
        self.assertIn("(country FR, continent EU, location 48.8667, 2.3333 (country FR's point))", out)
        self.assertIn("rule:        distance (from country FR's point: the database gives no location)",
                      out)
        self.assertIn("preference:  paris (1 km)", out)
        self.assertIn("scope:       /16", out)
        out = self.explain("198.51.100.0/24")
        self.assertIn("rule:        distance (from continent EU's point", out)


class FlatDatabase(GeoCase):
    """Flat records, as IPinfo's and DB-IP's lite files lay them out."""
    SERVER_ARGS = dict(zones={"example.com.yaml": GEO_ZONE}, extra_config=geoip_config(FLAT_MMDB))

    def test_check_accepts_it(self):
        self.assertCheckAccepts()

    def test_placement(self):
        self.assertEqual(self.assertPlaced("193.51.24.0/24", PARIS), 16)  # country_code FR (and "de")
        for client, vips in (("8.8.8.0/24", VIRGINIA),        # latitude/longitude: Ashburn
                             ("203.0.113.0/24", SINGAPORE),   # coordinates alone: Tokyo
                             ("1.1.1.0/24", SINGAPORE)):      # continent "Oceania" alone
            with self.subTest(client=client):
                self.assertPlaced(client, vips)
        out = self.explain("8.8.8.0/24")
        self.assertIn("rule:        distance\n", out)  # the record's own coordinates


class UnplaceableDatabase(unittest.TestCase):
    """A database that can place no client is refused at load, with why."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="steerdns-geo-db-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_check_refuses_it(self):
        srv = h.Server({"example.com.yaml": GEO_ZONE}, extra_config=geoip_config(UNPLACEABLE_MMDB))
        os.makedirs(os.path.join(self.tmp, "zones"))
        with open(os.path.join(self.tmp, "zones", "example.com.yaml"), "w") as f:
            f.write(GEO_ZONE)
        config = os.path.join(self.tmp, "steerdns.yaml")
        with open(config, "w") as f:
            f.write(srv.render_config())
        out = run("check", "-c", config)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn(UNPLACEABLE_MMDB + ": " + UNPLACEABLE_REASON, out.stderr)
        self.assertNotIn("corrupt", out.stderr)

    def test_serve_refuses_to_start(self):
        srv = h.Server({"example.com.yaml": GEO_ZONE}, extra_config=geoip_config(UNPLACEABLE_MMDB))
        with self.assertRaises(AssertionError) as cm:
            srv.start()  # fails once the process has exited (start closes it)
        self.assertIn("exited with", str(cm.exception))
        self.assertIn(UNPLACEABLE_MMDB + ": " + UNPLACEABLE_REASON, str(cm.exception))


class DatabaseReload(GeoCase):
    """SIGHUP with an unplaceable database keeps the last good world."""

    @classmethod
    def make_server(cls):
        cls.tmp = tempfile.mkdtemp(prefix="steerdns-geo-db-")
        cls.db_path = os.path.join(cls.tmp, "geo.mmdb")
        shutil.copyfile(COUNTRY_MMDB, cls.db_path)
        return h.Server({"example.com.yaml": GEO_ZONE}, extra_config=geoip_config(cls.db_path))

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def replace_db(self, source):
        shutil.copyfile(source, self.db_path + ".new")
        os.replace(self.db_path + ".new", self.db_path)

    def test_reload(self):
        self.assertPlaced("193.51.24.0/24", PARIS)
        self.assertPlaced("192.0.2.0/25", VIRGINIA)  # BR in the Country database
        self.replace_db(UNPLACEABLE_MMDB)
        ok, text = self.srv.reload_and_wait()
        self.assertFalse(ok, text)
        failed = [ln for ln in text.splitlines() if "reload failed" in ln]
        self.assertEqual(len(failed), 1, text)
        self.assertIn("geo.mmdb: " + UNPLACEABLE_REASON, failed[0])
        # The last good world keeps answering, placed as before.
        self.assertEqual(self.assertPlaced("193.51.24.0/24", PARIS), 16)
        self.assertPlaced("192.0.2.0/25", VIRGINIA)
        # A good (flat) file is picked up again: 192.0.2.0/25 is not in it.
        self.replace_db(FLAT_MMDB)
        ok, text = self.srv.reload_and_wait()
        self.assertTrue(ok, text)
        r = self.ask("nearest.example.com", "192.0.2.0/25")
        self.assertEqual(sorted(r.rdatas("A")), SINGAPORE, r.stdout)
        self.assertPlaced("193.51.24.0/24", PARIS)


if __name__ == "__main__":
    unittest.main()
