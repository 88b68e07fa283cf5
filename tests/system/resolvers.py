"""Real resolvers for the steerdns system tests (not a test file): unbound
and PowerDNS Recursor on loopback, each sending EDNS Client Subnet to a
steerdns for example.com (unbound's subnetcache; the Recursor's
edns-subnet-allow-list, with the client's own ECS passed through), and
nothing anywhere else: no root priming (the root hints name an address in
127.0.0.0/8 where nothing listens, and nothing outside example.com is
asked), no security polling, no DNSSEC validation (the unreachable root
could not prove example.com insecure)."""

import os
import shutil
import subprocess
import tempfile

from clients import dig
from common import free_port, wait_for

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
RECURSOR = shutil.which("pdns_recursor") or "/usr/sbin/pdns_recursor"

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
    num-threads: 1
stub-zone:
    name: "example.com"
    stub-addr: 127.0.0.1@{upstream}
    stub-prime: no
remote-control:
    control-enable: no
"""

# A root that cannot be reached: priming goes nowhere outside loopback.
ROOT_HINTS = """.                        3600000      NS    a.root-servers.test.
a.root-servers.test.     3600000      A     127.0.0.254
"""

RECURSOR_CONF = """local-address=127.0.0.1
local-port={port}
allow-from=127.0.0.0/8
socket-dir={dir}
daemon=no
write-pid=no
disable-syslog=yes
log-common-errors=yes
loglevel=4
threads=1
hint-file={dir}/root.hints
dont-query=
security-poll-suffix=
dnssec=off
forward-zones=example.com=127.0.0.1:{upstream}
edns-subnet-allow-list=example.com
use-incoming-edns-subnet=yes
ecs-ipv4-bits=24
ecs-ipv6-bits=56
max-qperq=1000
"""


class Resolver:
    """One resolver process forwarding example.com to steerdns on UPSTREAM."""

    name = None
    binary = None

    def __init__(self, upstream):
        self.upstream = upstream
        self.port = free_port()
        self.dir = None
        self.proc = None
        self.log = None

    def command(self):
        raise NotImplementedError

    def write_config(self):
        raise NotImplementedError

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="steerdns-%s-" % self.name)
        self.write_config()
        self.log = open(os.path.join(self.dir, "resolver.log"), "w+")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        try:
            def answering():
                r = dig(self.port, "www.example.com", "A", time_=1)
                return self.proc.poll() is None and r.status == "NOERROR" and "qr" in r.flags
            wait_for(answering, what="%s answering" % self.name)
        except BaseException:
            self.stop()
            raise
        return self

    def output(self):
        if self.log is None:
            return ""
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()
            self.log = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class Unbound(Resolver):
    name = "unbound"
    binary = UNBOUND

    def write_config(self):
        with open(os.path.join(self.dir, "unbound.conf"), "w") as f:
            f.write(UNBOUND_CONF.format(port=self.port, dir=self.dir, upstream=self.upstream))

    def command(self):
        return [UNBOUND, "-d", "-c", os.path.join(self.dir, "unbound.conf")]


class Recursor(Resolver):
    name = "pdns-recursor"
    binary = RECURSOR

    def write_config(self):
        with open(os.path.join(self.dir, "root.hints"), "w") as f:
            f.write(ROOT_HINTS)
        with open(os.path.join(self.dir, "recursor.conf"), "w") as f:
            f.write(RECURSOR_CONF.format(port=self.port, dir=self.dir, upstream=self.upstream))

    def command(self):
        return [RECURSOR, "--config-dir=" + self.dir]


def installed(resolver_class):
    return os.path.exists(resolver_class.binary)
