"""Shared helpers for the steerdns system tests.

Everything here talks only to 127.0.0.1 / ::1, every loop is bounded in count
and time, and nothing sleeps a fixed time to wait for something: conditions are
polled with a deadline (see `wait_for`).  The only "wait for an absence" is a
socket receive timeout (see `raw_udp`), which tests follow by proving the server
is still alive.

Contents
  * binary location: STEERDNS_BIN (default <repo>/build/steerdns)
  * free_port(): a port free for both UDP and TCP
  * Server: context manager writing a config + zone files into a temp dir and
    running `steerdns serve -c <config>` with stderr captured to a file
  * dig() / kdig(): run the real clients and parse their output (DigResult)
  * build_query(), opt_rr(), parse_message(): a tiny DNS wire encoder/decoder
  * raw_udp(), raw_tcp(), tcp_connect(), tcp_send_msgs(), tcp_read_msg()
  * standard_zone(): the example.com-like zone most tests serve
"""

import errno
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("STEERDNS_BIN") or os.path.join(REPO, "build", "steerdns")

DIG = os.environ.get("DIG", "dig")
KDIG = os.environ.get("KDIG", "kdig")

# ---------------------------------------------------------------------------
# generic helpers


def wait_for(cond, timeout=10.0, interval=0.05, what="condition"):
    """Poll cond() until it returns a truthy value; return that value.

    Raises AssertionError after `timeout` seconds.  Bounded in time; the poll
    interval is a back-off between checks, never a wait for the event itself.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = cond()
            if value:
                return value
        except Exception as exc:  # remember, keep polling
            last_exc = exc
        if time.monotonic() >= deadline:
            raise AssertionError(
                "timed out after %.1fs waiting for %s%s"
                % (timeout, what, " (last error: %r)" % (last_exc,) if last_exc else "")
            )
        time.sleep(interval)


def require_binary():
    """Fail (not skip) when the binary under test is missing."""
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        raise AssertionError("steerdns binary not found at %s (build it or set STEERDNS_BIN)"
                             % BIN)


def ipv6_usable():
    """True if we can bind UDP and TCP on ::1."""
    if not socket.has_ipv6:
        return False
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        try:
            s = socket.socket(socket.AF_INET6, kind)
        except OSError:
            return False
        try:
            s.bind(("::1", 0))
        except OSError:
            return False
        finally:
            s.close()
    return True


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(hosts=("127.0.0.1",)):
    """A port number currently free for both UDP and TCP on every host given."""
    if isinstance(hosts, str):
        hosts = (hosts,)
    for _ in range(200):
        first = socket.socket(_family(hosts[0]), socket.SOCK_DGRAM)
        try:
            first.bind((hosts[0], 0))
            port = first.getsockname()[1]
        finally:
            first.close()
        ok = True
        for host in hosts:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(_family(host), kind)
                try:
                    s.bind((host, port))
                except OSError:
                    ok = False
                finally:
                    s.close()
                if not ok:
                    break
            if not ok:
                break
        if ok:
            return port
    raise RuntimeError("no free port found")


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
                 start_timeout=10.0, zone_mtime=None, extra_config=None, server_options=None):
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
        lines = ["# generated by tests/system/harness.py", "server:", "  listen:"]
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

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        last = None
        for _ in range(1000):
            if self.proc.poll() is not None:
                raise AssertionError("steerdns exited with %s during startup; log:\n%s"
                                     % (self.proc.returncode, self.all_output()))
            opts = ["+time=1", "+tries=1"] + (["+tcp"] if self.ready_tcp else [])
            last = dig(self.port, self.ready_zone or ".", "SOA", *opts, server=self.ready_addr)
            if last.status is not None:
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

    def reload_and_wait(self, timeout=10.0):
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

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
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


# ---------------------------------------------------------------------------
# dig / kdig


class DigResult:
    """Parsed output of one dig/kdig response."""

    def __init__(self):
        self.status = None     # "NOERROR", "NXDOMAIN", ... or None (no answer)
        self.opcode = None
        self.id = None
        self.flags = set()
        self.counts = {}
        self.question = []     # (name, class, type)
        self.answer = []       # (owner, ttl, class, type, rdata)
        self.authority = []
        self.additional = []
        self.edns = None       # {"version": int, "udp": int, "flags": set}
        self.stdout = ""
        self.stderr = ""
        self.returncode = None

    def types(self, section="answer"):
        return [rr[3] for rr in getattr(self, section)]

    def rdatas(self, rtype, section="answer"):
        return [rr[4] for rr in getattr(self, section) if rr[3] == rtype]

    def __repr__(self):
        return "<DigResult %s flags=%s an=%r au=%r ad=%r edns=%r>" % (
            self.status, sorted(self.flags), self.answer, self.authority,
            self.additional, self.edns)


_SECTION_RE = re.compile(r"^;; (QUESTION|ANSWER|AUTHORITY|ADDITIONAL) SECTION:")


def _parse_rr_line(line):
    parts = line.split(None, 4)
    if len(parts) < 4:
        return None
    owner, ttl, cls, rtype = parts[:4]
    rdata = parts[4].strip() if len(parts) > 4 else ""
    try:
        ttl = int(ttl)
    except ValueError:
        return None
    return (owner, ttl, cls, rtype, rdata)


def parse_dig_output(text, start=0):
    """Parse the response blocks of dig (or kdig) output.

    Returns a list of DigResult, one per response header found.
    """
    results = []
    cur = None
    section = None
    for raw in text.splitlines():
        line = raw.rstrip()
        m = re.match(r"^;; ->>HEADER<<- opcode: (\w+)[,;] status: (\w+)[,;] id: (\d+)", line)
        if m:
            cur = DigResult()
            results.append(cur)
            cur.opcode, cur.status, cur.id = m.group(1), m.group(2), int(m.group(3))
            section = None
            continue
        if cur is None:
            continue
        m = re.match(r"^;; [Ff]lags:([^;]*);(.*)$", line)
        if m:
            cur.flags = set(m.group(1).split())
            for k, v in re.findall(r"(QUERY|ANSWER|AUTHORITY|ADDITIONAL): (\d+)", m.group(2)):
                cur.counts[k] = int(v)
            continue
        # dig:  "; EDNS: version: 0, flags: do; udp: 1232"
        m = re.match(r"^; EDNS: version: (\d+), flags:([^;]*); udp: (\d+)", line)
        if m:
            cur.edns = {"version": int(m.group(1)), "flags": set(m.group(2).split()),
                        "udp": int(m.group(3))}
            continue
        # kdig: ";; Version: 0; flags: ; UDP size: 1232 B; ext-rcode: NOERROR"
        m = re.match(r"^;; Version: (\d+); flags:([^;]*); UDP size: (\d+) B", line)
        if m:
            cur.edns = {"version": int(m.group(1)), "flags": set(m.group(2).split()),
                        "udp": int(m.group(3))}
            continue
        m = _SECTION_RE.match(line)
        if m:
            section = m.group(1).lower()
            continue
        if not line:
            section = None
            continue
        if section == "question":
            q = line.lstrip("; ").split()
            if len(q) >= 3:
                cur.question.append((q[0], q[1], q[2]))
            continue
        if section in ("answer", "authority", "additional") and not line.startswith(";"):
            rr = _parse_rr_line(line)
            if rr:
                getattr(cur, section).append(rr)
    return results


def _run_client(argv, timeout):
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return None, (exc.stdout or b"").decode("utf-8", "replace"), "timeout", None
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"), p


def dig(port, qname, qtype="A", *opts, server="127.0.0.1", qclass="IN", time_=2, tries=1,
        timeout=20):
    """Run dig and return the parsed (last) response as a DigResult.

    opts are passed through (e.g. "+tcp", "+norec", "+bufsize=512", "+ignore").
    When dig got no answer, result.status is None.
    """
    argv = [DIG, "@" + server, "-p", str(port), "-c", qclass, "-t", qtype, "-q", qname,
            "+time=%d" % time_, "+tries=%d" % tries] + list(opts)
    rc, out, err, _ = _run_client(argv, timeout)
    blocks = parse_dig_output(out)
    res = blocks[-1] if blocks else DigResult()
    res.stdout, res.stderr, res.returncode = out, err, rc
    res.all = blocks
    return res


def dig_multi(port, queries, *global_opts, server="127.0.0.1", timeout=30):
    """One dig run with several queries: queries = [(qname, qtype), ...].

    Returns (list of DigResult, stdout).
    """
    argv = [DIG, "@" + server, "-p", str(port), "+time=2", "+tries=1"] + list(global_opts)
    for qname, qtype in queries:
        argv += [qname, qtype]
    rc, out, err, _ = _run_client(argv, timeout)
    return parse_dig_output(out), out + err


def kdig(port, qname, qtype="A", *opts, server="127.0.0.1", qclass="IN", timeout=20):
    """Run kdig (Knot) and return a parsed DigResult (same fields as dig())."""
    argv = [KDIG, "@" + server, "-p", str(port), "-c", qclass, "-t", qtype, "-q", qname,
            "+time=2", "+retry=0"] + list(opts)
    rc, out, err, _ = _run_client(argv, timeout)
    blocks = parse_dig_output(out)
    res = blocks[-1] if blocks else DigResult()
    res.stdout, res.stderr, res.returncode = out, err, rc
    res.all = blocks
    return res


# ---------------------------------------------------------------------------
# DNS wire format

TYPES = {
    "A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "HINFO": 13, "MX": 15, "TXT": 16,
    "AAAA": 28, "SRV": 33, "OPT": 41, "DS": 43, "IXFR": 251, "AXFR": 252, "ANY": 255,
    "CAA": 257,
}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
CLASSES = {"IN": 1, "CH": 3, "HS": 4, "ANY": 255}

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
          5: "REFUSED", 16: "BADVERS"}

QR, AA, TC, RD, RA, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010


def encode_name(name):
    """Wire-encode a dotted name (case kept); "." or "" is the root."""
    if isinstance(name, bytes):
        return name
    out = b""
    name = name.rstrip(".") if name not in (".", "") else ""
    if name:
        for label in name.split("."):
            b = label.encode("ascii")
            out += bytes([len(b)]) + b
    return out + b"\x00"


def opt_rr(udp=1232, version=0, do=False, ext_rcode=0, options=(), owner=b"\x00"):
    """An OPT pseudo-RR. options: iterable of (code, bytes)."""
    rdata = b"".join(struct.pack("!HH", c, len(v)) + v for c, v in options)
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    return owner + struct.pack("!HHIH", 41, udp, ttl, len(rdata)) + rdata


def build_query(qname="example.com", qtype="A", *, id=0x1234, flags=0, opcode=0,
                qclass="IN", edns=None, additional=(), qdcount=None, ancount=0,
                nscount=0, arcount=None, question=None):
    """Build a DNS query message.

    flags:  16-bit header flags (e.g. RD); opcode is OR-ed in at bits 11..14.
    edns:   None (no OPT), True (OPT udp 1232) or a dict of opt_rr() arguments.
    additional: extra raw RRs appended after the OPT (e.g. a second OPT).
    qdcount/arcount: override the header counts (for malformed packets).
    question: raw bytes to use as the question section instead of qname/qtype.
    """
    if isinstance(qtype, str):
        qtype = TYPES[qtype] if qtype in TYPES else int(qtype.replace("TYPE", ""))
    if isinstance(qclass, str):
        qclass = CLASSES[qclass]
    if question is None:
        question = encode_name(qname) + struct.pack("!HH", qtype, qclass)
        n_q = 1
    else:
        n_q = 1
    ar = []
    if edns:
        ar.append(opt_rr(**(edns if isinstance(edns, dict) else {})))
    ar.extend(additional)
    hdr_flags = (flags & ~0x7800) | ((opcode & 0xF) << 11)
    header = struct.pack("!HHHHHH", id & 0xFFFF, hdr_flags,
                         n_q if qdcount is None else qdcount, ancount, nscount,
                         len(ar) if arcount is None else arcount)
    return header + question + b"".join(ar)


class ParseError(Exception):
    pass


def _read_name(msg, off):
    labels = []
    jumps = 0
    end = None
    while True:
        if off >= len(msg):
            raise ParseError("name runs past end")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise ParseError("truncated pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            if jumps > 64:
                raise ParseError("pointer loop")
            continue
        if n & 0xC0:
            raise ParseError("bad label type")
        off += 1
        if n == 0:
            break
        if off + n > len(msg):
            raise ParseError("label runs past end")
        labels.append(msg[off:off + n].decode("latin-1"))
        off += n
    return (".".join(labels) + "."), (end if end is not None else off)


class RR:
    __slots__ = ("name", "type", "cls", "ttl", "rdata", "offset")

    def __init__(self, name, rtype, cls, ttl, rdata, offset):
        self.name, self.type, self.cls, self.ttl, self.rdata, self.offset = \
            name, rtype, cls, ttl, rdata, offset

    @property
    def type_name(self):
        return TYPE_NAMES.get(self.type, "TYPE%d" % self.type)

    def __repr__(self):
        return "RR(%s %d %s %r)" % (self.name, self.ttl, self.type_name, self.rdata)


class Message:
    def __init__(self, data):
        self.data = data
        if len(data) < 12:
            raise ParseError("short header")
        (self.id, self.flags, qd, an, ns, ar) = struct.unpack("!HHHHHH", data[:12])
        self.counts = (qd, an, ns, ar)
        off = 12
        self.question = []
        for _ in range(qd):
            name, off = _read_name(data, off)
            if off + 4 > len(data):
                raise ParseError("short question")
            qtype, qclass = struct.unpack("!HH", data[off:off + 4])
            off += 4
            self.question.append((name, qtype, qclass))
        self.question_end = off
        self.sections = []
        for count in (an, ns, ar):
            rrs = []
            for _ in range(count):
                start = off
                name, off = _read_name(data, off)
                if off + 10 > len(data):
                    raise ParseError("short rr")
                rtype, cls, ttl, rdlen = struct.unpack("!HHIH", data[off:off + 10])
                off += 10
                if off + rdlen > len(data):
                    raise ParseError("short rdata")
                rrs.append(RR(name, rtype, cls, ttl, data[off:off + rdlen], off))
                off += rdlen
            self.sections.append(rrs)
        self.answer, self.authority, self.additional_all = self.sections
        self.opts = [rr for rr in self.additional_all if rr.type == 41]
        self.additional = [rr for rr in self.additional_all if rr.type != 41]
        self.trailing = len(data) - off

    qr = property(lambda s: bool(s.flags & QR))
    aa = property(lambda s: bool(s.flags & AA))
    tc = property(lambda s: bool(s.flags & TC))
    rd = property(lambda s: bool(s.flags & RD))
    ra = property(lambda s: bool(s.flags & RA))
    opcode = property(lambda s: (s.flags >> 11) & 0xF)

    @property
    def opt(self):
        if not self.opts:
            return None
        o = self.opts[0]
        return {"udp": o.cls, "ext_rcode": o.ttl >> 24, "version": (o.ttl >> 16) & 0xFF,
                "do": bool(o.ttl & 0x8000), "rdata": o.rdata, "owner": o.name}

    @property
    def rcode(self):
        rc = self.flags & 0xF
        if self.opts:
            rc |= (self.opts[0].ttl >> 24) << 4
        return rc

    @property
    def rcode_name(self):
        return RCODES.get(self.rcode, str(self.rcode))

    def __repr__(self):
        return "<Message id=%d flags=%#06x rcode=%s q=%r an=%r ns=%r ar=%r>" % (
            self.id, self.flags, self.rcode_name, self.question, self.answer,
            self.authority, self.additional_all)


def parse_message(data):
    return Message(data)


def header_of(data):
    """(id, flags, qd, an, ns, ar) of a reply, even when the body does not parse."""
    return struct.unpack("!HHHHHH", data[:12])


# ---------------------------------------------------------------------------
# raw sockets


def raw_udp(port, data, timeout=0.5, host="127.0.0.1", sock=None):
    """Send one datagram, return the reply bytes or None after `timeout` s."""
    own = sock is None
    if own:
        sock = socket.socket(_family(host), socket.SOCK_DGRAM)
    try:
        sock.settimeout(timeout)
        sock.sendto(data, (host, port))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            sock.settimeout(remaining)
            try:
                reply, addr = sock.recvfrom(65535)
            except socket.timeout:
                return None
            except ConnectionRefusedError:
                return None
            if addr[1] == port:
                return reply
    finally:
        if own:
            sock.close()


def udp_query(port, data, timeout=2.0, host="127.0.0.1"):
    """raw_udp that parses the reply (None if none)."""
    reply = raw_udp(port, data, timeout, host)
    return parse_message(reply) if reply is not None else None


def tcp_connect(port, host="127.0.0.1", timeout=5.0):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def frame(msg):
    return struct.pack("!H", len(msg)) + msg


def recv_exact(sock, n, timeout=5.0):
    """Read exactly n bytes; returns fewer if the peer closes (b'' at EOF)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while len(buf) < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out reading %d bytes (got %d)" % (n, len(buf)))
        sock.settimeout(remaining)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def tcp_read_msg(sock, timeout=5.0):
    """Read one length-prefixed message; None if the connection was closed."""
    hdr = recv_exact(sock, 2, timeout)
    if len(hdr) < 2:
        return None
    (n,) = struct.unpack("!H", hdr)
    body = recv_exact(sock, n, timeout)
    if len(body) < n:
        return None
    return body


def raw_tcp(port, data, timeout=5.0, host="127.0.0.1", framed=False):
    """Send one message over a new TCP connection, return the reply bytes (or None)."""
    with tcp_connect(port, host, timeout) as s:
        s.sendall(data if framed else frame(data))
        return tcp_read_msg(s, timeout)


def wait_closed(sock, timeout):
    """Wait until the peer closes `sock`. Returns "eof", "reset" or None (timeout).

    Any data received meanwhile is discarded (bounded by the timeout).
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65535)
        except socket.timeout:
            return None
        except (ConnectionResetError, BrokenPipeError):
            return "reset"
        except OSError as exc:
            if exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
                return "reset"
            raise
        if not chunk:
            return "eof"
