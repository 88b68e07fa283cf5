"""HTTP(S) backends for the health-check system tests.

A `Backend` is a small threaded HTTP server bound to one loopback address and
port (a VIP), with a switchable `mode`:

  healthy            GET /router/api/v1/system/health -> 200, JFrog JSON, all HEALTHY
  unhealthy          -> 503, JFrog JSON, router and services UNHEALTHY
  service_unhealthy  -> 200, router HEALTHY but one service UNHEALTHY
  redirect           -> 302 with a body containing "HEALTHY" (no Location)
  text               -> 200, "all good" (no JSON, no "HEALTHY")
  hang               accept, read the request, never answer (until the peer
                     closes, the backend stops, or 30 s pass)
  endless            -> 200, a JSON document whose body never ends (no length;
                     filler as fast as the client reads)
  endless_headers    -> 200, then header lines that never end
  trickle            a healthy answer sent one byte per second (TRICKLE_PERIOD)

The last four stop when the peer closes, the backend stops, or HANG_LIMIT
(30 s) passes; each request's record gets "end" (monotonic time the handler
finished), "sent" (bytes written) and "ended_by" ("peer": the client hung up;
"limit": HANG_LIMIT passed; "stop": the backend stopped; "done": the whole
trickled answer went out), so a test can see that the prober, not the
backend, ended the request.

Any other path answers 404.  `stop()` closes the listening socket (new
connections are refused); `start()` binds the same address and port again.
With `tls=` (an ssl.SSLContext) connections are TLS; `tls` can be swapped
while running (new connections use the new context and certificate).

`TestPKI` makes a throw-away CA and server certificates with the `openssl`
CLI.  Only the Python standard library and `openssl` are used; everything
listens on 127.0.0.0/8.
"""

import http.server
import json
import os
import random
import select
import socket
import ssl
import subprocess
import threading
import time

JFROG_PATH = "/router/api/v1/system/health"

HEALTHY_JSON = {
    "router": {"node_id": "n1", "state": "HEALTHY", "message": "OK"},
    "services": [{"service_id": "jfrt@01", "node_id": "n1", "state": "HEALTHY",
                  "message": "OK"}],
}
UNHEALTHY_JSON = {
    "router": {"node_id": "n1", "state": "UNHEALTHY", "message": "Router is unhealthy"},
    "services": [{"service_id": "jfrt@01", "node_id": "n1", "state": "UNHEALTHY",
                  "message": "Artifactory is down"}],
}
SERVICE_UNHEALTHY_JSON = {
    "router": {"node_id": "n1", "state": "HEALTHY", "message": "OK"},
    "services": [{"service_id": "jfrt@01", "node_id": "n1", "state": "HEALTHY",
                  "message": "OK"},
                 {"service_id": "jfac@01", "node_id": "n1", "state": "UNHEALTHY",
                  "message": "Access is down"}],
}

MODES = ("healthy", "unhealthy", "service_unhealthy", "redirect", "text", "hang",
         "endless", "endless_headers", "trickle")

HANG_LIMIT = 30.0  # a hung request is released after this long at most
TRICKLE_PERIOD = 1.0  # seconds between two bytes in mode "trickle"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "steerdns-test-backend/1"
    timeout = 10  # socket timeout for reading a request

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        backend = self.server.backend
        mode = backend.mode
        self._entry = backend._record(self, mode)
        try:
            self._answer(backend, mode)
        finally:
            self._entry["end"] = time.monotonic()

    def _answer(self, backend, mode):
        if self.path.split("?", 1)[0] != JFROG_PATH:
            return self._send(404, "text/plain", b"not found\n")
        if mode == "hang":
            return self._hang(backend)
        if mode == "endless":
            return self._endless(backend)
        if mode == "endless_headers":
            return self._endless_headers(backend)
        if mode == "trickle":
            return self._trickle(backend)
        if mode == "healthy":
            return self._send(200, "application/json", json.dumps(HEALTHY_JSON).encode())
        if mode == "unhealthy":
            return self._send(503, "application/json", json.dumps(UNHEALTHY_JSON).encode())
        if mode == "service_unhealthy":
            return self._send(200, "application/json",
                              json.dumps(SERVICE_UNHEALTHY_JSON).encode())
        if mode == "redirect":
            return self._send(302, "text/plain", b"HEALTHY but moved\n")
        if mode == "text":
            return self._send(200, "text/plain", b"all good\n")
        return self._send(500, "text/plain", b"unknown test mode\n")

    do_HEAD = do_GET

    def _send(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def _write(self, data):
        self.wfile.write(data)
        self._entry["sent"] = self._entry.get("sent", 0) + len(data)

    def _peer_closed(self, wait):
        """True once the peer closed (or the socket failed); waits up to `wait` s."""
        try:
            ready, _, _ = select.select([self.connection], [], [], wait)
            return bool(ready) and not self.connection.recv(4096)
        except (OSError, ValueError):
            return True

    def _ended(self, backend, why=None):
        """Record why the request ended: `why`, else "stop" or "limit"."""
        self._entry["ended_by"] = why or ("stop" if backend._stopping.is_set() else "limit")

    def _endless(self, backend):
        """200 and a body without end, as fast as the client takes it."""
        self.close_connection = True
        deadline = time.monotonic() + HANG_LIMIT
        filler = b"x" * 16384
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self._write(b'{"router": {"node_id": "n1", "state": "HEALTHY", "message": "OK"}, '
                        b'"services": [], "padding": "')
            while not backend._stopping.is_set() and time.monotonic() < deadline:
                self._write(filler)  # raises once the client has closed
        except OSError:
            return self._ended(backend, "peer")
        self._ended(backend)

    def _endless_headers(self, backend):
        """A status line, then header lines without end."""
        self.close_connection = True
        deadline = time.monotonic() + HANG_LIMIT
        try:
            self._write(b"HTTP/1.0 200 OK\r\n")
            i = 0
            while not backend._stopping.is_set() and time.monotonic() < deadline:
                i += 1
                self._write(b"X-Filler-%d: %s\r\n" % (i, b"y" * 200))
        except OSError:
            return self._ended(backend, "peer")
        self._ended(backend)

    def _trickle(self, backend):
        """A whole healthy answer, one byte every TRICKLE_PERIOD."""
        self.close_connection = True
        body = json.dumps(HEALTHY_JSON).encode()
        data = (b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body
        deadline = time.monotonic() + HANG_LIMIT
        try:
            for i in range(len(data)):
                if backend._stopping.is_set() or time.monotonic() >= deadline:
                    return self._ended(backend)
                self._write(data[i:i + 1])
                if self._peer_closed(TRICKLE_PERIOD):
                    return self._ended(backend, "peer")
        except OSError:
            return self._ended(backend, "peer")
        self._ended(backend, "done")

    def _hang(self, backend):
        """Never answer: wait (bounded) until the client gives up or we stop."""
        self.close_connection = True
        sock = self.connection
        deadline = time.monotonic() + HANG_LIMIT
        while not backend._stopping.is_set() and time.monotonic() < deadline:
            try:
                ready, _, _ = select.select([sock], [], [], 0.1)
                if ready and not sock.recv(4096):
                    return self._ended(backend, "peer")
            except (OSError, ValueError):
                return self._ended(backend, "peer")
        self._ended(backend)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, backend):
        self.backend = backend
        super().__init__((backend.address, backend.port), _Handler)

    def finish_request(self, request, client_address):
        ctx = self.backend.tls
        if ctx is None:
            return super().finish_request(request, client_address)
        request.settimeout(5)
        try:
            tls_sock = ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            self.backend._count_handshake_failure()
            return
        try:
            self.RequestHandlerClass(tls_sock, client_address, self)
        finally:
            try:
                tls_sock.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):  # quiet: clients hang up
        pass


class Backend:
    """One HTTP(S) server on (address, port); see the module docstring."""

    def __init__(self, address, port, mode="healthy", tls=None):
        assert mode in MODES, mode
        self.address = address
        self.port = port
        self.mode = mode
        self.tls = tls
        self._lock = threading.Lock()
        self._requests = []          # dicts: time, mode, path, method, headers, sni
        self._sni = []
        self._handshake_failures = 0
        self._httpd = None
        self._thread = None
        self._stopping = threading.Event()

    def __repr__(self):
        return "<Backend %s:%d %s %s>" % (self.address, self.port, self.mode,
                                          "running" if self.running else "stopped")

    # -- control -------------------------------------------------------------
    @property
    def running(self):
        return self._httpd is not None

    def start(self):
        if self._httpd is not None:
            return self
        self._stopping = threading.Event()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="backend-%s:%d" % (self.address, self.port),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Close the listening socket: new connections are refused."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        self._thread.join(5)
        self._thread = None

    def set_mode(self, mode):
        assert mode in MODES, mode
        self.mode = mode

    # -- what it saw -----------------------------------------------------------
    def _record(self, handler, mode):
        entry = {"time": time.monotonic(), "mode": mode, "path": handler.path,
                 "method": handler.command,
                 "headers": {k.lower(): v for k, v in handler.headers.items()}}
        with self._lock:
            self._requests.append(entry)
        return entry

    def _record_sni(self, name):
        with self._lock:
            self._sni.append(name)

    def _count_handshake_failure(self):
        with self._lock:
            self._handshake_failures += 1

    def requests(self, since=0.0, mode=None):
        """Requests received at or after monotonic time `since` (optionally in `mode`)."""
        with self._lock:
            return [r for r in self._requests
                    if r["time"] >= since and (mode is None or r["mode"] == mode)]

    def count(self, since=0.0, mode=None):
        return len(self.requests(since, mode))

    @property
    def sni_names(self):
        with self._lock:
            return list(self._sni)

    @property
    def handshake_failures(self):
        with self._lock:
            return self._handshake_failures


class Backends:
    """One Backend per address, all on the same port."""

    def __init__(self, addresses, port, tls_for=None, modes=None, running=None):
        """tls_for(address, backend) -> SSLContext or None; modes / running: dicts
        by address overriding "healthy" / True."""
        self.port = port
        self.by_addr = {}
        for addr in addresses:
            b = Backend(addr, port, (modes or {}).get(addr, "healthy"))
            if tls_for is not None:
                b.tls = tls_for(addr, b)
            self.by_addr[addr] = b

        try:
            for addr, b in self.by_addr.items():
                if (running or {}).get(addr, True):
                    b.start()
        except BaseException:
            self.stop()
            raise

    def __getitem__(self, addr):
        return self.by_addr[addr]

    def __iter__(self):
        return iter(self.by_addr.values())

    def stop(self):
        for b in self.by_addr.values():
            try:
                b.stop()
            except Exception:
                pass


# ---------------------------------------------------------------------------
# a throw-away PKI made with the openssl CLI

_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = @alt
[alt]
DNS.1 = %(name)s
"""


def _openssl(args, cwd):
    p = subprocess.run(["openssl"] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s%s" % (" ".join(args), p.stdout.decode(),
                                                         p.stderr.decode()))


class TestPKI:
    """A CA and server certificates in `directory` (ca.pem, NAME.pem, NAME.key)."""

    __test__ = False  # not a unittest class

    def __init__(self, directory, names=("artifacts.example.com", "wrong.example.net")):
        self.dir = directory
        self.names = tuple(names)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        cnf = os.path.join(directory, "ca.cnf")
        with open(cnf, "w") as f:
            f.write(_OPENSSL_CNF % {"name": "ca.invalid"})
        _openssl(["req", "-x509", "-config", cnf, "-extensions", "v3_ca"] + ec +
                 ["-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                  "-subj", "/CN=steerdns test CA"], directory)
        for name in self.names:
            leaf_cnf = os.path.join(directory, name + ".cnf")
            with open(leaf_cnf, "w") as f:
                f.write(_OPENSSL_CNF % {"name": name})
            _openssl(["req", "-new", "-config", leaf_cnf] + ec +
                     ["-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name],
                     directory)
            _openssl(["x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                      "-set_serial", str(random.randrange(1, 1 << 62)), "-days", "2",
                      "-extfile", leaf_cnf, "-extensions", "v3_leaf", "-out", name + ".pem"],
                     directory)

    @property
    def ca_path(self):
        return os.path.join(self.dir, "ca.pem")

    def cert_path(self, name):
        return os.path.join(self.dir, name + ".pem")

    def server_context(self, name, backend=None):
        """A server SSLContext presenting NAME's certificate; records SNI on `backend`."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path(name), os.path.join(self.dir, name + ".key"))
        if backend is not None:
            def on_sni(_sslobj, server_name, _ctx):
                backend._record_sni(server_name)
                return None
            ctx.sni_callback = on_sni
        return ctx

    def client_handshake(self, address, port, server_name, timeout=5.0):
        """Verify like a careful client: None on success, else the error text."""
        ctx = ssl.create_default_context(cafile=self.ca_path)
        try:
            with socket.create_connection((address, port), timeout=timeout) as raw:
                with ctx.wrap_socket(raw, server_hostname=server_name):
                    return None
        except (ssl.SSLError, OSError) as exc:
            return str(exc)
