"""Basics shared by the steerdns system tests (not a test file: CMake runs
only tests/system/test_*.py).

  * where things are: REPO, SOURCE, BIN (STEERDNS_BIN, default
    <repo>/build/steerdns), DIG, KDIG
  * DEADLINE and wait_for(): the one way to wait for something to happen
  * require_binary(), ipv6_usable(), free_port()
  * tail(): the end of a log, for failure messages
  * process figures from /proc: cpu_seconds(), rss_kib(), open_fds(),
    udp_drops(), udp_rx_queue()

No test asserts how fast something happens: a test waits for the condition
it needs, polling, with DEADLINE as its only bound.  DEADLINE is generous (a
passing test never comes near it on a loaded machine or under a sanitizer);
it only keeps a broken server from hanging the suite.  The only "wait for an
absence" is a socket receive timeout (see dnswire.raw_udp), which tests
follow by proving the server is still alive.
"""

import os
import socket
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SOURCE = os.environ.get("STEERDNS_SOURCE_DIR", REPO)
BIN = os.environ.get("STEERDNS_BIN") or os.path.join(REPO, "build", "steerdns")

DIG = os.environ.get("DIG", "dig")
KDIG = os.environ.get("KDIG", "kdig")

# The deadline of every wait for a condition: a server start, a health
# transition, a reload, a close, an exit.
DEADLINE = 60.0


def wait_for(cond, timeout=DEADLINE, interval=0.05, what="condition"):
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


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(hosts=("127.0.0.1",)):
    """A port number currently free for both UDP and TCP on every host given."""
    if isinstance(hosts, str):
        hosts = (hosts,)
    for _ in range(200):
        first = socket.socket(family(hosts[0]), socket.SOCK_DGRAM)
        try:
            first.bind((hosts[0], 0))
            port = first.getsockname()[1]
        finally:
            first.close()
        ok = True
        for host in hosts:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(family(host), kind)
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


def tail(text, n=40):
    return "\n".join(text.splitlines()[-n:])


# ---------------------------------------------------------------------------
# process figures (Linux /proc)


def cpu_seconds(pid):
    """User + system CPU time of every thread of `pid` so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def udp_drops(port):
    """Datagrams the kernel dropped at the full receive buffers of the IPv4 UDP
    sockets bound to `port` (the last column of /proc/net/udp)."""
    total = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port:
                total += int(fields[-1])
    return total


def udp_rx_queue(port):
    """Bytes waiting in the fullest receive queue of the IPv4 UDP sockets bound
    to `port` (rx_queue in /proc/net/udp)."""
    most = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port:
                most = max(most, int(fields[4].split(":")[1], 16))
    return most
