"""Geo helpers for the steerdns system tests (not a test file): the example
zone without its health checks (placement alone), the test databases (City,
Country, flat and unplaceable), the regions' VIPs and the ECS scope of a dig
answer."""

import os
import re

from common import SOURCE

TEST_MMDB = os.path.abspath(os.environ.get("STEERDNS_TEST_MMDB",
                                           os.path.join(SOURCE, "build", "tests", "test-city.mmdb")))
WORLD_MMDB = os.path.join(SOURCE, "geoip", "data", "steerdns-world.mmdb")
# Written next to TEST_MMDB by tests/geoip/make-schema-test-mmdbs.pl: a
# Country-schema database (no coordinates), a flat one (IPinfo/DB-IP lite
# layout) and one that can place no client (ASN records only).
COUNTRY_MMDB = os.path.join(os.path.dirname(TEST_MMDB), "test-country.mmdb")
FLAT_MMDB = os.path.join(os.path.dirname(TEST_MMDB), "test-flat.mmdb")
UNPLACEABLE_MMDB = os.path.join(os.path.dirname(TEST_MMDB), "test-unplaceable.mmdb")


def without_checks(zone):
    """The zone without its health check: placement alone is tested here
    (the health tests probe real backends)."""
    return re.sub(r"\n    check:\n(      .*\n)+", "\n", zone)


with open(os.path.join(SOURCE, "examples", "zones", "example.com.yaml")) as _f:
    EXAMPLE_ZONE = without_checks(_f.read())

PARIS = ["127.1.0.1", "127.1.0.2"]
VIRGINIA = ["127.2.0.1", "127.2.0.2"]
SINGAPORE = ["127.3.0.1", "127.3.0.2"]


def subnet(result):
    """(address, source, scope) of the reply's CLIENT-SUBNET option, or None."""
    m = re.search(r"CLIENT-SUBNET: ([0-9a-fA-F.:]+)/(\d+)/(\d+)", result.stdout)
    return (m.group(1), int(m.group(2)), int(m.group(3))) if m else None
