#!/usr/bin/env python3
"""Log lines as operators read and ship them: UTC timestamps with their
offset, syslog priorities when stderr is the journal (JOURNAL_STREAM), and
`logging.format: json` (one object per line), including a reload that
changes the format of the running server. The fields of health events are
tested with health (test_health_state.py).
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from adminapi import ADMIN_CONFIG, TOKEN, TokenServer, http  # noqa: E402
from harness import standard_zone  # noqa: E402

UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"


class JournalServer(h.Server):
    """Starts steerdns with JOURNAL_STREAM naming its stderr (the log file), as
    systemd does when stderr is the journal."""

    journal = False

    def _spawn(self):
        st = os.fstat(self._log.fileno())
        env = dict(os.environ)
        if self.journal:
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        else:
            env.pop("JOURNAL_STREAM", None)
        self.proc = subprocess.Popen([h.BIN, "serve", "-c", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._log, cwd=self.dir, env=env)
        try:
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.close()
            raise


def lines(srv):
    return [line for line in srv.log().splitlines() if line.strip()]


class Text(unittest.TestCase):

    def test_utc_timestamps_with_offset_and_no_prefix_off_the_journal(self):
        with JournalServer({"example.com.yaml": standard_zone()}) as srv:
            out = h.wait_for(lambda: lines(srv), what="a log line")
            for line in out:
                self.assertRegex(line, r"^" + UTC + r" (info|warning|error|debug) ", line)

    def test_journal_lines_carry_syslog_priorities(self):
        class Srv(JournalServer):
            journal = True
        # a reload of a broken zone gives an error line
        with Srv({"example.com.yaml": standard_zone()}) as srv:
            h.wait_for(lambda: any(l.startswith("<6>") for l in lines(srv)), what="an info line")
            srv.write_zone("example.com.yaml", "zone: [")
            srv.proc.send_signal(1)
            h.wait_for(lambda: any(l.startswith("<3>") and "reload failed" in l for l in lines(srv)),
                       what="the reload error at priority 3")
            for line in lines(srv):
                self.assertRegex(line, r"^<[2-7]>" + UTC + " ", line)


class Json(unittest.TestCase):

    def test_one_object_per_line_with_fields(self):
        zone = standard_zone()
        with TokenServer({"example.com.yaml": zone}, logging_options={"format": "json"},
                         extra_config=ADMIN_CONFIG + "  token_file: admin.token\n") as srv:
            h.wait_for(lambda: any("admin API" in l for l in lines(srv)), what="the admin line")
            # a reload that fails logs an error object; one that succeeds too
            srv.write_zone("example.com.yaml", "zone: [")
            r = http(srv, "POST", "/v1/reload", token=TOKEN)
            self.assertGreaterEqual(r.status, 400, r)
            h.wait_for(lambda: any("reload failed" in l for l in lines(srv)), what="the reload error")
            docs = []
            for line in lines(srv):
                doc = json.loads(line)  # every line is one JSON object
                self.assertIsInstance(doc, dict, line)
                self.assertEqual(list(doc)[:3], ["time", "level", "message"], line)
                self.assertRegex(doc["time"], "^" + UTC + "$")
                self.assertIn(doc["level"], ("debug", "info", "warning", "error", "critical"))
                docs.append(doc)
            self.assertTrue(any(d["level"] == "error" and "reload failed" in d["message"] for d in docs))

    def test_a_reload_switches_the_format(self):
        with h.Server({"example.com.yaml": standard_zone()}) as srv:
            h.wait_for(lambda: lines(srv), what="a log line")
            self.assertFalse(lines(srv)[0].startswith("{"))
            srv.logging_options = {"format": "json"}
            srv.write_config()
            srv.proc.send_signal(1)
            h.wait_for(lambda: any(l.startswith("{") and "reloaded" in l for l in lines(srv)),
                       what="a JSON line after the reload")

    def test_a_bad_format_is_refused_with_the_line(self):
        with tempfile.TemporaryDirectory(prefix="steerdns-test-") as d:
            with open(os.path.join(d, "example.com.yaml"), "w") as f:
                f.write(standard_zone())
            path = os.path.join(d, "steerdns.yaml")
            with open(path, "w") as f:
                f.write("server:\n  listen: [127.0.0.1:53]\nzones: [example.com.yaml]\n"
                        "logging:\n  level: info\n  format: xml\n")
            p = subprocess.run([h.BIN, "check", "-c", path], capture_output=True, text=True,
                               timeout=h.DEADLINE)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn(path + ":6: format 'xml' is not one of text, json", p.stderr)


if __name__ == "__main__":
    unittest.main()
