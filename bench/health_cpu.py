#!/usr/bin/env python3
"""Prober CPU with 1,000 VIPs: the `cpu` part of bench/health_bench.py (its
docstring says what is measured and how); run through health_bench.py.
"""

import asyncio
import multiprocessing
import os
import re
import resource
import ssl
import subprocess
import sys
import tempfile
import time

from health_bench import BACKEND_LIFETIME, HZ, QNAME, cpus, h, pin_process


# ---------------------------------------------------------------------------
# prober CPU: 1,000 VIPs


def many_vips(n_regions=250, per_region=4):
    return [["127.10.%d.%d" % (r, i + 1) for i in range(per_region)] for r in range(n_regions)]


def cpu_zone(regions, check):
    """250 regions spread over the globe (a 10 x 25 grid), one geo name."""
    lines = ["zone: example.com", "ttl: 3600",
             "soa: {mname: ns1, rname: hostmaster, serial: 1, refresh: 3600, retry: 600,"
             " expire: 1209600, minimum: 300}",
             "ns: [ns1, ns2]", "records:", "  ns1: {A: 127.0.0.1}", "  ns2: {A: 127.0.0.2}",
             "regions:"]
    for r, vips in enumerate(regions):
        lat = -54 + 12 * (r // 25)
        lon = -172.8 + 14.4 * (r % 25)
        lines.append("  r%03d: {location: [%.1f, %.1f], vips: [%s]}"
                     % (r, lat, lon, ", ".join(vips)))
    lines += ["geo:", "  artifacts:",
              "    regions: [%s]" % ", ".join("r%03d" % r for r in range(len(regions))),
              "    check: {%s}" % check]
    return "\n".join(lines) + "\n"


def backend_main(addrs, port, kind, cert, key, counter, ready, cpu):
    """The many-address backend: one asyncio loop; HTTP 200 (over TLS for https), or accept."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = None
    if kind == "https":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    response = (b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.buf = b""
            if kind == "tcp":
                counter.value += 1  # a tcp check only connects

        def data_received(self, data):
            self.buf += data
            if b"\r\n\r\n" in self.buf:
                self.transport.write(response)
                self.transport.close()
                counter.value += 1

        def eof_received(self):
            return False  # close

    async def main():
        loop = asyncio.get_running_loop()
        for a in addrs:
            await loop.create_server(Probe, a, port, ssl=ctx, backlog=64, reuse_address=True)
        ready.set()
        await asyncio.sleep(BACKEND_LIFETIME)

    asyncio.run(main())


def times(path):
    """(utime, stime) in clock ticks from a /proc stat file (fields 14 and 15 of proc(5))."""
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def ticks(path):
    return sum(times(path))


def prober_tid(pid):
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() == "prober":
                    return int(tid)
        except OSError:
            pass
    return None


def schedstat_ns(pid, tid):
    with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
        return int(f.read().split()[0])


def make_cert(folder):
    """A self-signed P-256 certificate for the service name (its own trust anchor)."""
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=" + QNAME,
                        "-addext", "subjectAltName=DNS:" + QNAME],
                       check=True, capture_output=True, timeout=30)
    return cert, key


# KIND: (check type, extra check keys). https-insecure is what the issue asked
# for; https-verify is the production shape (SNI, Host and the certificate
# verified for the service name while connecting to the VIP), which lets
# libcurl cache the CA store (its cache only applies when verifying).
KINDS = {
    "http": ("http", "path: /health"),
    "tcp": ("tcp", ""),
    "https-insecure": ("https", "path: /health, insecure: true"),
    "https-verify": ("https", "path: /health, service: %s, ca: {cert}" % QNAME),
}


def cpu_variant(spec, window, warmup, folder):
    """SPEC is KIND[:VIPS] (VIPS a multiple of 250, default 1000)."""
    kind, _, n = spec.partition(":")
    n_vips = int(n or 1000)
    check_type, extra = KINDS[kind]
    regions = many_vips(250, max(1, n_vips // 250))
    addrs = [a for vips in regions for a in vips]
    port = h.free_port(tuple(addrs))
    cert = key = None
    if check_type == "https":
        cert, key = make_cert(folder)
    check = ("type: %s, port: %d, interval: 1s, timeout: 500ms, rise: 2, fall: 2"
             % (check_type, port)) + (", " + extra.format(cert=cert) if extra else "")
    server_cpu, client_cpu = cpus()
    mp = multiprocessing.get_context("spawn")
    counter = mp.Value("Q", 0, lock=False)
    ready = mp.Event()
    backend = mp.Process(target=backend_main, daemon=True,
                         args=(addrs, port, check_type, cert, key, counter, ready, client_cpu))
    backend.start()
    srv = None
    try:
        if not ready.wait(30):
            raise SystemExit("the backend did not listen on %d addresses within 30 s" % len(addrs))
        srv = h.Server({"example.com.yaml": cpu_zone(regions, check)}, workers=1,
                       start_timeout=30)
        t_start = time.monotonic()
        srv.start()
        started = time.monotonic() - t_start
        pin_process(srv.pid, server_cpu)
        tid = prober_tid(srv.pid)
        if tid is None:
            raise SystemExit("no thread named 'prober' in steerdns %d" % srv.pid)
        time.sleep(warmup)  # measurement window, not a wait for an event
        pid, bpid = srv.pid, backend.pid

        def sample():
            return (times("/proc/%d/task/%d/stat" % (pid, tid)), schedstat_ns(pid, tid),
                    ticks("/proc/%d/stat" % pid), ticks("/proc/%d/stat" % bpid),
                    counter.value, time.monotonic())
        before = sample()
        log_at_window = len(srv.log())
        time.sleep(window)
        after = sample()
        log = srv.log()
        if not srv.alive():
            raise SystemExit("steerdns died; log:\n" + log[-3000:])
    finally:
        if srv is not None:
            srv.close()
        if backend.is_alive():
            backend.terminate()
        backend.join(10)
    secs = after[5] - before[5]
    probes = after[4] - before[4]
    prober_user = (after[0][0] - before[0][0]) / HZ
    prober_s = prober_user + (after[0][1] - before[0][1]) / HZ
    us_per_probe = prober_s * 1e6 / probes if probes else float("nan")
    row = {
        "spec": "%s, %d VIPs" % (kind, len(addrs)), "n": len(addrs), "secs": secs,
        "rate": probes / secs, "us_per_probe": us_per_probe,
        "prober_pct": 100 * prober_s / secs,
        "prober_sched_pct": 100 * (after[1] - before[1]) / 1e9 / secs,
        "user_share": 100 * prober_user / prober_s if prober_s else float("nan"),
        # what 1,000 VIPs at 1 s would cost at this cost per probe
        "pct_1000": us_per_probe * 1000 / 1e6 * 100,
        "process_pct": 100 * (after[2] - before[2]) / HZ / secs,
        "backend_pct": 100 * (after[3] - before[3]) / HZ / secs,
        "first_up": len(re.findall(r"health: 127\.10\.\d+\.\d+ \[[^\]]*\] \S+ up$", log, re.M)),
        "first_down": len(re.findall(r"health: 127\.10\.\d+\.\d+ \[[^\]]*\] \S+ down: ", log)),
        "warmup_moved": transitions_any(log[:log_at_window]),
        "moved": transitions_any(log[log_at_window:]),
        "late": "first probe round did not finish in time" in log,
        "startup": started,
    }
    print("  %s: %.0f probes/s served; prober %.1f%% of a core (schedstat %.1f%%, %.0f%% of it"
          " user), %.0f µs/probe; whole steerdns %.1f%%; backend %.1f%%; first round %d up /"
          " %d down%s; transitions in the warm-up %d, in the window %d; start %.1fs"
          % (row["spec"], row["rate"], row["prober_pct"], row["prober_sched_pct"],
             row["user_share"], us_per_probe, row["process_pct"], row["backend_pct"],
             row["first_up"], row["first_down"], " (late)" if row["late"] else "",
             len(row["warmup_moved"]), len(row["moved"]), started), flush=True)
    reasons = {}
    down = r"health: 127\.10\.\S+ \[[^\]]*\] \S+ (?:down: |up -> down [^:]*: )(\w+)"
    for reason in re.findall(down, log):
        reasons[reason] = reasons.get(reason, 0) + 1
    if reasons:
        print("    reasons of downs: %s"
              % ", ".join("%s %d" % kv for kv in sorted(reasons.items())))
    for line in row["moved"][:3]:
        print("    in the window: " + line)
    return row


def transitions_any(log):
    return [line for line in log.splitlines() if " -> " in line and "health:" in line]


def run_cpu(args):
    specs = [s for s in args.variants.split(",") if s]
    print("== prober CPU: VIPs 127.10.R.N over 250 regions, one check each, interval 1s,"
          " timeout 500ms, rise 2, fall 2, default jitter (100ms); warm-up %gs"
          % args.warmup, flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="steerdns-bench-") as folder:
        for i, spec in enumerate(specs):
            window = args.window if i == 0 else args.short_window
            print("-- %s, %gs window" % (spec, window), flush=True)
            rows.append(cpu_variant(spec, window, args.warmup, folder))
    print()
    print("| check | window s | probes/s served | prober thread, % of a core | µs per probe |"
          " prober for 1,000 VIPs, % of a core | whole steerdns, % of a core |"
          " backend, % of a core | up after the first round | transitions: warm-up / window |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print("| %s | %.0f | %.0f | %.1f | %.0f | %.0f | %.1f | %.1f | %d of %d | %d / %d |"
              % (r["spec"], r["secs"], r["rate"], r["prober_pct"], r["us_per_probe"],
                 r["pct_1000"], r["process_pct"], r["backend_pct"], r["first_up"], r["n"],
                 len(r["warmup_moved"]), len(r["moved"])))
    sys.stdout.flush()
