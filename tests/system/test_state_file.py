#!/usr/bin/env python3
"""The state file's rules (issue #16), the same at start, at run time and in
`check`: a bad entry (`paris: drained`) or an unreadable file never stops a
start, is logged with file:line and shown in /status, and keeps the last
good state of that entry (state.yaml.last-good, across restarts too); an override of a region or VIP no geo name has
(`pariss: down`) is ignored loudly (an error line, /status `ignored`, not in
steerdns_override) and fails `check`. Drains carry who and why: `ctl drain
--reason/--by`, the API's `reason`/`by`, kept in the state file across a
restart, logged, and shown by /status and `ctl status`.

No health checks here (geo name `steady`, VIPs always up): 127.1.0.x paris,
127.2.0.x virginia, 127.3.0.x singapore. Every wait polls with one deadline
(common.DEADLINE); nothing sleeps.
"""

import os
import pwd
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from adminapi import (ADMIN_CONFIG, PARIS, PARIS_CLIENT, STATE_CONFIG, STEADY, VIRGINIA,  # noqa: E402
                      VIRGINIA_CLIENT, ask, ctl, forced, http, parse_time, region_entry, scrape,
                      status_doc, vip_entry, zone_text)
from healthcase import vips_of  # noqa: E402

BAD = ("regions:\n"
       "  paris: drained\n"
       "  pariss: down\n"
       "vips:\n"
       "  127.2.0.1: down\n")


class StateServer(h.Server):
    """steerdns with the admin API and state.yaml written before it starts."""

    def __init__(self, state):
        super().__init__({"example.com.yaml": zone_text()}, extra_config=ADMIN_CONFIG + STATE_CONFIG)
        self.initial_state = state

    @property
    def state_path(self):
        return os.path.join(self.dir, "state.yaml")

    def write_config(self):
        super().write_config()
        if not os.path.exists(self.state_path):
            self.write_file(self.state_path, self.initial_state)


def check(srv):
    p = subprocess.run([h.BIN, "check", "-c", srv.config_path], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=h.DEADLINE)
    return p.returncode, p.stdout + p.stderr


def login_name():
    return os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name


class BadStateFile(unittest.TestCase):

    def start(self, state):
        srv = StateServer(state)
        self.addCleanup(srv.close)
        srv.start()
        return srv

    def test_bad_entries_never_stop_a_start_and_fail_check(self):
        srv = self.start(BAD)
        self.assertTrue(srv.alive())
        log = srv.log()
        self.assertRegex(log, r"state\.yaml:2: regions paris: 'drained' is not up or down; not applied")
        self.assertRegex(log, r"error.*forces region pariss, which no geo name has: ignored")
        # What could be read applies; paris (bad) and pariss (unknown) do not.
        self.assertEqual(vips_of(ask(srv, STEADY, PARIS_CLIENT)), PARIS)
        self.assertEqual(vips_of(ask(srv, STEADY, VIRGINIA_CLIENT)), [v for v in VIRGINIA if v != "127.2.0.1"])
        doc = status_doc(srv)
        self.assertEqual(forced(doc), {"regions": {}, "vips": {"127.2.0.1": "down"}})
        self.assertEqual(doc["overrides"]["ignored"], ["region pariss"])
        self.assertEqual(len(doc["overrides"]["state_file_problems"]), 1, doc["overrides"])
        self.assertIn("state.yaml:2:", doc["overrides"]["state_file_problems"][0])
        metrics = scrape(srv)
        overrides = metrics.series("steerdns_override")
        self.assertEqual([dict(k)["target"] for k in overrides], ["127.2.0.1"], overrides)
        self.assertEqual(metrics.value("steerdns_state_file_problems", kind="entry"), 1)
        self.assertEqual(metrics.value("steerdns_state_file_problems", kind="unknown"), 1)
        rc, out = check(srv)
        self.assertEqual(rc, 1, out)
        self.assertIn("state.yaml:2: regions paris: 'drained' is not up or down", out)
        self.assertIn("state.yaml:3: regions pariss: no geo name has this region; serve ignores it", out)

        # Mended: applies at once (the file is watched); nothing is left ignored.
        srv.write_file(srv.state_path, "regions:\n  paris: down\n")
        h.wait_for(lambda: vips_of(ask(srv, STEADY, PARIS_CLIENT)) == VIRGINIA, what="paris drained")
        doc = status_doc(srv)
        self.assertEqual(forced(doc), {"regions": {"paris": "down"}, "vips": {}})
        self.assertEqual(doc["overrides"]["ignored"], [])
        self.assertEqual(doc["overrides"]["state_file_problems"], [])
        self.assertEqual(scrape(srv).value("steerdns_state_file_problems", kind="entry"), 0)
        self.assertEqual(scrape(srv).value("steerdns_state_file_problems", kind="unknown"), 0)
        self.assertEqual(check(srv)[0], 0)

        # A bad edit of a running server: the entry keeps its last good state.
        mark = len(srv.log())
        srv.write_file(srv.state_path, "regions:\n  paris: drained\n")
        h.wait_for(lambda: "keeping the last good state, down" in srv.log()[mark:], what="the bad edit's error")
        self.assertEqual(vips_of(ask(srv, STEADY, PARIS_CLIENT)), VIRGINIA)
        # ... and a restart with that file serves what the running server did
        # (state.yaml.last-good holds the overrides in force).
        srv.restart()
        self.assertEqual(vips_of(ask(srv, STEADY, PARIS_CLIENT)), VIRGINIA)
        self.assertIn("keeping the last good state, down", srv.log()[mark:])
        self.assertEqual(forced(status_doc(srv)), {"regions": {"paris": "down"}, "vips": {}})

    def test_an_unreadable_state_file_starts_without_overrides(self):
        srv = self.start("regions: {paris: down\n")
        self.assertRegex(srv.log(), r"state file not applied, keeping the last good overrides: \S*state\.yaml:\d+")
        self.assertEqual(vips_of(ask(srv, STEADY, PARIS_CLIENT)), PARIS)
        doc = status_doc(srv)
        self.assertEqual(forced(doc), {"regions": {}, "vips": {}})
        self.assertRegex(doc["overrides"]["state_file_problems"][0], r"state\.yaml:\d+")
        rc, out = check(srv)
        self.assertEqual(rc, 1, out)
        self.assertIn("state.yaml", out)


class DrainsCarryWhoAndWhy(unittest.TestCase):

    def test_ctl_drain_with_reason_is_kept_logged_and_shown(self):
        srv = StateServer("")
        self.addCleanup(srv.close)
        srv.start()
        reason = "CHG-42: kernel 6.1"
        rc, out, err = ctl("-c", srv.config_path, "drain", "paris", "--reason", reason)
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.strip(), "region paris: forced down")
        self.assertEqual(vips_of(ask(srv, STEADY, PARIS_CLIENT)), VIRGINIA)
        rc, out, err = ctl("-c", srv.config_path, "drain", "127.2.0.1", "--by", "ops-bot")
        self.assertEqual(rc, 0, out + err)

        def notes_shown():
            doc = status_doc(srv)
            note = region_entry(doc, STEADY, "paris")["override_note"]
            self.assertEqual(note["reason"], reason)
            self.assertEqual(note["by"], login_name())
            self.assertGreater(parse_time(note["since"]), 0)
            vip_note = vip_entry(doc, STEADY, "127.2.0.1")["override_note"]
            self.assertEqual((vip_note["by"], vip_note["reason"]), ("ops-bot", None))
            self.assertEqual(doc["overrides"]["notes"]["region paris"], note)
            return note

        note = notes_shown()
        log = srv.log()
        self.assertRegex(log, r'region paris forced down by the admin API .*reason="CHG-42: kernel 6.1"')
        self.assertRegex(log, r"VIP 127\.2\.0\.1 forced down by the admin API .*by=ops-bot")
        with open(srv.state_path) as f:
            self.assertIn(reason, f.read())
        rc, out, err = ctl("-c", srv.config_path, "status")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("forced down by %s at %s: %s" % (login_name(), note["since"], reason), out)
        self.assertRegex(out, r"127\.2\.0\.1 +unchecked \(forced down\)\n +forced down by ops-bot at ")

        # Kept across a restart, from the state file.
        srv.restart()
        self.assertEqual(notes_shown(), note)
        self.assertEqual(check(srv)[0], 0)

        # Refused: a reason that is not a string; nothing changes.
        r = http(srv, "PUT", "/v1/overrides/regions/virginia", {"state": "down", "reason": 5})
        self.assertEqual(r.status, 400, r)
        self.assertIn("reason must be a string", r.json()["error"])
        self.assertEqual(forced(status_doc(srv))["regions"], {"paris": "down"})
        # Undrained: the note goes with the override.
        rc, out, err = ctl("-c", srv.config_path, "undrain", "paris")
        self.assertEqual(rc, 0, out + err)
        self.assertNotIn("region paris", status_doc(srv)["overrides"]["notes"])
        with open(srv.state_path) as f:
            self.assertNotIn(reason, f.read())
        self.assertFalse(re.search(r"paris", forced(status_doc(srv))["regions"].__repr__()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
