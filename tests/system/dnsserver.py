"""The server under test, for the steerdns system tests (not a test file).

  * Server: context manager writing a config + zone files into a temp dir and
    running `steerdns serve -c <config>` with stderr captured to a file
  * ServerTestCase: a TestCase whose class shares one running Server
  * standard_zone(): the example.com-like zone most tests serve

The server listens on loopback only; every wait (ready, reload, exit) polls
with common.DEADLINE.
"""

import os
import random
import re
import signal
import subprocess
import tempfile
import time
import unittest

from clients import dig, kdig
from common import BIN, DEADLINE, free_port, require_binary, wait_for

# ---------------------------------------------------------------------------
# zones used by most tests

BIG_TXT = ["big%02d-" % i + ("abcdefghij" * 20)[: 200 - 6] for i in range(15)]  # 15 x 200 chars
MED_TXT = ["med%02d-" % i + ("klmnopqrst" * 20)[: 190 - 6] for i in range(4)]   # 4 x 190 chars


def _yaml_list(items, indent):
    pad = " " * indent
    return "".join("%s- %s\n" % (pad, it) for it in items)


def standard_zone(name="example.com", serial="2024010101", ttl=3600, soa_ttl=None,
                  minimum=300, extra_records=""):
    """The example.com-like test zone.

    Names (relative to `name`):
      @        SOA, NS ns1 ns2, MX 10 mail + 20 mail2.example.net., TXT
      ns1/ns2  A (glue for the apex NS)
      mail     A
      www      A, AAAA
      repo     CNAME repo2 ; repo2 CNAME artifacts ; artifacts A (ttl 30)
      outside  CNAME target.example.org. (out of zone)
      dangling CNAME nowhere (does not exist)
      towild   CNAME x.wild
      *.wild   A, TXT ; explicit.wild A (not overridden by the wildcard)
      *.wc     CNAME www (wildcard CNAME)
      a.b.deep A       (b.deep, deep are empty non-terminals)
      sub      NS ns1.sub + ns.elsewhere.net. ; ns1.sub A (glue)
      bigtxt   15 TXT x 200 chars (~3000 bytes)
      medtxt   4 TXT x 190 chars (~800 bytes)
    """
    soa_ttl_line = "  ttl: %d\n" % soa_ttl if soa_ttl is not None else ""
    return (
        "# test zone %(name)s\n"
        "zone: %(name)s\n"
        "ttl: %(ttl)d\n"
        "soa:\n"
        "  mname: ns1\n"
        "  rname: hostmaster\n"
        "  serial: %(serial)s\n"
        "  refresh: 3600\n"
        "  retry: 600\n"
        "  expire: 1209600\n"
        "  minimum: %(minimum)d\n"
        "%(soa_ttl_line)s"
        "ns: [ns1, ns2]\n"
        "records:\n"
        "  \"@\":\n"
        "    MX: [10 mail, 20 mail2.example.net.]\n"
        "    TXT: \"v=spf1 -all\"\n"
        "  ns1:\n"
        "    A: 192.0.2.1\n"
        "  ns2:\n"
        "    A: 192.0.2.2\n"
        "  mail:\n"
        "    A: 192.0.2.25\n"
        "  www:\n"
        "    A: 192.0.2.10\n"
        "    AAAA: \"2001:db8::10\"\n"
        "  repo:\n"
        "    CNAME: repo2\n"
        "  repo2:\n"
        "    CNAME: artifacts\n"
        "  artifacts:\n"
        "    ttl: 30\n"
        "    A: 192.0.2.30\n"
        "  outside:\n"
        "    CNAME: target.example.org.\n"
        "  dangling:\n"
        "    CNAME: nowhere\n"
        "  towild:\n"
        "    CNAME: x.wild\n"
        "  \"*.wild\":\n"
        "    A: 192.0.2.50\n"
        "    TXT: wildcard\n"
        "  explicit.wild:\n"
        "    A: 192.0.2.51\n"
        "  \"*.wc\":\n"
        "    CNAME: www\n"
        "  a.b.deep:\n"
        "    A: 192.0.2.60\n"
        "  sub:\n"
        "    NS: [ns1.sub, ns.elsewhere.net.]\n"
        "  ns1.sub:\n"
        "    A: 192.0.2.53\n"
        "  bigtxt:\n"
        "    TXT:\n%(big)s"
        "  medtxt:\n"
        "    TXT:\n%(med)s"
        "%(extra)s"
    ) % {
        "name": name, "ttl": ttl, "serial": serial, "minimum": minimum,
        "soa_ttl_line": soa_ttl_line,
        "big": _yaml_list(BIG_TXT, 6), "med": _yaml_list(MED_TXT, 6),
        "extra": extra_records,
    }


def zone_name_of(text):
    m = re.search(r"^zone:\s*['\"]?([^'\"\s#]+)", text, re.M)
    return m.group(1).rstrip(".") if m else None


# ---------------------------------------------------------------------------
# the server under test


class Server:
    """Run `steerdns serve` on loopback with a generated config.

    zones:   dict {file name: zone text}, written to <tmp>/zones/<file name>
    listen:  list of listen entries; strings may contain "{port}"; dicts
             {"address": "127.0.0.1:{port}", "transport": "udp"} are allowed.
             Default ["127.0.0.1:{port}"].
    zones_entry: what to put under `zones:` (default: the list of zone files);
             a str is written as a scalar (directory form).
    config_text: a complete config (with "{port}" placeholders) instead.
    """

    def __init__(self, zones, *, listen=None, workers=2, edns_payload=None, tcp=None,
                 level="info", query_log=False, zones_entry=None, config_text=None,
                 ready_zone=None, ready_addr=None, ready_tcp=False, port=None,
                 start_timeout=DEADLINE, zone_mtime=None, extra_config=None, server_options=None,
                 logging_options=None):
        require_binary()
        self.zones = dict(zones)
        self.listen = list(listen) if listen else ["127.0.0.1:{port}"]
        hosts = []
        for entry in self.listen:
            addr = entry["address"] if isinstance(entry, dict) else entry
            hosts.append(addr[1:addr.index("]")] if addr.startswith("[")
                         else addr.rsplit(":", 1)[0])
        self.port = port or free_port(tuple(dict.fromkeys(hosts)))
        # a second port for configs that need two ("{port2}")
        self.port2 = self.port
        for _ in range(50):
            if self.port2 != self.port:
                break
            self.port2 = free_port(tuple(dict.fromkeys(hosts)))
        # a TCP port on 127.0.0.1 for the admin API ("{admin_port}", see admin_url)
        self.admin_port = self.port
        for _ in range(50):
            if self.admin_port not in (self.port, self.port2):
                break
            self.admin_port = free_port("127.0.0.1")
        self.workers = workers
        self.edns_payload = edns_payload
        self.tcp = tcp or {}
        self.level = level
        self.query_log = query_log
        self.zones_entry = zones_entry
        self.config_text = config_text
        self.extra_config = extra_config  # YAML appended to the generated config
        self.server_options = dict(server_options or {})  # more keys of `server:`
        self.logging_options = dict(logging_options or {})  # more keys of `logging:`
        self.start_timeout = start_timeout
        self.zone_mtime = zone_mtime
        self.ready_zone = ready_zone or (zone_name_of(next(iter(self.zones.values())))
                                         if self.zones else None)
        first = self.listen[0]
        first_addr = (first["address"] if isinstance(first, dict) else first)
        if ready_addr is None:
            ready_addr = "::1" if first_addr.startswith("[::1]") else first_addr.rsplit(":", 1)[0]
        self.ready_addr = ready_addr
        self.ready_tcp = ready_tcp or (isinstance(first, dict) and first.get("transport") == "tcp")
        self._tmp = None
        self.dir = None
        self.proc = None
        self._log = None
        self._out = None

    # -- files ---------------------------------------------------------------
    @property
    def config_path(self):
        return os.path.join(self.dir, "steerdns.yaml")

    @property
    def log_path(self):
        return os.path.join(self.dir, "steerdns.log")

    def zone_path(self, name):
        return os.path.join(self.dir, "zones", name)

    @property
    def admin_url(self):
        """The admin API's base URL, for configs with `listen: 127.0.0.1:{admin_port}`."""
        return "http://127.0.0.1:%d" % self.admin_port

    def _subst(self, text):
        return (text.replace("{port}", str(self.port)).replace("{port2}", str(self.port2))
                .replace("{admin_port}", str(self.admin_port)))

    def render_config(self):
        if self.config_text is not None:
            return self._subst(self.config_text)
        lines = ["# generated by tests/system/dnsserver.py", "server:", "  listen:"]
        for entry in self.listen:
            if isinstance(entry, dict):
                parts = ", ".join('%s: "%s"' % (k, self._subst(str(v)))
                                  for k, v in entry.items())
                lines.append("    - {%s}" % parts)
            else:
                lines.append('    - "%s"' % self._subst(entry))
        lines.append("  workers: %d" % self.workers)
        if self.edns_payload is not None:
            lines.append("  edns_payload: %d" % self.edns_payload)
        for k, v in self.server_options.items():
            lines.append("  %s: %s" % (k, v))
        if self.tcp:
            lines.append("  tcp:")
            for k, v in self.tcp.items():
                lines.append("    %s: %s" % (k, v))
        if isinstance(self.zones_entry, str):
            lines.append("zones: %s" % self.zones_entry)
        else:
            lines.append("zones:")
            for name in (self.zones_entry or list(self.zones)):
                lines.append("  - %s" % (name if "/" in name else "zones/" + name))
        lines += ["logging:", "  level: %s" % self.level,
                  "  query_log: %s" % ("true" if self.query_log else "false")]
        for k, v in self.logging_options.items():
            lines.append("  %s: %s" % (k, v))
        if self.extra_config:
            lines.append(self._subst(self.extra_config).rstrip("\n"))
        return "\n".join(lines) + "\n"

    def write_file(self, path, text, mtime=None):
        """Atomically replace `path` (temp file + rename), optionally set mtime."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp-%d" % random.randrange(1 << 30)
        with open(tmp, "w") as f:
            f.write(text)
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)

    def write_zone(self, name, text, mtime=None):
        self.zones[name] = text
        self.write_file(self.zone_path(name), text, mtime)

    def write_config(self):
        self.write_file(self.config_path, self.render_config())

    # -- process ---------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="steerdns-test-")
        self.dir = self._tmp.name
        os.makedirs(os.path.join(self.dir, "zones"))
        for name, text in self.zones.items():
            self.write_file(self.zone_path(name), text, self.zone_mtime)
        self.write_config()
        self._log = open(self.log_path, "wb")
        self._out = open(os.path.join(self.dir, "stdout.log"), "wb")
        self._spawn()

    def _spawn(self):
        self.proc = subprocess.Popen([BIN, "serve", "-c", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._log, cwd=self.dir)
        try:
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.close()
            raise

    def restart(self, sig=signal.SIGTERM):
        """Stop the process and start a new one in the same folder (same config,
        zones and state files, same ports; the log goes on in the same file).
        Returns the old process's exit code."""
        code = self.stop(sig)
        self._spawn()
        return code

    def wait_ready(self, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        last = None
        for _ in range(10000):  # bounded; the deadline ends it first
            if self.proc.poll() is not None:
                raise AssertionError("steerdns exited with %s during startup; log:\n%s"
                                     % (self.proc.returncode, self.all_output()))
            opts = ["+time=1", "+tries=1"] + (["+tcp"] if self.ready_tcp else [])
            last = dig(self.port, self.ready_zone or ".", "SOA", *opts, server=self.ready_addr)
            # A reply, not our own query: a dig whose ephemeral source port
            # is the server's port (free while it restarts) hears itself.
            if last.status is not None and "qr" in last.flags:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        raise AssertionError("steerdns did not answer %s SOA on %s port %d within %.0fs;"
                             " last dig:\n%s\nlog:\n%s"
                             % (self.ready_zone, self.ready_addr, self.port, timeout,
                                last.stdout if last else "", self.all_output()))

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def all_output(self):
        out = ""
        try:
            with open(os.path.join(self.dir, "stdout.log"), "rb") as f:
                out = f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            pass
        return "--- stderr ---\n%s\n--- stdout ---\n%s" % (self.log(), out)

    def send_signal(self, sig):
        assert self.alive(), "server not running; log:\n" + self.all_output()
        self.proc.send_signal(sig)

    def reload(self):
        self.send_signal(signal.SIGHUP)

    def reload_and_wait(self, timeout=DEADLINE):
        """SIGHUP, then wait until a new "reloaded" or "reload failed" line appears.

        Returns (ok, new_log_text) where ok is True for "reloaded".
        """
        before = self.log()
        n_ok, n_fail = before.count("reloaded"), before.count("reload failed")
        self.reload()

        def done():
            text = self.log()
            if text.count("reload failed") > n_fail:
                return (False, text[len(before):])
            if text.count("reloaded") > n_ok:
                return (True, text[len(before):])
            if not self.alive():
                raise AssertionError("server died on reload; log:\n" + self.all_output())
            return None
        return wait_for(done, timeout, what="a reload result in the log")

    def stop(self, sig=signal.SIGTERM, timeout=DEADLINE):
        """Send `sig` (SIGTERM) and wait up to `timeout` s; return the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("steerdns did not exit within %.0fs of signal %d"
                                     % (timeout, sig))
        return self.proc.returncode

    def close(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    self.stop()
                except AssertionError:
                    pass
        finally:
            for f in (self._log, self._out):
                if f:
                    f.close()
            self._log = self._out = None
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None


class ServerTestCase(unittest.TestCase):
    """A TestCase whose class shares one running Server.

    Subclasses set SERVER_ARGS = dict(zones=..., ...) (or override make_server).
    After each test the server must still be running.
    """

    SERVER_ARGS = None
    srv = None

    @classmethod
    def make_server(cls):
        return Server(**cls.SERVER_ARGS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.make_server()
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        srv, cls.srv = cls.srv, None
        if srv is not None:
            try:
                alive = srv.alive()
                code = srv.stop()
                log = srv.all_output()
            finally:
                srv.close()
            if not alive:
                raise AssertionError("server had died (exit %s); log:\n%s" % (code, log))
        super().tearDownClass()

    def tearDown(self):
        if self.srv is not None and not self.srv.alive():
            self.fail("server died during this test (exit %s); log:\n%s"
                      % (self.srv.proc.returncode, self.srv.all_output()))

    # convenience
    def dig(self, qname, qtype="A", *opts, **kw):
        return dig(self.srv.port, qname, qtype, *opts, **kw)

    def kdig(self, qname, qtype="A", *opts, **kw):
        return kdig(self.srv.port, qname, qtype, *opts, **kw)

    def assertAnswered(self, r, status="NOERROR"):
        self.assertIsNotNone(r.status, "no answer from server:\n" + r.stdout + r.stderr)
        self.assertEqual(r.status, status, r.stdout)
        self.assertIn("qr", r.flags, r.stdout)
        self.assertNotIn("ra", r.flags, "ra must never be set\n" + r.stdout)
        self.assertNotIn("ad", r.flags, "ad must not be set without DNSSEC\n" + r.stdout)
