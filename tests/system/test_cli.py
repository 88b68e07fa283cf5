#!/usr/bin/env python3
"""The steerdns command line: --version, --help, `check` on good and bad
configurations (exit codes, `file:line: reason` messages) and the signals of
`serve` (SIGTERM / SIGINT exit 0, bad config / busy port exit non-zero)."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import Server, standard_zone  # noqa: E402

ZF = "example.com.yaml"

GOOD_CONFIG = """\
server:
  listen:
    - 127.0.0.1:{port}
  workers: 2
  edns_payload: 1232
  tcp:
    max_connections: 1024
    idle_timeout: 5s
    max_pipelined: 64
zones:
  - zones/example.com.yaml
logging:
  level: info
  query_log: false
"""


def run(args, timeout=20, cwd="/"):
    h.require_binary()
    p = subprocess.run([h.BIN] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def insert_after(text, prefix, new_lines):
    """Insert lines after the first line starting with prefix; return (text, lineno of first)."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith(prefix):
            lines[i + 1:i + 1] = [ln + "\n" for ln in new_lines]
            return "".join(lines), i + 2
    raise ValueError(prefix)


def line_of(text, needle):
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise ValueError(needle)


class CheckDir:
    """A temp dir with steerdns.yaml + zones/<files>, for `steerdns check`."""

    def __init__(self, config=None, zones=None, port=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="steerdns-cli-")
        self.dir = self.tmp.name
        self.port = port or h.free_port()
        os.makedirs(os.path.join(self.dir, "zones"))
        self.config = os.path.join(self.dir, "steerdns.yaml")
        self.write("steerdns.yaml", (config or GOOD_CONFIG).replace("{port}", str(self.port)))
        for name, text in (zones if zones is not None else {ZF: standard_zone()}).items():
            self.write(os.path.join("zones", name), text)

    def write(self, rel, text):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def check(self, cwd="/"):
        return run(["check", "-c", self.config], cwd=cwd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.tmp.cleanup()


class Basics(unittest.TestCase):

    def test_version(self):
        rc, out, err = run(["--version"])
        self.assertEqual(rc, 0, out + err)
        self.assertTrue(any(ln.startswith("steerdns ") for ln in out.splitlines()),
                        "stdout: %r stderr: %r" % (out, err))

    def test_help(self):
        rc, out, err = run(["--help"])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("serve", out + err)
        self.assertIn("check", out + err)

    def test_unknown_command_fails(self):
        rc, out, err = run(["frobnicate"])
        self.assertEqual(rc, 2, out + err)
        self.assertIn("unknown command 'frobnicate'", err)

    def test_usage_errors_exit_2(self):
        """Not CLI11's own codes (106, 109, 114): 2, as usage errors do."""
        for args in ([], ["check"], ["check", "-c"], ["serve", "--bogus", "-c", "x"],
                     ["explain", "-c", "x"]):
            rc, out, err = run(args)
            self.assertEqual(rc, 2, "%r: %s%s" % (args, out, err))
            self.assertTrue(err.strip(), "%r says why" % (args,))

    def test_ctl_says_why_the_api_cannot_be_reached(self):
        port = h.free_port()
        rc, out, err = run(["ctl", "--admin", "127.0.0.1:%d" % port, "status"])
        self.assertEqual(rc, 2, out + err)
        self.assertIn("cannot reach the admin API at http://127.0.0.1:%d/: cannot connect: "
                      "Connection refused" % port, err)

    def test_check_missing_config_file(self):
        rc, out, err = run(["check", "-c", "/nonexistent/steerdns.yaml"])
        self.assertEqual(rc, 1, out + err)
        self.assertIn("/nonexistent/steerdns.yaml", err)


class CheckGood(unittest.TestCase):

    def assertCheckOk(self, d, cwd="/"):
        rc, out, err = d.check(cwd)
        self.assertEqual(rc, 0, "check failed:\n" + out + err)

    def test_good_config(self):
        with CheckDir() as d:
            self.assertCheckOk(d)

    def test_relative_config_path(self):
        with CheckDir() as d:
            rc, out, err = run(["check", "-c", "steerdns.yaml"], cwd=d.dir)
            self.assertEqual(rc, 0, out + err)

    def test_shipped_example(self):
        rc, out, err = run(["check", "-c", os.path.join(h.REPO, "examples", "steerdns.yaml")])
        self.assertEqual(rc, 0, out + err)

    def test_check_binds_nothing(self):
        with CheckDir() as d:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                u.bind(("127.0.0.1", d.port))
                t.bind(("127.0.0.1", d.port))
                t.listen(1)
                self.assertCheckOk(d)
            finally:
                u.close()
                t.close()

    def test_config_variants(self):
        variants = {
            "durations in ms": GOOD_CONFIG.replace("idle_timeout: 5s", "idle_timeout: 500ms"),
            "durations in minutes": GOOD_CONFIG.replace("idle_timeout: 5s", "idle_timeout: 2m"),
            "workers 0": GOOD_CONFIG.replace("workers: 2", "workers: 0"),
            "listen map": GOOD_CONFIG.replace(
                "    - 127.0.0.1:{port}",
                '    - {address: "127.0.0.1:{port}", transport: udp}\n'
                '    - {address: "127.0.0.1:{port}", transport: tcp}'),
            "ipv6 listen": GOOD_CONFIG.replace("    - 127.0.0.1:{port}",
                                               '    - 127.0.0.1:{port}\n    - "[::1]:{port}"'),
            "zones directory": GOOD_CONFIG.replace("zones:\n  - zones/example.com.yaml",
                                                   "zones: zones"),
            "edns 512": GOOD_CONFIG.replace("edns_payload: 1232", "edns_payload: 512"),
            "edns 4096": GOOD_CONFIG.replace("edns_payload: 1232", "edns_payload: 4096"),
        }
        for name, cfg in variants.items():
            with self.subTest(variant=name):
                self.assertNotEqual(cfg, GOOD_CONFIG)
                with CheckDir(cfg) as d:
                    self.assertCheckOk(d)

    def test_zone_variants(self):
        extra = {
            "every type": (
                "  srv:\n    SRV: 0 5 5060 sip\n"
                "  caa:\n    CAA: 0 issue \"ca.example.net\"\n"
                "  ptr:\n    PTR: www\n"
                "  abs.example.com.:\n    A: 192.0.2.77\n"
                "  rrttl:\n    A: {ttl: 60, data: [192.0.2.1, 192.0.2.2]}\n"
                "  quoted:\n    TXT: '\"a b\" \"c\"'\n"
                "  long:\n    TXT: " + "x" * 600 + "\n"
            ),
        }
        for name, records in extra.items():
            with self.subTest(variant=name):
                with CheckDir(zones={ZF: standard_zone(extra_records=records)}) as d:
                    self.assertCheckOk(d)
        no_ttl = "\n".join(ln for ln in standard_zone().splitlines()
                           if not ln.startswith("ttl:")) + "\n"
        with CheckDir(zones={ZF: no_ttl}) as d:
            self.assertCheckOk(d)
        with CheckDir(zones={ZF: standard_zone(serial="auto")}) as d:
            self.assertCheckOk(d)


class CheckBad(unittest.TestCase):
    """Each broken file: exit code 1, `<file>:<line>:` and the culprit named."""

    def assertCheckFails(self, d, file_name, lines, *needles):
        rc, out, err = d.check()
        self.assertEqual(rc, 1, "check must exit 1\nstdout:%s\nstderr:%s" % (out, err))
        if isinstance(lines, int):
            lines = [lines]
        if lines is None:
            pat = r"%s:(\d+):" % re.escape(file_name)
        else:
            pat = r"%s:(%s):" % (re.escape(file_name), "|".join(str(n) for n in lines))
        m = [ln for ln in err.splitlines() if re.search(pat, ln)]
        self.assertTrue(m, "stderr lacks %s:%s:\n%s" % (file_name, lines, err))
        for needle in needles:
            self.assertTrue(any(re.search(needle, ln) for ln in m),
                            "error should name %r:\n%s" % (needle, err))
        return err

    # main config ---------------------------------------------------------------
    def test_unknown_key_in_main_config(self):
        cfg, line = insert_after(GOOD_CONFIG, "  workers:", ["  colour: blue"])
        with CheckDir(cfg) as d:
            self.assertCheckFails(d, "steerdns.yaml", line, "colour")

    def test_unknown_top_level_key_in_main_config(self):
        cfg = GOOD_CONFIG + "colour: blue\n"
        with CheckDir(cfg) as d:
            self.assertCheckFails(d, "steerdns.yaml", line_of(cfg, "colour"), "colour")

    def test_edns_payload_out_of_range(self):
        for value in ("100", "65535"):
            with self.subTest(value=value):
                cfg = GOOD_CONFIG.replace("edns_payload: 1232", "edns_payload: " + value)
                with CheckDir(cfg) as d:
                    self.assertCheckFails(d, "steerdns.yaml", line_of(cfg, "edns_payload"),
                                          "edns_payload|" + value)

    def test_bad_listen_port(self):
        cfg = GOOD_CONFIG.replace("    - 127.0.0.1:{port}", "    - 127.0.0.1:99999")
        with CheckDir(cfg) as d:
            self.assertCheckFails(d, "steerdns.yaml", line_of(cfg, "99999"), "99999")

    def test_bad_duration(self):
        cfg = GOOD_CONFIG.replace("idle_timeout: 5s", "idle_timeout: 5 parsecs")
        with CheckDir(cfg) as d:
            self.assertCheckFails(d, "steerdns.yaml", line_of(cfg, "parsecs"),
                                  "idle_timeout|parsecs")

    def test_duration_without_unit(self):
        """Issue 16: `interval: 2000` once meant 2000 s (HAProxy users write
        milliseconds); a bare number is refused with both readings."""
        cfg = GOOD_CONFIG.replace("idle_timeout: 5s", "idle_timeout: 5")
        with CheckDir(cfg) as d:
            self.assertCheckFails(d, "steerdns.yaml", line_of(cfg, "idle_timeout"),
                                  "has no unit: write 5ms or 5s")

    def test_missing_zone_file(self):
        cfg = GOOD_CONFIG.replace("zones/example.com.yaml", "zones/missing.yaml")
        with CheckDir(cfg) as d:
            rc, out, err = d.check()
            self.assertEqual(rc, 1, out + err)
            self.assertIn("missing.yaml", err)

    def test_yaml_syntax_error(self):
        cfg = GOOD_CONFIG.replace("workers: 2", "workers: [2")
        with CheckDir(cfg) as d:
            self.assertCheckFails(d, "steerdns.yaml", None)

    # zone files ----------------------------------------------------------------
    def zone_check(self, text, lines, *needles):
        with CheckDir(zones={ZF: text}) as d:
            return self.assertCheckFails(d, ZF, lines, *needles)

    def test_a_tab_in_the_indentation_is_named(self):
        text = standard_zone() + "regions:\n  paris:\n\tlocation: [48.86, 2.35]\n"
        line = text.count("\n", 0, text.index("\tlocation:")) + 1
        self.zone_check(text, line, "a tab in the indentation; YAML indents with spaces only")

    def test_a_ca_bundle_without_a_certificate_is_refused(self):
        text = standard_zone() + (
            "regions:\n  paris: {location: [48.86, 2.35], vips: [127.1.0.1]}\n"
            "geo:\n  svc:\n    regions: [paris]\n"
            "    check: {type: https, port: 8443, path: /, ca: ca.pem}\n")
        line = text.count("\n", 0, text.index("    check:")) + 1
        with CheckDir(zones={ZF: text}) as d:
            d.write(os.path.join("zones", "ca.pem"), "not a certificate\n")
            self.assertCheckFails(d, ZF, line, "holds no PEM certificate: every HTTPS probe would fail")

    def test_unknown_key_in_zone(self):
        text, line = insert_after(standard_zone(), "ttl:", ["colour: red"])
        self.zone_check(text, line, "colour")

    def test_unknown_key_in_soa(self):
        text, line = insert_after(standard_zone(), "  retry:", ["  colour: red"])
        self.zone_check(text, line, "colour")

    def test_bad_a_data(self):
        text = standard_zone(extra_records="  bad:\n    A: 999.1.1.1\n")
        self.zone_check(text, line_of(text, "999.1.1.1"), "999\\.1\\.1\\.1")

    def test_bad_aaaa_data(self):
        text = standard_zone(extra_records="  bad:\n    AAAA: 1.2.3.4\n")
        self.zone_check(text, line_of(text, "AAAA: 1.2.3.4"), "1\\.2\\.3\\.4")

    def test_unsupported_type(self):
        text = standard_zone(extra_records="  box:\n    HINFO: PC Linux\n")
        self.zone_check(text, line_of(text, "HINFO"), "HINFO")

    def test_cname_beside_other_data(self):
        text = standard_zone(extra_records="  both:\n    CNAME: both-target\n    A: 192.0.2.9\n")
        lines = [line_of(text, "  both:"), line_of(text, "CNAME: both-target"),
                 line_of(text, "A: 192.0.2.9")]
        self.zone_check(text, lines, "CNAME")

    def test_cname_at_apex(self):
        text = standard_zone().replace('  "@":\n', '  "@":\n    CNAME: apex-target\n')
        lines = [line_of(text, '  "@":'), line_of(text, "CNAME: apex-target")]
        self.zone_check(text, lines, "CNAME")

    def test_zone_without_ns(self):
        text = "\n".join(ln for ln in standard_zone().splitlines()
                         if not ln.startswith("ns:")) + "\n"
        self.zone_check(text, None, r"\bns\b")

    def test_zone_without_name(self):
        text = "\n".join(ln for ln in standard_zone().splitlines()
                         if not ln.startswith("zone:")) + "\n"
        self.zone_check(text, None, r"\bzone\b")

    def test_owner_outside_zone(self):
        text = standard_zone(extra_records="  www.example.org.:\n    A: 192.0.2.9\n")
        self.zone_check(text, line_of(text, "www.example.org."), "example\\.org")

    def test_bad_ttl(self):
        text = standard_zone(extra_records="  t:\n    ttl: abc\n    A: 192.0.2.9\n")
        self.zone_check(text, line_of(text, "ttl: abc"), "ttl|abc")

    def test_bad_mx(self):
        text = standard_zone(extra_records="  m:\n    MX: mail\n")
        self.zone_check(text, line_of(text, "MX: mail"))

    def test_bad_serial(self):
        text = standard_zone(serial="soon")
        self.zone_check(text, line_of(text, "serial:"), "serial|soon")

    def test_in_zone_name_server_without_an_address(self):
        # Issue #16: named-checkzone refuses it too; resolvers could not reach ns3.
        text = standard_zone().replace("ns: [ns1, ns2]\n", "ns: [ns1, ns2, ns3]\n")
        self.assertIn("ns3", text)
        self.zone_check(text, line_of(text, "ns: [ns1, ns2, ns3]"),
                        r"NS ns3\.example\.com\. of example\.com\. is inside the zone but has no address: "
                        r"give it an A or AAAA record")

    def test_delegation_without_its_glue(self):
        text = standard_zone(extra_records="  lab:\n    NS: [ns1.lab, ns.example.net.]\n")
        self.zone_check(text, line_of(text, "NS: [ns1.lab, ns.example.net.]"),
                        r"NS ns1\.lab\.example\.com\. of lab\.example\.com\. is inside the zone but has "
                        r"no address")
        # With the glue it loads.
        text = standard_zone(extra_records="  lab:\n    NS: [ns1.lab, ns.example.net.]\n"
                                           "  ns1.lab:\n    A: 127.0.0.77\n")
        with CheckDir(zones={ZF: text}) as d:
            rc, out, err = d.check()
            self.assertEqual(rc, 0, out + err)


class Signals(unittest.TestCase):
    ZONES = {ZF: standard_zone()}

    def test_sigterm_exits_zero(self):
        with Server(self.ZONES) as srv:
            h.wait_for(lambda: "serving" in srv.log(), what='"serving" in the log')
            self.assertEqual(h.dig(srv.port, "www.example.com", "A").status, "NOERROR")
            self.assertEqual(srv.stop(signal.SIGTERM), 0, srv.all_output())

    def test_sigint_exits_zero(self):
        with Server(self.ZONES) as srv:
            self.assertEqual(srv.stop(signal.SIGINT), 0, srv.all_output())

    def test_sigterm_with_open_tcp_connection(self):
        with Server(self.ZONES, tcp={"idle_timeout": "60s"}) as srv:
            s = h.tcp_connect(srv.port)
            try:
                s.sendall(b"\x00")  # a half-sent query
                self.assertEqual(srv.stop(signal.SIGTERM), 0, srv.all_output())
            finally:
                s.close()

    def serve_expect_failure(self, d, timeout=h.DEADLINE):
        proc = subprocess.Popen([h.BIN, "serve", "-c", d.config], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)
            self.fail("serve with a broken setup did not exit within %.0fs" % timeout)
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def test_serve_with_bad_zone_fails(self):
        text = standard_zone(extra_records="  bad:\n    A: 999.1.1.1\n")
        with CheckDir(zones={ZF: text}) as d:
            rc, out, err = self.serve_expect_failure(d)
            self.assertNotEqual(rc, 0, out + err)
            self.assertRegex(err, r"%s:%d:" % (re.escape(ZF), line_of(text, "999.1.1.1")))

    def test_serve_with_busy_port_fails(self):
        with CheckDir() as d:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                u.bind(("127.0.0.1", d.port))
                t.bind(("127.0.0.1", d.port))
                t.listen(1)
                rc, out, err = self.serve_expect_failure(d)
            finally:
                u.close()
                t.close()
            self.assertNotEqual(rc, 0, out + err)
            self.assertTrue(err.strip(), "a failed start must say why on stderr")


if __name__ == "__main__":
    unittest.main()
