#!/usr/bin/env python3
"""steerdns behind a real resolver: unbound on loopback with subnetcache sends
EDNS Client Subnet to steerdns, clients in different places get their own
regions, and unbound answers later clients inside our ECS scope from its cache
without asking steerdns again (the point of returning the widest scope)."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from geozones import EXAMPLE_ZONE, PARIS, SINGAPORE, VIRGINIA, subnet  # noqa: E402

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"

UNBOUND_CONF = """server:
    interface: 127.0.0.1
    port: {port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{dir}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 1
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    qname-minimisation: no
    module-config: "subnetcache iterator"
    send-client-subnet: 127.0.0.1
    max-client-subnet-ipv4: 24
    max-client-subnet-ipv6: 56
stub-zone:
    name: "example.com"
    stub-addr: 127.0.0.1@{upstream}
    stub-prime: no
remote-control:
    control-enable: no
"""


@unittest.skipUnless(os.path.exists(UNBOUND), "unbound is not installed")
class ThroughUnbound(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = h.Server({"example.com.yaml": EXAMPLE_ZONE}, query_log=True)
        cls.srv.start()
        cls.dir = tempfile.mkdtemp(prefix="steerdns-unbound-")
        cls.port = h.free_port()
        conf = os.path.join(cls.dir, "unbound.conf")
        with open(conf, "w") as f:
            f.write(UNBOUND_CONF.format(port=cls.port, dir=cls.dir, upstream=cls.srv.port))
        cls.log = open(os.path.join(cls.dir, "unbound.log"), "w+")
        cls.unbound = subprocess.Popen([UNBOUND, "-d", "-c", conf], stdout=cls.log,
                                       stderr=subprocess.STDOUT)
        try:
            h.wait_for(lambda: cls.unbound.poll() is None and
                       h.dig(cls.port, "www.example.com", "A", time_=1).status == "NOERROR",
                       what="unbound answering")
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.unbound.poll() is None:
            cls.unbound.terminate()
            try:
                cls.unbound.wait(10)
            except subprocess.TimeoutExpired:
                cls.unbound.kill()
                cls.unbound.wait()
        cls.log.close()
        cls.srv.stop()
        cls.srv.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def upstream_queries(self, name="artifacts.example.com."):
        """How many times steerdns was asked NAME (its query log)."""
        return sum(1 for line in self.srv.log().splitlines()
                   if " query " in line and " %s A " % name in line)

    def ask(self, client):
        r = h.dig(self.port, "artifacts.example.com", "A", "+subnet=" + client)
        self.assertEqual(r.status, "NOERROR", r.stdout)
        return r

    def test_regions_per_client_and_cache_reuse_within_scope(self):
        before = self.upstream_queries()
        paris = self.ask("193.51.24.0/24")
        self.assertEqual(sorted(paris.rdatas("A")), PARIS, paris.stdout)
        h.wait_for(lambda: self.upstream_queries() == before + 1, what="steerdns asked once")
        scope = subnet(paris)
        self.assertIsNotNone(scope, "unbound passes the scope back to its client\n" + paris.stdout)
        self.assertGreater(scope[2], 0)
        self.assertLess(scope[2], 24, "the built-in database merges France wider than a /24")

        # Another French /24 inside that scope: answered from unbound's cache.
        neighbour = self.ask("193.51.25.0/24")
        self.assertEqual(sorted(neighbour.rdatas("A")), PARIS)
        self.assertEqual(self.upstream_queries(), before + 1,
                         "a client inside the scope must not reach steerdns")

        # Clients elsewhere: their own regions, each one more upstream query.
        virginia = self.ask("8.8.8.0/24")
        self.assertEqual(sorted(virginia.rdatas("A")), VIRGINIA, virginia.stdout)
        singapore = self.ask("1.1.1.0/24")
        self.assertEqual(sorted(singapore.rdatas("A")), SINGAPORE, singapore.stdout)
        self.assertEqual(self.upstream_queries(), before + 3)

        # And Paris again: still cached.
        self.assertEqual(sorted(self.ask("193.51.24.0/24").rdatas("A")), PARIS)
        self.assertEqual(self.upstream_queries(), before + 3)

    def test_static_names_are_shared_by_everyone(self):
        before = self.upstream_queries("mail.example.com.")
        for client in ("193.51.24.0/24", "8.8.8.0/24", "1.1.1.0/24"):
            r = h.dig(self.port, "mail.example.com", "A", "+subnet=" + client)
            self.assertEqual(r.rdatas("A"), ["127.0.0.25"], r.stdout)
        self.assertEqual(self.upstream_queries("mail.example.com.") - before, 1,
                         "scope 0: one cached answer for every client")


if __name__ == "__main__":
    unittest.main()
