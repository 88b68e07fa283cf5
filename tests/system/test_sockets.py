#!/usr/bin/env python3
"""Socket behaviour an operator relies on: a wildcard listen address answers
from the address each query was sent to, and a TCP client that sends its
queries and half-closes still gets every answer (RFC 7766 §6.2.1); a second
instance cannot take a DNS or admin address that one already holds."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import ServerTestCase, standard_zone  # noqa: E402

ZONES = {"example.com.yaml": standard_zone("example.com")}


class WildcardListen(ServerTestCase):
    SERVER_ARGS = dict(zones=ZONES, listen=["0.0.0.0:{port}"], ready_addr="127.0.0.1")

    def test_udp_answer_leaves_from_the_queried_address(self):
        # dig ignores a reply from any other source than the one it asked
        # ("reply from unexpected source"), so an answer proves the source.
        for addr in ("127.0.0.1", "127.0.0.2", "127.0.0.53"):
            r = h.dig(self.srv.port, "www.example.com", "A", server=addr)
            self.assertAnswered(r)
            self.assertNotIn("unexpected source", r.stdout)

    def test_raw_reply_source_address(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2.0)
            s.sendto(h.build_query("www.example.com", "A", id=7), ("127.0.0.9", self.srv.port))
            data, source = s.recvfrom(4096)
        self.assertEqual(source, ("127.0.0.9", self.srv.port))
        self.assertEqual(h.parse_message(data).id, 7)

    def test_tcp_on_another_loopback_address(self):
        self.assertAnswered(h.dig(self.srv.port, "www.example.com", "A", "+tcp",
                                  server="127.0.0.7"))


@unittest.skipUnless(h.ipv6_usable(), "::1 is not usable here")
class WildcardListen6(ServerTestCase):
    @classmethod
    def make_server(cls):
        return h.Server(ZONES, listen=["[::]:{port}"], ready_addr="::1")

    def test_udp_over_ipv6_wildcard(self):
        self.assertAnswered(h.dig(self.srv.port, "www.example.com", "A", server="::1"))


class HalfClose(ServerTestCase):
    SERVER_ARGS = dict(zones=ZONES, tcp={"max_pipelined": 2})

    def test_queries_then_shutdown_get_every_answer(self):
        ids = list(range(40, 46))
        sock = h.tcp_connect(self.srv.port)
        try:
            sock.sendall(b"".join(h.frame(h.build_query("www.example.com", "A", id=i))
                                  for i in ids))
            sock.shutdown(socket.SHUT_WR)
            got = []
            for _ in ids:
                data = h.tcp_read_msg(sock, timeout=5.0)
                self.assertIsNotNone(data, f"answers so far: {got}")
                got.append(h.parse_message(data).id)
            self.assertEqual(got, ids)
            self.assertTrue(h.wait_closed(sock, h.DEADLINE), "the server should close after answering")
        finally:
            sock.close()



class OneServerPerAddress(unittest.TestCase):
    def test_second_instance_on_the_same_address_fails(self):
        with h.Server(ZONES) as first:
            # The same config: same port. It must not join the first one's
            # SO_REUSEPORT group and take half of its traffic.
            second = subprocess.run([h.BIN, "serve", "-c", first.config_path],
                                    capture_output=True, text=True, timeout=20)
            self.assertEqual(second.returncode, 1, second.stderr)
            self.assertIn("Address already in use", second.stderr)
            self.assertTrue(first.alive())
            self.assertEqual(h.dig(first.port, "www.example.com", "A").status, "NOERROR")


class OneAdminApiPerAddress(unittest.TestCase):
    def test_second_instance_on_the_same_admin_address_fails(self):
        # Fixed: cpp-httplib's SO_REUSEPORT let a second instance share the
        # admin port without a word; Prometheus then scraped both in turn.
        admin = "admin:\n  listen: 127.0.0.1:{admin_port}\n"
        with h.Server(ZONES, extra_config=admin) as first:
            with open(first.config_path) as f:
                config = f.read()
            # Another DNS port, the same admin address.
            other = config.replace("127.0.0.1:%d\"" % first.port, "127.0.0.1:%d\"" % first.port2)
            self.assertNotEqual(other, config)
            path = os.path.join(first.dir, "second.yaml")
            with open(path, "w") as f:
                f.write(other)
            second = subprocess.run([h.BIN, "serve", "-c", path], capture_output=True, text=True,
                                    timeout=h.DEADLINE)
            self.assertEqual(second.returncode, 1, second.stderr)
            self.assertIn("127.0.0.1:%d (admin): cannot bind" % first.admin_port, second.stderr)
            self.assertIn("Address already in use", second.stderr)
            self.assertTrue(first.alive())
            with urllib.request.urlopen(first.admin_url + "/metrics", timeout=h.DEADLINE) as r:
                self.assertEqual(r.status, 200)
            self.assertEqual(h.dig(first.port, "www.example.com", "A").status, "NOERROR")


class SighupDuringStartup(unittest.TestCase):
    def test_sighup_before_serving_does_not_kill(self):
        example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                               "examples", "zones", "example.com.yaml")
        port = h.free_port()
        with tempfile.TemporaryDirectory(prefix="steerdns-hup-") as tmp:
            config = os.path.join(tmp, "steerdns.yaml")
            with open(config, "w") as f:
                f.write("server:\n  listen: [127.0.0.1:%d]\nzones: [%s]\n"
                        % (port, os.path.abspath(example)))
            proc = subprocess.Popen([h.BIN, "serve", "-c", config], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            def hup_disposition():
                """"SigIgn" or "SigCgt" once SIGHUP is ignored or caught (not
                the default, which kills), else None."""
                with open("/proc/%d/status" % proc.pid) as f:
                    for line in f:
                        if (line.startswith(("SigIgn:", "SigCgt:"))
                                and int(line.split()[1], 16) & (1 << (signal.SIGHUP - 1))):
                            return line.split(":")[0]
                return None

            try:
                # From main() on, serve ignores SIGHUP until its handler is
                # installed; send it in that window, while the built-in GeoIP
                # database loads.  (On a machine too busy for this poll to
                # see the window, the handler is in already: sent then too.)
                seen = h.wait_for(hup_disposition, interval=0.001, what="SIGHUP ignored or caught")
                proc.send_signal(signal.SIGHUP)
                print("  SIGHUP sent while %s" % {"SigIgn": "ignored (the startup window)",
                                                  "SigCgt": "caught (after the window)"}[seen])
                h.wait_for(lambda: proc.poll() is not None or
                           h.dig(port, "example.com", "SOA", time_=1).status == "NOERROR",
                           what="the server answering")
                self.assertIsNone(proc.poll(), "killed by SIGHUP during startup")
            finally:
                proc.terminate()
                _, err = proc.communicate(timeout=h.DEADLINE)
            self.assertEqual(proc.returncode, 0, err)



class ReceiveBuffer(ServerTestCase):
    """server.udp_receive_buffer sizes every worker's UDP socket (root: with
    SO_RCVBUFFORCE, beyond net.core.rmem_max)."""
    SERVER_ARGS = dict(zones=ZONES, workers=2, server_options={"udp_receive_buffer": "3m"})

    def test_every_udp_socket_has_the_buffer(self):
        if os.geteuid() != 0:
            self.skipTest("SO_RCVBUFFORCE needs root; rmem_max caps it otherwise")
        out = subprocess.run(["ss", "-uamnH", f"sport = :{self.srv.port}"], capture_output=True, text=True,
                             check=True).stdout
        sizes = [int(x) for x in __import__("re").findall(r"rb(\d+)", out)]
        self.assertEqual(len(sizes), 2, out)  # one socket per worker
        for rb in sizes:  # the kernel reports twice the payload it grants
            self.assertEqual(rb, 2 * 3 * 1024 * 1024, out)
        self.assertAnswered(h.dig(self.srv.port, "www.example.com", "A"))


if __name__ == "__main__":
    unittest.main()
