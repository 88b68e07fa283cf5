#!/usr/bin/env python3
"""Health prober benchmarks (issue #4): failover time and prober CPU.

    bench/health_bench.py failover [--runs-a 7] [--runs-b 5] [--runs-hang 3]
    bench/health_bench.py cpu [--window 30] [--short-window 15] [--variants KIND[:VIPS],...]
    bench/health_bench.py all           (both; what bench/run-health.sh runs)

failover: steerdns (one worker) serves the example zone's geo name
  `artifacts` with an http check; a ThreadingHTTPServer answers 200 on each of
  the six VIPs. A Paris client (ECS 193.51.24.0/24) is answered with
  127.1.0.1 and 127.1.0.2. Each run stops 127.1.0.1's backend (closes its
  listening socket: refused; or, in "hang" runs, keeps accepting but never
  answers) at a random phase of the probe schedule, asks every 20 ms until
  127.1.0.1 leaves the answer, then restores it at a random phase and asks
  until it is back. Failover time = the last answer still holding 127.1.0.1
  minus the stop; return time = the first answer holding it again minus the
  restore. The log must show one down and one up transition per run.

cpu: VIPs 127.10.R.N over 250 regions in one geo name, one check each,
  interval 1 s; one asyncio backend process listens on all of them. KIND is
  http, tcp, https-insecure or https-verify (SNI/Host/certificate for the
  service name, the self-signed certificate as `ca`); VIPS defaults to 1000.
  CPU of the thread named "prober" (utime+stime from /proc/PID/task/TID/stat)
  over a window after a warm-up, divided by the probes the backend served;
  the whole server's and the backend's CPU over the same window; the log
  tells whether every VIP was up after the first round and stayed up.

Only the standard library, tests/system/harness.py and the `openssl` CLI (for
the https variant's self-signed certificate). Every address is in
127.0.0.0/8, every loop is bounded in count and time, and only processes
started here are stopped, by their PID. Waits are polls with deadlines; the
only sleeps are the random phase before a stop and the measurement windows.
"""

import argparse
import datetime
import os
import random
import re
import select
import signal
import socket
import statistics
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "system"))
import harness as h  # noqa: E402  (build_query, parse_message, free_port, Server)
import backends as be  # noqa: E402  (the tests' JFrog-like HTTP backend)

HZ = os.sysconf("SC_CLK_TCK")
QNAME = "artifacts.example.com"
PARIS_CLIENT = "193.51.24.0"     # France in the built-in world database
PARIS = ("127.1.0.1", "127.1.0.2")
VICTIM = PARIS[0]
ALL_VIPS = PARIS + ("127.2.0.1", "127.2.0.2", "127.3.0.1", "127.3.0.2")
ASK_EVERY = 0.020                 # query period while watching an answer
BACKEND_LIFETIME = 300.0          # the asyncio backend exits by itself after this


# ---------------------------------------------------------------------------
# placement: the server on one core, this script and its backends on the other


def cpus():
    n = os.cpu_count() or 1
    if n < 2:
        return None, None
    return int(os.environ.get("SERVER_CPU", 1)), int(os.environ.get("CLIENT_CPU", 0))


def pin_process(pid, cpu):
    """Pin every thread of PID (the prober and workers exist once it answers)."""
    if cpu is None:
        return
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except OSError:
            pass  # a thread that just ended


# ---------------------------------------------------------------------------
# DNS


def paris_query():
    """A query for the geo name with ECS 193.51.24.0/24 and a random id."""
    ecs = struct.pack("!HBB", 1, 24, 0) + socket.inet_aton(PARIS_CLIENT)[:3]
    return h.build_query(QNAME, "A", id=random.randrange(1 << 16),
                         edns={"options": [(8, ecs)]})


class Asker:
    """One UDP socket asking the server for the Paris client's answer."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))

    def close(self):
        self.sock.close()

    def ask(self, timeout=0.25):
        """The set of A addresses answered, or None when no answer came in time."""
        q = paris_query()
        qid = struct.unpack("!H", q[:2])[0]
        self.sock.send(q)
        deadline = time.monotonic() + timeout
        for _ in range(16):  # stale replies of earlier timed-out queries
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return None
            try:
                data = self.sock.recv(4096)
            except ConnectionRefusedError:
                return None
            if len(data) >= 2 and struct.unpack("!H", data[:2])[0] == qid:
                msg = h.parse_message(data)
                return {socket.inet_ntoa(rr.rdata) for rr in msg.answer if rr.type == 1}
        return None

    def watch(self, done, limit):
        """Ask every ASK_EVERY s until done(answer) or `limit` s have passed.

        Returns [(receive time, answer)]; the last one satisfies done() unless
        the limit was reached (then the caller reports a timeout).
        """
        samples = []
        start = time.monotonic()
        n_max = int(limit / ASK_EVERY) + 1
        for i in range(n_max):
            answer = self.ask()
            now = time.monotonic()
            samples.append((now, answer))
            if answer is not None and done(answer):
                return samples
            if now - start >= limit:
                break
            pause = start + (i + 1) * ASK_EVERY - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # pacing, not a wait for an event
        return samples


# failover: one threaded backend per VIP, the tests' JFrog-like endpoint
# (tests/system/backends.py): stop() refuses connections, mode "hang"
# accepts and reads but never answers.


TRANSITION = re.compile(r"health: (\S+) \[[^\]]*\] \S+ (up|down) -> (up|down)"
                        r"(?: after \d+ \w+)?(?:: (\w+))?")


def went_down_at(log, vip):
    """Wall-clock time of VIP's first `up -> down` line (spdlog's local time, ms)."""
    m = re.search(r"^(\S+) \w+ health: %s \[[^\]]*\] \S+ up -> down" % re.escape(vip), log, re.M)
    return datetime.datetime.fromisoformat(m.group(1)).timestamp() if m else None


def transitions(log, vip):
    """[(from, to, reason)] logged for VIP."""
    return [(m.group(2), m.group(3), m.group(4)) for m in TRANSITION.finditer(log)
            if m.group(1) == vip]


def failover_zone(check):
    """The example zone's regions and geo name, with CHECK on the geo name."""
    return (
        "zone: example.com\n"
        "ttl: 3600\n"
        "soa: {mname: ns1, rname: hostmaster, serial: 1, refresh: 3600, retry: 600,"
        " expire: 1209600, minimum: 300}\n"
        "ns: [ns1, ns2]\n"
        "records:\n"
        "  ns1: {A: 127.0.0.1}\n"
        "  ns2: {A: 127.0.0.2}\n"
        "regions:\n"
        "  paris: {location: [48.86, 2.35], vips: [127.1.0.1, 127.1.0.2]}\n"
        "  virginia: {location: [38.95, -77.45], vips: [127.2.0.1, 127.2.0.2]}\n"
        "  singapore: {location: [1.29, 103.85], vips: [127.3.0.1, 127.3.0.2]}\n"
        "geo:\n"
        "  artifacts:\n"
        "    regions: [paris, virginia, singapore]\n"
        "    ttl: 30\n"
        "    check: {%s}\n" % check)


class Setting:
    def __init__(self, name, interval, timeout, fall, rise, jitter, jitter_text):
        self.name, self.interval, self.timeout = name, interval, timeout
        self.fall, self.rise, self.jitter = fall, rise, jitter
        self.jitter_text = jitter_text  # as written in the zone ("" = the default)

    def check(self, port):
        text = ("type: http, port: %d, path: %s, jfrog: true, interval: %gs, timeout: %dms,"
                " rise: %d, fall: %d" % (port, be.JFROG_PATH, self.interval, self.timeout * 1000,
                                         self.rise, self.fall))
        return text + (", jitter: %s" % self.jitter_text if self.jitter_text else "")

    def describe(self):
        return ("interval %gs, timeout %dms, fall %d, rise %d, jitter %s"
                % (self.interval, self.timeout * 1000, self.fall, self.rise,
                   self.jitter_text or "default (%dms = interval/10)" % (self.jitter * 1000)))

    # Each gap between probes is interval ± jitter. The first probe after the
    # stop comes within one gap; `fall` failures later the VIP is down; a hung
    # backend adds the last probe's timeout. Same with `rise` for the return.
    def expected_down(self, hang):
        lo = (self.fall - 1) * (self.interval - self.jitter)
        hi = self.fall * (self.interval + self.jitter)
        extra = self.timeout if hang else 0.0
        return lo + extra, hi + extra

    def expected_up(self):
        return ((self.rise - 1) * (self.interval - self.jitter),
                self.rise * (self.interval + self.jitter))


SETTING_A = Setting("A", 1.0, 0.5, 2, 2, 0.0, "0ms")
SETTING_B = Setting("B (example)", 2.0, 1.0, 2, 2, 0.2, "")


def failover_runs(setting, runs, hang_runs):
    """Run one server with SETTING; return a list of result rows."""
    port = h.free_port(ALL_VIPS)
    backends = {vip: be.Backend(vip, port) for vip in ALL_VIPS}
    for b in backends.values():
        b.start()
    server_cpu, _ = cpus()
    srv = h.Server({"example.com.yaml": failover_zone(setting.check(port))}, workers=1)
    rows = []
    try:
        srv.start()
        pin_process(srv.pid, server_cpu)
        asker = Asker(srv.port)
        wall = time.time() - time.monotonic()  # monotonic -> wall clock, to read log times
        both = set(PARIS)
        first = asker.watch(lambda a: a == both, 10)
        if first[-1][1] != both:
            raise SystemExit("the Paris client is not answered with %s (last answer %r); log:\n%s"
                             % (sorted(both), first[-1][1], srv.log()))
        limit = setting.expected_down(True)[1] + 5  # far past any correct behaviour
        for mode in ["refused"] * runs + ["hang"] * hang_runs:
            victim = backends[VICTIM]
            log_before = len(srv.log())
            # Random phase of the stop against the probe schedule.
            time.sleep(random.uniform(0, setting.interval))
            if mode == "refused":
                victim.stop()  # connects are refused from its last step on
            else:
                victim.set_mode("hang")
            t0 = time.monotonic()
            samples = asker.watch(lambda a: VICTIM not in a, limit)
            if samples[-1][1] is None or VICTIM in samples[-1][1]:
                raise SystemExit("%s: %s still answered %.1fs after the stop; log:\n%s"
                                 % (setting.name, VICTIM, limit, srv.log()[log_before:]))
            holding = [t for t, a in samples if a is not None and VICTIM in a]
            down = (holding[-1] if holding else t0) - t0
            gone = samples[-1][0] - t0
            # How long after the logged transition the answer changed: the
            # publication to the worker plus at most one query period.
            logged = went_down_at(srv.log()[log_before:], VICTIM)
            lag = (samples[-1][0] + wall - logged) if logged else float("nan")
            lost = sum(1 for _, a in samples if a is None)
            # Restore at a random phase too (right after the failover it would
            # always fall just after a probe), then wait for the VIP to come back.
            time.sleep(random.uniform(0, setting.interval))
            if mode == "refused":
                victim.start()
            else:
                victim.set_mode("healthy")
            t1 = time.monotonic()
            back = asker.watch(lambda a: VICTIM in a, limit)
            if back[-1][1] is None or VICTIM not in back[-1][1]:
                raise SystemExit("%s: %s not back %.1fs after the restore; log:\n%s"
                                 % (setting.name, VICTIM, limit, srv.log()[log_before:]))
            up = back[-1][0] - t1
            # The log must show exactly one down and one up transition, for the right reason.
            seen = transitions(srv.log()[log_before:], VICTIM)
            rows.append({"mode": mode, "down": down, "gone": gone, "up": up, "lag": lag,
                         "unanswered": lost + sum(1 for _, a in back if a is None),
                         "log": seen})
            print("  %-12s %-7s failover %.3fs (first answer without it %.3fs, %+.0f ms after"
                  " the log line), back %.3fs, log %s"
                  % (setting.name, mode, down, gone, lag * 1000, up,
                               "; ".join("%s->%s%s" % (f, t, ": " + r if r else "")
                                         for f, t, r in seen)), flush=True)
        asker.close()
        others = [v for v in ALL_VIPS if v != VICTIM and transitions(srv.log(), v)]
        if others:
            print("  WARNING: VIPs that were never stopped changed state: %s" % others)
    finally:
        srv.close()
        for b in backends.values():
            b.set_mode("healthy")
            b.stop()
    return rows


def summary(values):
    return "%.2f / %.2f / %.2f" % (min(values), statistics.median(values), max(values))


def run_failover(args):
    print("== failover: Paris client (ECS %s/24), %s stopped at a random phase,"
          " asked every %d ms" % (PARIS_CLIENT, VICTIM, ASK_EVERY * 1000), flush=True)
    results = []
    for setting, runs, hang in ((SETTING_A, args.runs_a, args.runs_hang),
                                (SETTING_B, args.runs_b, 0)):
        if runs + hang == 0:
            continue
        print("-- settings %s: %s" % (setting.name, setting.describe()), flush=True)
        rows = failover_runs(setting, runs, hang)
        results.append((setting, rows))
    print()
    print("| settings | backend | runs | failover s (min / median / max) | expected range s |"
          " back up s (min / median / max) | expected range s | log transitions |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for setting, rows in results:
        for mode in ("refused", "hang"):
            sel = [r for r in rows if r["mode"] == mode]
            if not sel:
                continue
            lo, hi = setting.expected_down(mode == "hang")
            ulo, uhi = setting.expected_up()
            clean = all([t[:2] for t in r["log"]] == [("up", "down"), ("down", "up")]
                        and r["log"][0][2] == ("refused" if mode == "refused" else "timeout")
                        for r in sel)
            print("| %s: %s | %s | %d | %s | %.1f–%.1f | %s | %.1f–%.1f | %s |"
                  % (setting.name, setting.describe(), mode, len(sel),
                     summary([r["down"] for r in sel]), lo, hi,
                     summary([r["up"] for r in sel]), ulo, uhi,
                     "one down (%s) and one up per run" % ("refused" if mode == "refused"
                                                           else "timeout")
                     if clean else "UNEXPECTED, see above"))
    unanswered = sum(r["unanswered"] for _, rows in results for r in rows)
    lags = [r["lag"] * 1000 for _, rows in results for r in rows]
    print("\nfirst answer without the VIP, after its `up -> down` log line (ms, log times are"
          " truncated to ms): min %.0f / median %.0f / max %.0f"
          % (min(lags), statistics.median(lags), max(lags)))
    print("queries left unanswered within 250 ms during the runs: %d" % unanswered, flush=True)



def main():
    from health_cpu import KINDS, run_cpu  # the cpu part, in a file of its own
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("failover", "cpu", "all"))
    parser.add_argument("--runs-a", type=int, default=7)
    parser.add_argument("--runs-b", type=int, default=5)
    parser.add_argument("--runs-hang", type=int, default=3)
    parser.add_argument("--window", type=float, default=30.0, help="first CPU variant (s)")
    parser.add_argument("--short-window", type=float, default=15.0,
                        help="further CPU variants (s)")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--variants", default="http,tcp,https-insecure:250,https-verify:250",
                        help="KIND[:VIPS],... with KIND in %s" % ", ".join(KINDS))
    args = parser.parse_args()
    # A SIGTERM (from `timeout` in run-health.sh) unwinds, so the server and
    # backends started here are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    _, client_cpu = cpus()
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    h.require_binary()
    print("%d cores, %s; steerdns %s, 1 worker%s" % (
        os.cpu_count(), os.uname().release, h.BIN,
        "; server on CPU %d, this script and its backends on CPU %d" % cpus()
        if client_cpu is not None else ""), flush=True)
    if args.what in ("failover", "all"):
        run_failover(args)
    if args.what in ("cpu", "all"):
        run_cpu(args)


if __name__ == "__main__":
    main()
