"""Shared helpers for the steerdns system tests, as one namespace (not a
test file): `import harness as h` gives everything below.

The helpers live in modules by theme:
  common.py     paths, DEADLINE and wait_for(), free_port(), /proc figures
  dnsserver.py  Server, ServerTestCase, standard_zone()
  clients.py    dig(), dig_multi(), kdig() and their parsed DigResult
  dnswire.py    build_query(), parse_message() and raw UDP/TCP exchanges
and, for the tests that need them:
  backends.py   HTTP(S) backends on the VIPs and a throw-away PKI
  healthcase.py health zones, answers and log lines, HealthCase
  adminapi.py   the admin API (HTTP, /metrics, /status), `steerdns ctl`, AdminCase
  geozones.py   the example zone without checks, geo clients and ECS scopes
  prometheus.py a real Prometheus on loopback scraping steerdns, its HTTP API

Everything talks only to 127.0.0.1 / ::1, every loop is bounded in count and
time, and nothing sleeps a fixed time to wait for something: conditions are
polled with one generous deadline (common.DEADLINE); no test asserts how fast
something happens.
"""

from clients import *  # noqa: F401,F403
from clients import run_client as _run_client  # noqa: F401  (the old name)
from common import *  # noqa: F401,F403
from dnsserver import *  # noqa: F401,F403
from dnswire import *  # noqa: F401,F403
from dnswire import read_name as _read_name  # noqa: F401  (the old name)
