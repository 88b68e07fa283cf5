"""dig and kdig, run as the real clients and their output parsed, for the
steerdns system tests (not a test file).

  * dig(), dig_multi(), kdig() -> DigResult (status None: no answer)
  * parse_dig_output(), run_client()

Every run is bounded: dig's +time and +tries, and a process timeout.
"""

import re
import subprocess

from common import DIG, KDIG


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


def run_client(argv, timeout):
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
    rc, out, err, _ = run_client(argv, timeout)
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
    rc, out, err, _ = run_client(argv, timeout)
    return parse_dig_output(out), out + err


def kdig(port, qname, qtype="A", *opts, server="127.0.0.1", qclass="IN", timeout=20):
    """Run kdig (Knot) and return a parsed DigResult (same fields as dig())."""
    argv = [KDIG, "@" + server, "-p", str(port), "-c", qclass, "-t", qtype, "-q", qname,
            "+time=2", "+retry=0"] + list(opts)
    rc, out, err, _ = run_client(argv, timeout)
    blocks = parse_dig_output(out)
    res = blocks[-1] if blocks else DigResult()
    res.stdout, res.stderr, res.returncode = out, err, rc
    res.all = blocks
    return res
