#!/usr/bin/env python3
"""Region-level log lines (issue #16): when health or a drain moves clients,
the log says which region of which geo name went down, with its counts and
threshold and where its clients go now; when it comes back; when a geo
name's all-down policy fires and clears; and when a down VIP's reason
changes. Each line is an event with fields (name, region, vips_up,
vips_total, threshold, failover, policy).

Real HTTP backends on the VIPs (127.1.0.x paris, 127.2.0.x virginia,
127.3.0.x singapore), checks every second with fall 1 / rise 1. Every wait
polls the log with one deadline (common.DEADLINE); nothing sleeps.
"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from adminapi import AdminCase, NAME, drain, undrain  # noqa: E402

OWNER = NAME + "."


class RegionLogs(AdminCase):

    def wait_line(self, pattern, since):
        found = []

        def seen():
            found[:] = re.findall(pattern, self.srv.log()[since:], re.M)
            return found
        h.wait_for(seen, what="a log line matching %r" % pattern)
        return found[0]

    def test_region_down_up_and_all_down(self):
        srv = self.srv
        mark = len(srv.log())
        self.backends["127.1.0.1"].stop()
        self.backends["127.1.0.2"].stop()
        line = self.wait_line(r"^.*health: region paris of %s down: .*$" % re.escape(OWNER), mark)
        self.assertIn("down: 0 of 2 VIPs up, below threshold 1; its clients fail over to virginia", line)
        for field in ("name=%s" % OWNER, "region=paris", "vips_up=0", "vips_total=2", "threshold=1",
                      "failover=virginia"):
            self.assertIn(field, line)
        # `steady` has no checks: nothing about it.
        self.assertNotIn("of steady.example.com. down", srv.log()[mark:])

        # Every region down: the all-down policy fires, then clears.
        mark = len(srv.log())
        for vip in ("127.2.0.1", "127.2.0.2", "127.3.0.1", "127.3.0.2"):
            self.backends[vip].stop()
        line = self.wait_line(r"^.*health: all-down policy serve-nearest fired for %s.*$" % re.escape(OWNER),
                              mark)
        self.assertRegex(line, r"\berror\b")
        self.assertIn("policy=serve-nearest", line)
        down = self.wait_line(r"^.*health: region singapore of %s down: .*$" % re.escape(OWNER), mark)
        self.assertIn("its clients fail over to", down)
        mark = len(srv.log())
        self.backends["127.2.0.1"].start()
        self.wait_line(r"^.*health: all-down policy of %s cleared.*$" % re.escape(OWNER), mark)
        up = self.wait_line(r"^.*health: region virginia of %s up: .*$" % re.escape(OWNER), mark)
        self.assertIn("up: 1 of 2 VIPs up (threshold 1)", up)
        # Each change is said once.
        self.all_healthy()
        log = srv.log()[mark:]
        self.assertEqual(len(re.findall(r"region virginia of %s up" % re.escape(OWNER), log)), 1, log)

    def test_a_drain_says_where_the_clients_go(self):
        srv = self.srv
        self.addCleanup(self.clear_overrides)
        mark = len(srv.log())
        self.assertEqual(drain(srv, "regions", "paris").status, 200)
        line = self.wait_line(r"^.*health: region paris of %s down: .*$" % re.escape(OWNER), mark)
        self.assertIn("down: forced down; its clients fail over to virginia", line)
        self.wait_line(r"^.*health: region paris of steady\.example\.com\. down: forced down.*$", mark)
        self.assertEqual(undrain(srv, "regions", "paris").status, 200)
        self.wait_line(r"^.*health: region paris of %s up: 2 of 2 VIPs up.*$" % re.escape(OWNER), mark)

    def test_a_down_vips_new_reason_is_logged(self):
        srv = self.srv
        b = self.backends["127.3.0.1"]
        mark = len(srv.log())
        b.stop()  # connection refused
        self.wait_line(r"^.*health: 127\.3\.0\.1 .*down.*refused.*$", mark)
        mark = len(srv.log())
        b.set_mode("unhealthy")
        b.start()  # answers now, with a failing status
        line = self.wait_line(r"^.*health: 127\.3\.0\.1 \[.*\] still down: .* now, was refused.*$", mark)
        self.assertIn("vip=127.3.0.1", line)
        self.assertRegex(line, r"reason=\S+")


if __name__ == "__main__":
    unittest.main(verbosity=2)
