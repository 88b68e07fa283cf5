#!/usr/bin/env python3
"""Health state (issue #4): operator overrides in the watched state file
(regions and VIPs forced down or up, applied without a reload, a bad edit
keeping the previous overrides), overrides surviving a restart, and SIGHUP
keeping the state of unchanged checks while starting new ones and stopping
removed ones.

Real HTTP backends (tests/system/backends.py) listen on the VIP addresses
(127.1.0.x paris, 127.2.0.x virginia, 127.3.0.x singapore); probes run every
second (timeout 500 ms, rise 2, fall 2, no jitter).  Every wait polls with
one generous deadline (common.DEADLINE) and never sleeps a fixed time.
"""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import backends as bk  # noqa: E402
import harness as h  # noqa: E402
from healthcase import (ALL_VIPS, DEGRADED_TTL, NAME, PARIS, PARIS_CLIENT, TTL,  # noqa: E402
                        VIRGINIA, VIRGINIA_CLIENT, HealthCase, ask, check, geo_name, state_text,
                        tail, vip_lines, vips_of, wait_answer, zone_text)


# ---------------------------------------------------------------------------
# 8: operator overrides in the state file


STATE_CONFIG = "health:\n  state_file: %s\n"


class StateFileServer(h.Server):
    """A Server whose folder holds overrides.yaml before steerdns starts."""

    def __init__(self, *args, state=None, **kw):
        super().__init__(*args, **kw)
        self.initial_state = state if state is not None else state_text()

    @property
    def state_path(self):
        return os.path.join(self.dir, "overrides.yaml")

    def write_config(self):
        super().write_config()
        if not os.path.exists(self.state_path):
            self.write_file(self.state_path, self.initial_state)

    def write_state(self, text):
        self.write_file(self.state_path, text)


def overrides_zone(port):
    """`steady` has no check (always up); `dead` probes a port nobody listens on."""
    return zone_text({"steady": geo_name(),
                      "dead": geo_name(check(port), all_down="serve-nearest")})


STEADY = "steady.example.com"
DEAD = "dead.example.com"


class Overrides(HealthCase):

    @classmethod
    def make_backends(cls):
        return []

    @classmethod
    def make_server(cls):
        return StateFileServer({"example.com.yaml": overrides_zone(cls.port)},
                               extra_config=STATE_CONFIG % "overrides.yaml")

    def setUp(self):
        self.srv.write_state(state_text())
        wait_answer(self.srv, STEADY, PARIS_CLIENT, PARIS, ttl=TTL)
        wait_answer(self.srv, DEAD, PARIS_CLIENT, PARIS, ttl=DEGRADED_TTL)

    def test_force_region_down(self):
        srv = self.srv
        srv.write_state(state_text(regions={"paris": "down"}))
        wait_answer(srv, STEADY, PARIS_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)
        # serve-nearest skips a region forced down
        self.answer(DEAD, PARIS_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)
        self.assertNotIn("reloaded", srv.log())
        srv.write_state(state_text())
        wait_answer(srv, STEADY, PARIS_CLIENT, PARIS, ttl=TTL)
        self.answer(DEAD, PARIS_CLIENT, PARIS, ttl=DEGRADED_TTL)

    def test_forced_down_vip_is_never_served(self):
        srv = self.srv
        srv.write_state(state_text(vips={"127.1.0.1": "down"}))
        wait_answer(srv, STEADY, PARIS_CLIENT, ["127.1.0.2"], ttl=DEGRADED_TTL)
        # everything is down for `dead`: serve-nearest still leaves 127.1.0.1 out
        self.answer(DEAD, PARIS_CLIENT, ["127.1.0.2"], ttl=DEGRADED_TTL)
        self.answer(DEAD, VIRGINIA_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)
        srv.write_state(state_text())
        wait_answer(srv, DEAD, PARIS_CLIENT, PARIS, ttl=DEGRADED_TTL)

    def test_bad_edit_keeps_previous_overrides(self):
        srv = self.srv
        srv.write_state(state_text(regions={"paris": "down"}))
        wait_answer(srv, STEADY, PARIS_CLIENT, VIRGINIA)
        mark = len(srv.log())
        srv.write_state("regions:\n  paris: sideways\n")
        h.wait_for(lambda: re.search(r"overrides\.yaml:2:.*sideways", srv.log()[mark:]),
                   what="the state file's error with file:line")
        self.answer(STEADY, PARIS_CLIENT, VIRGINIA)
        self.assertTrue(srv.alive())

    def test_forced_up_vip_is_served(self):
        srv = self.srv
        srv.write_state(state_text(vips={"127.2.0.1": "up"}))
        # virginia has one up VIP (threshold 1): the first region up for paris clients
        wait_answer(srv, DEAD, PARIS_CLIENT, ["127.2.0.1"], ttl=DEGRADED_TTL)
        self.answer(STEADY, PARIS_CLIENT, PARIS, ttl=TTL)


class OverridesSurviveRestart(unittest.TestCase):

    def test_restart_keeps_override(self):
        port = h.free_port(tuple(ALL_VIPS))
        zones = {"example.com.yaml": overrides_zone(port)}
        first = h.Server(zones, extra_config=STATE_CONFIG % "overrides.yaml")
        second = None
        try:
            first.start()
            # No state file yet: no overrides; creating it applies at once.
            self.assertEqual(vips_of(ask(first, STEADY, PARIS_CLIENT)), PARIS, first.log())
            state_path = os.path.join(first.dir, "overrides.yaml")
            first.write_file(state_path, state_text(regions={"paris": "down"}))
            wait_answer(first, STEADY, PARIS_CLIENT, VIRGINIA, ttl=DEGRADED_TTL)
            self.assertEqual(first.stop(), 0, first.all_output())
            # Same state file (by absolute path), a fresh process.
            second = h.Server(zones, extra_config=STATE_CONFIG % state_path)
            second.start()
            r = ask(second, STEADY, PARIS_CLIENT)
            self.assertEqual(vips_of(r), VIRGINIA, r.stdout + "\n" + second.all_output())
        finally:
            if second is not None:
                second.close()
            first.close()


# ---------------------------------------------------------------------------
# 9: SIGHUP keeps the state of unchanged checks, starts new ones, stops removed ones


class ReloadKeepsState(HealthCase):

    @classmethod
    def make_backends(cls):
        main = bk.Backends(ALL_VIPS, cls.port, running={"127.1.0.1": False})
        new = bk.Backends(["127.1.0.1"], cls.port2)
        return [main, new]

    @classmethod
    def geo(cls, with_new=False):
        g = {"artifacts": geo_name(check(cls.port))}
        if with_new:
            g["newsvc"] = geo_name(check(cls.port2))
        return g

    @classmethod
    def make_zone(cls):
        return zone_text(cls.geo())

    def wait_rounds(self, since, rounds, seen):
        """Wait (bounded) until 127.1.0.2 got `rounds` more probes, digging meanwhile."""
        b = self.backends["127.1.0.2"]

        def cond():
            seen.append(vips_of(ask(self.srv, NAME, PARIS_CLIENT)))
            return b.count(since=since) >= rounds
        h.wait_for(cond, interval=0.1, what="%d more probe rounds" % rounds)

    def test_reload(self):
        srv = self.srv
        wait_answer(srv, NAME, PARIS_CLIENT, ["127.1.0.2"], ttl=DEGRADED_TTL)

        # 1. Unchanged zone: 127.1.0.1 stays out, no transition is logged.
        mark = len(srv.log())
        ok, text = srv.reload_and_wait()
        self.assertTrue(ok, text)
        reloaded = time.monotonic()
        seen = [vips_of(ask(srv, NAME, PARIS_CLIENT))]
        self.wait_rounds(reloaded, 3, seen)
        self.assertEqual([v for v in seen if v != ["127.1.0.2"]], [],
                         "answers flapped after the reload:\n" + tail(srv.log()[mark:]))
        flaps = vip_lines(srv.log()[mark:], "127.1.0.1")
        self.assertEqual(flaps, [], "a transition was logged after the reload")

        # 2. A new geo name with its own check: started; the old check keeps its state.
        srv.write_zone("example.com.yaml", zone_text(self.geo(with_new=True)))
        ok, text = srv.reload_and_wait()
        self.assertTrue(ok, text)
        self.answer(NAME, PARIS_CLIENT, ["127.1.0.2"], ttl=DEGRADED_TTL)
        wait_answer(srv, "newsvc.example.com", PARIS_CLIENT, ["127.1.0.1"], ttl=DEGRADED_TTL)
        self.assertGreater(self.groups[1]["127.1.0.1"].count(), 0)

        # 3. Removed again: its probes stop.
        srv.write_zone("example.com.yaml", zone_text(self.geo()))
        ok, text = srv.reload_and_wait()
        self.assertTrue(ok, text)
        removed = time.monotonic()
        r = ask(srv, "newsvc.example.com", PARIS_CLIENT)
        self.assertEqual(r.status, "NXDOMAIN", r.stdout)
        seen = []
        self.wait_rounds(removed, 3, seen)
        self.assertEqual([v for v in seen if v != ["127.1.0.2"]], [])
        self.assertLessEqual(self.groups[1]["127.1.0.1"].count(since=removed), 1,
                             "the removed check is still probing")


if __name__ == "__main__":
    unittest.main()
