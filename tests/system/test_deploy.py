"""Deployment (issue #5): `make install`'s CMake rules, the systemd unit,
READY=1 only after the first probe round (sd_notify), and the privilege drop
when started as root.

The install goes to a temporary prefix (never the system); the unit is checked
with `systemd-analyze verify`; readiness is read from a NOTIFY_SOCKET this test
binds, as systemd would. Traffic stays on 127.0.0.0/8.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import backends as bk  # noqa: E402
import harness as h  # noqa: E402

BUILD = os.path.dirname(os.path.abspath(h.BIN))


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.require_binary()
        cls.tmp = tempfile.TemporaryDirectory(prefix="steerdns-install-")
        cls.prefix = os.path.join(cls.tmp.name, "prefix")
        p = run(["cmake", "--install", BUILD, "--prefix", cls.prefix])
        if p.returncode != 0:
            raise AssertionError("cmake --install failed:\n" + p.stdout + p.stderr)
        cls.install_log = p.stdout

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, *parts):
        return os.path.join(self.prefix, *parts)

    def test_layout(self):
        for rel in ("bin/steerdns", "share/steerdns/steerdns-world.mmdb", "share/man/man8/steerdns.8",
                    "lib/systemd/system/steerdns.service", "lib/sysusers.d/steerdns.conf",
                    "etc/steerdns/steerdns.yaml", "etc/steerdns/zones/example.com.yaml",
                    "share/doc/steerdns/README.md", "share/doc/steerdns/examples/steerdns.yaml"):
            self.assertTrue(os.path.isfile(self.path(rel)), rel + " not installed:\n" + self.install_log)
        self.assertTrue(os.access(self.path("bin/steerdns"), os.X_OK))
        self.assertTrue(os.path.isdir(self.path("var/lib/steerdns")))
        with open(self.path("lib/sysusers.d/steerdns.conf")) as f:
            self.assertRegex(f.read(), r"(?m)^u steerdns ")

    def test_alerting_files_are_installed_as_shipped(self):
        """The rules and the dashboard land in share/steerdns/ as they are in deploy/."""
        for rel, source in (("share/steerdns/prometheus/steerdns.rules.yml", "deploy/prometheus/steerdns.rules.yml"),
                            ("share/steerdns/grafana/steerdns.json", "deploy/grafana/steerdns.json")):
            with self.subTest(rel):
                self.assertTrue(os.path.isfile(self.path(rel)), rel + " not installed:\n" + self.install_log)
                with open(self.path(rel), "rb") as got, open(os.path.join(h.SOURCE, source), "rb") as want:
                    self.assertEqual(got.read(), want.read(), rel + " differs from " + source)

    def test_installed_config_checks_with_installed_database(self):
        binary, config = self.path("bin/steerdns"), self.path("etc/steerdns/steerdns.yaml")
        p = run([binary, "check", "-c", config])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("ok, 1 zones", p.stdout)
        with open(config) as f:
            text = f.read()
        self.assertIn("state_file: %s/var/lib/steerdns/state.yaml" % self.prefix, text)
        self.assertRegex(text, r"admin:\n  listen: 127\.0\.0\.1:8053")
        # The installed binary finds the installed database, not the source tree's.
        p = run([binary, "explain", "-c", config, "artifacts.example.com", "81.2.69.0/24"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("database:    %s/share/steerdns/steerdns-world.mmdb" % self.prefix, p.stdout)

    def test_staged_install_for_a_package(self):
        """`make install DESTDIR=STAGE PREFIX=/usr`, as a package build does:
        every file once under STAGE (the zone was written under STAGE twice),
        and the staged config checks with the staged binary."""
        stage = os.path.join(self.tmp.name, "stage")
        p = run(["cmake", "--install", BUILD, "--prefix", "/usr"], env=dict(os.environ, DESTDIR=stage))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for rel in ("usr/bin/steerdns", "usr/lib/systemd/system/steerdns.service", "etc/steerdns/steerdns.yaml",
                    "etc/steerdns/zones/example.com.yaml", "usr/share/steerdns/steerdns-world.mmdb",
                    "usr/share/steerdns/prometheus/steerdns.rules.yml", "usr/share/steerdns/grafana/steerdns.json"):
            self.assertTrue(os.path.isfile(os.path.join(stage, rel)), rel + " not staged:\n" + p.stdout)
        self.assertFalse(os.path.exists(os.path.join(stage, stage.lstrip("/"))), "files staged under the stage twice")
        with open(os.path.join(stage, "etc/steerdns/steerdns.yaml")) as f:
            text = f.read()
        self.assertIn("state_file: /var/lib/steerdns/state.yaml", text)
        # check it where it will live, but with a state folder that exists here
        staged = os.path.join(stage, "etc/steerdns/steerdns-check.yaml")
        with open(staged, "w") as f:
            f.write(text.replace("/var/lib/steerdns/", os.path.join(stage, "var/lib/steerdns") + "/"))
        p = run([os.path.join(stage, "usr/bin/steerdns"), "check", "-c", staged])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("ok, 1 zones", p.stdout)

    def test_reinstall_keeps_the_operators_config(self):
        config = self.path("etc/steerdns/steerdns.yaml")
        with open(config) as f:
            original = f.read()
        edited = original + "# edited by the operator\n"
        with open(config, "w") as f:
            f.write(edited)
        try:
            p = run(["cmake", "--install", BUILD, "--prefix", self.prefix])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("Keeping: " + config, p.stdout)
            with open(config) as f:
                self.assertEqual(f.read(), edited)
        finally:
            with open(config, "w") as f:
                f.write(original)

    def test_unit_passes_systemd_analyze_verify(self):
        unit = self.path("lib/systemd/system/steerdns.service")
        analyze = shutil.which("systemd-analyze")
        self.assertIsNotNone(analyze, "systemd-analyze is missing (make deps installs systemd)")
        # --man=no: the man page is installed under the prefix, not where man looks.
        p = run([analyze, "verify", "--man=no", unit])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # verify only warns about many mistakes (an unknown Type=, a bad
        # directive): any output at all is a failure here.
        self.assertEqual((p.stdout + p.stderr).strip(), "", "systemd-analyze verify complained")
        with open(unit) as f:
            text = f.read()
        for line in ("Type=notify", "User=steerdns", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                     "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "StateDirectory=steerdns",
                     "ExecReload=%s/bin/steerdns ctl -c %s/etc/steerdns/steerdns.yaml reload" % (self.prefix, self.prefix),
                     "ExecStart=%s/bin/steerdns serve -c %s/etc/steerdns/steerdns.yaml" % (self.prefix, self.prefix)):
            self.assertIn(line + "\n", text)
        # A broken unit is caught: the test can fail.
        broken = os.path.join(self.tmp.name, "steerdns.service")
        with open(broken, "w") as f:
            f.write(text.replace("Type=notify", "Type=notifi"))
        p = run([analyze, "verify", "--man=no", broken])
        self.assertIn("notifi", p.stdout + p.stderr)

    def test_man_page_and_help_cover_every_command(self):
        with open(self.path("share/man/man8/steerdns.8")) as f:
            man = f.read()
        self.assertIn(".TH STEERDNS", man)
        for word in ("serve", "check", "explain", "ctl", "drain", "undrain", "reload", "SIGHUP",
                     "state.yaml"):
            self.assertIn(word, man)
        # OPTIONS: one subsection per command, each option its own .TP entry
        # (help2man once glued "Subcommands: serve" and "Options:" into prose)
        self.assertNotIn("Options:", man)
        self.assertNotIn("Subcommands:", man)
        for command in ("serve", "check", "explain", "ctl"):
            self.assertRegex(man, r'(?m)^\.SS "?%s command:' % command)
        for option in ("\\fB\\-c\\fR, \\fB\\-\\-config\\fR TEXT", "\\fB\\-\\-token\\-file\\fR TEXT",
                       "\\fB\\-\\-no\\-ecs\\fR", "\\fB\\-\\-json\\fR"):
            self.assertIn(".TP\n" + option + "\n", man)
        p = run([self.path("bin/steerdns"), "--help-all"])
        self.assertEqual(p.returncode, 0, p.stderr)
        for word in ("serve", "check", "explain", "ctl", "--token-file", "--admin"):
            self.assertIn(word, p.stdout)


ZONE = """\
zone: deploy.test
soa: {mname: ns1, rname: hostmaster, serial: 1}
ns: [ns1]
records:
  ns1: {A: 127.0.0.1}
regions:
  here: {location: [48.86, 2.35], vips: [127.61.0.1, 127.61.0.2]}
geo:
  svc:
    regions: [here]
    ttl: 30
    check: {type: http, port: %(port)d, path: %(path)s, interval: 5s, timeout: 1s, rise: 1, fall: 1, jitter: 0s}
"""

CONFIG = """\
server:
  listen: ["127.0.0.1:{port}"]
  workers: 1
%(user)s
zones: [zones/deploy.test.yaml]
admin:
  listen: 127.0.0.1:{admin_port}
logging:
  level: info
"""


def prepare(srv, readable=False):
    """Server.start() up to the spawn: the folder, zones and config. READABLE:
    every file readable by others (a server that drops root must read them)."""
    srv._tmp = tempfile.TemporaryDirectory(prefix="steerdns-test-")
    srv.dir = srv._tmp.name
    os.makedirs(os.path.join(srv.dir, "zones"))
    for name, text in srv.zones.items():
        srv.write_file(srv.zone_path(name), text)
    srv.write_config()
    if readable:
        for path in (srv.dir, os.path.join(srv.dir, "zones")):
            os.chmod(path, 0o755)
        for name in srv.zones:
            os.chmod(srv.zone_path(name), 0o644)
        os.chmod(srv.config_path, 0o644)
    srv._log = open(srv.log_path, "wb")
    srv._out = open(os.path.join(srv.dir, "stdout.log"), "wb")


def state_folder(srv, writable):
    """SRV's state/ folder, owned by root (mode 0755: nobody cannot write
    it) or by nobody, as /var/lib/steerdns is by the service user."""
    folder = os.path.join(srv.dir, "state")
    os.makedirs(folder, exist_ok=True)
    nobody = __import__("pwd").getpwnam("nobody")
    os.chown(folder, nobody.pw_uid if writable else 0, nobody.pw_gid if writable else 0)
    os.chmod(folder, 0o755)


def admin_json(srv, path):
    import json
    with urllib.request.urlopen(srv.admin_url + path, timeout=5) as r:
        return json.load(r)


class NotifyTest(unittest.TestCase):
    """Type=notify: READY=1 comes after the first probe round and the binds."""

    def test_ready_only_after_the_first_probe_round(self):
        port = h.free_port(("127.61.0.1", "127.61.0.2"))
        good = bk.Backend("127.61.0.1", port, "healthy").start()
        hung = bk.Backend("127.61.0.2", port, "hang").start()
        self.addCleanup(good.stop)
        self.addCleanup(hung.stop)
        srv = h.Server({"deploy.test.yaml": ZONE % {"port": port, "path": bk.JFROG_PATH}}, config_text=CONFIG % {"user": ""})
        self.addCleanup(srv.close)
        # Start by hand, as systemd would: with NOTIFY_SOCKET set.
        prepare(srv)
        notify_path = os.path.join(srv.dir, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(notify_path)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        started = time.monotonic()
        srv.proc = subprocess.Popen([h.BIN, "serve", "-c", srv.config_path], stdin=subprocess.DEVNULL,
                                    stdout=srv._out, stderr=srv._log, cwd=srv.dir, env=env)
        sock.settimeout(h.DEADLINE)
        messages = []
        while not any("READY=1" in m for m in messages):
            try:
                messages.append(sock.recv(4096).decode())
            except socket.timeout:
                self.fail("no READY=1 within %.0f s; got %r; log:\n%s"
                          % (h.DEADLINE, messages, srv.all_output()))
        ready_after = time.monotonic() - started
        # The hung VIP's first probe must have timed out (1 s) before READY.
        self.assertGreaterEqual(ready_after, 0.9, "READY=1 before the hung probe's timeout")
        status = admin_json(srv, "/status")
        vips = {v["address"]: v for v in status["geo_names"][0]["regions"][0]["vips"]}
        self.assertEqual(vips["127.61.0.1"]["state"], "up")
        self.assertEqual(vips["127.61.0.2"]["state"], "down")
        self.assertEqual(vips["127.61.0.2"]["reason"], "timeout")
        # ... and the very first answer already leaves the hung VIP out.
        r = h.dig(srv.port, "svc.deploy.test", "A", "+subnet=81.2.69.0/24")
        self.assertEqual(r.status, "NOERROR", r.stdout)
        self.assertEqual(sorted(r.rdatas("A")), ["127.61.0.1"])
        self.assertIn("STATUS=serving 1 zones", " ".join(messages))
        # A reload says RELOADING=1, then READY=1 again; SIGTERM says STOPPING=1.
        srv.proc.send_signal(signal.SIGHUP)
        seen = []
        sock.settimeout(h.DEADLINE)
        while not (any("RELOADING=1" in m for m in seen) and any("READY=1" in m for m in seen)):
            seen.append(sock.recv(4096).decode())
        srv.proc.send_signal(signal.SIGTERM)
        self.assertIn("STOPPING=1", sock.recv(4096).decode())
        self.assertEqual(srv.proc.wait(h.DEADLINE), 0)


@unittest.skipUnless(os.geteuid() == 0, "the privilege drop needs root")
class PrivilegeDropTest(unittest.TestCase):
    def test_root_binds_then_becomes_server_user(self):
        port = h.free_port(("127.61.0.1", "127.61.0.2"))
        backends = bk.Backends(["127.61.0.1", "127.61.0.2"], port)
        self.addCleanup(backends.stop)
        srv = h.Server({"deploy.test.yaml": ZONE % {"port": port, "path": bk.JFROG_PATH}},
                       config_text=CONFIG % {"user": "  user: nobody"})
        # The unprivileged user must still read its files on reload.
        self.addCleanup(srv.close)
        prepare(srv, readable=True)
        srv._spawn()
        nobody = __import__("pwd").getpwnam("nobody")
        with open("/proc/%d/status" % srv.proc.pid) as f:
            status = f.read()
        uids = re.search(r"(?m)^Uid:\s+(.*)$", status).group(1).split()
        gids = re.search(r"(?m)^Gid:\s+(.*)$", status).group(1).split()
        groups = re.search(r"(?m)^Groups:\s*(.*)$", status).group(1).split()
        self.assertEqual(uids, [str(nobody.pw_uid)] * 4, status)
        self.assertEqual(gids, [str(nobody.pw_gid)] * 4, status)
        self.assertNotIn("0", groups)
        self.assertIn("running as user nobody", srv.all_output())
        r = h.dig(srv.port, "svc.deploy.test", "A", "+subnet=81.2.69.0/24")
        self.assertEqual(sorted(r.rdatas("A")), ["127.61.0.1", "127.61.0.2"], r.stdout)
        # A reload (as nobody) still reads the config and zones.
        srv.write_zone("deploy.test.yaml", srv.zones["deploy.test.yaml"].replace("ttl: 30", "ttl: 31"))
        os.chmod(srv.zone_path("deploy.test.yaml"), 0o644)
        srv.proc.send_signal(signal.SIGHUP)
        h.wait_for(lambda: [rr for rr in h.dig(srv.port, "svc.deploy.test", "A").answer if rr[1] == 31],
                   what="the reloaded TTL 31")

    def test_systemctl_reload_fails_when_the_reload_fails(self):
        """The unit's ExecReload, run as the service user (as systemd does),
        exits 0 for a good reload and non-zero for a broken zone: `systemctl
        reload` then reports the failure (kill -HUP always succeeded)."""
        port = h.free_port(("127.61.0.1", "127.61.0.2"))
        backends = bk.Backends(["127.61.0.1", "127.61.0.2"], port)
        self.addCleanup(backends.stop)
        srv = h.Server({"deploy.test.yaml": ZONE % {"port": port, "path": bk.JFROG_PATH}},
                       config_text=CONFIG % {"user": "  user: nobody"} + "health:\n  state_file: state/state.yaml\n")
        self.addCleanup(srv.close)
        prepare(srv, readable=True)
        state_folder(srv, writable=True)
        srv._spawn()
        with open(os.path.join(h.SOURCE, "deploy", "steerdns.service.in")) as f:
            line = re.search(r"(?m)^ExecReload=(.*)$", f.read()).group(1)
        command = (line.replace("@BINDIR@/steerdns", h.BIN)
                   .replace("@SYSCONFDIR@/steerdns/steerdns.yaml", srv.config_path).split())

        def reload():
            return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + command,
                                  capture_output=True, text=True, timeout=h.DEADLINE + 30)

        p = reload()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("reloaded: 1 zones", p.stdout)
        srv.write_zone("deploy.test.yaml", "zone: [\n")
        os.chmod(srv.zone_path("deploy.test.yaml"), 0o644)
        p = reload()
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("deploy.test.yaml", p.stderr)
        r = h.dig(srv.port, "svc.deploy.test", "A", "+subnet=81.2.69.0/24")
        self.assertEqual(sorted(r.rdatas("A")), ["127.61.0.1", "127.61.0.2"], r.stdout)

    def test_a_state_folder_the_server_user_cannot_write_fails_the_start(self):
        """Found at start, not at the first drain (409): the start fails with
        the folder and the reason; the same folder made the user's starts."""
        srv = h.Server({"deploy.test.yaml": ZONE % {"port": 1, "path": "/"}},
                       config_text=CONFIG % {"user": "  user: nobody"} + "health:\n  state_file: state/state.yaml\n")
        self.addCleanup(srv.close)
        prepare(srv, readable=True)
        state_folder(srv, writable=False)
        p = run([h.BIN, "serve", "-c", srv.config_path])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"health\.state_file: cannot write \S+/state/state\.yaml\.tmp: Permission denied")
        state_folder(srv, writable=True)
        srv._spawn()
        self.assertIn("running as user nobody", srv.all_output())

    def test_unknown_user_is_rejected_with_file_and_line(self):
        with tempfile.TemporaryDirectory(prefix="steerdns-test-") as d:
            os.makedirs(os.path.join(d, "zones"))
            with open(os.path.join(d, "zones", "deploy.test.yaml"), "w") as f:
                f.write(ZONE % {"port": 1, "path": "/"})
            config = os.path.join(d, "steerdns.yaml")
            with open(config, "w") as f:
                f.write(CONFIG.replace("{port}", "5300").replace("{admin_port}", "5301")
                        % {"user": "  user: no-such-user-here"})
            p = run([h.BIN, "check", "-c", config])
            self.assertEqual(p.returncode, 1)
            self.assertIn("%s:4:" % config, p.stderr)
            self.assertIn("no user 'no-such-user-here'", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
