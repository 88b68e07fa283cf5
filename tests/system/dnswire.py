"""A tiny DNS wire encoder/decoder and raw UDP/TCP exchanges for the steerdns
system tests (not a test file).

  * build_query(), opt_rr(), encode_name(): queries, well formed or not
  * parse_message() / Message / RR, header_of(), read_name()
  * raw_udp(), udp_query(), tcp_connect(), frame(), recv_exact(),
    tcp_read_msg(), raw_tcp(), wait_closed()

Everything talks to 127.0.0.1 / ::1 only.  Receive timeouts are the timeouts
of single exchanges (like dig's +time); when one ends, the socket gets a last
look without blocking, so a reply that arrived while this process was not
scheduled still counts.
"""

import errno
import socket
import struct
import time

from common import family

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


def read_name(msg, off):
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
            name, off = read_name(data, off)
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
                name, off = read_name(data, off)
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
        sock = socket.socket(family(host), socket.SOCK_DGRAM)
    try:
        sock.sendto(data, (host, port))
        deadline = time.monotonic() + timeout
        for _ in range(100000):  # bounded: replies from other ports are skipped
            remaining = deadline - time.monotonic()
            sock.settimeout(max(remaining, 0.0))  # 0: a last look, not blocking
            try:
                reply, addr = sock.recvfrom(65535)
            except (socket.timeout, BlockingIOError):
                if remaining <= 0:
                    return None
                continue
            except ConnectionRefusedError:
                return None
            if addr[1] == port:
                return reply
        return None
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
        sock.settimeout(max(remaining, 0.0))  # 0: a last look, not blocking
        try:
            chunk = sock.recv(n - len(buf))
        except (socket.timeout, BlockingIOError):
            if remaining <= 0:
                raise socket.timeout("timed out reading %d bytes (got %d)" % (n, len(buf)))
            continue
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
        sock.settimeout(max(remaining, 0.0))  # 0: a last look, not blocking
        try:
            chunk = sock.recv(65535)
        except (socket.timeout, BlockingIOError):
            if remaining <= 0:
                return None
            continue
        except (ConnectionResetError, BrokenPipeError):
            return "reset"
        except OSError as exc:
            if exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
                return "reset"
            raise
        if not chunk:
            return "eof"
