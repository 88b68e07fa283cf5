#!/usr/bin/env python3
"""Writes the packet and EDNS seed corpora (fuzz/corpus/packet, fuzz/corpus/edns).

Real queries: dig and kdig (dnsutils, knot-dnsutils) ask a catcher on
127.0.0.1 that records each query (TCP ones without their length prefix)
and replies with the query itself flagged QR, so each tool returns at once.
Then hand-made malformed packets, and the OPT RDATA of every EDNS query
plus bad option runs for the EDNS target. Run from anywhere; rewrites only
files named here. The other corpora (zones, configs, JSON bodies) are
plain files kept by hand.
"""
import os
import socket
import struct
import subprocess
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
PACKET = os.path.join(HERE, "corpus", "packet")
EDNS = os.path.join(HERE, "corpus", "edns")

# name, tool arguments (after @127.0.0.1 -p PORT)
QUERIES = [
    ("dig-soa", ["dig", "example.net", "SOA"]),
    ("dig-noedns-a", ["dig", "+noedns", "www.example.net", "A"]),
    ("dig-mixed-case", ["dig", "WwW.ExAmPlE.NeT", "AAAA"]),
    ("dig-ecs-v4", ["dig", "+subnet=193.51.24.0/24", "artifacts.example.com"]),
    ("dig-ecs-v6", ["dig", "+subnet=2001:4860:4860::/48", "artifacts.example.com", "AAAA"]),
    ("dig-ecs-zero", ["dig", "+subnet=0.0.0.0/0", "artifacts.example.com"]),
    ("dig-ecs-21", ["dig", "+subnet=1.1.0.0/21", "pinned.example.com"]),
    ("dig-ecs-static", ["dig", "+subnet=8.8.8.0/24", "ns1.example.com"]),
    ("dig-tcp-cname-geo", ["dig", "+tcp", "repo.example.com", "A"]),
    ("dig-tcp-chain", ["dig", "+tcp", "+subnet=203.0.113.0/24", "chain.example.com", "AAAA"]),
    ("dig-dnssec-big-txt", ["dig", "+dnssec", "big.example.net", "TXT"]),
    ("dig-bufsize-512", ["dig", "+bufsize=512", "medium.example.net", "TXT"]),
    ("dig-bufsize-0", ["dig", "+bufsize=0", "www.example.net"]),
    ("dig-edns1", ["dig", "+edns=1", "example.net"]),
    ("dig-nsid-expire", ["dig", "+nsid", "+expire", "example.net", "NS"]),
    ("dig-any", ["dig", "example.net", "ANY"]),
    ("dig-axfr-tcp", ["dig", "+tcp", "example.net", "AXFR"]),
    ("dig-chaos", ["dig", "+norec", "-c", "CH", "version.bind", "TXT"]),
    ("dig-referral", ["dig", "+norec", "host.sub.example.net", "A"]),
    ("dig-ds-at-cut", ["dig", "sub.example.net", "DS"]),
    ("dig-wildcard", ["dig", "x.y.wild.example.net", "TXT"]),
    ("dig-cname-loop", ["dig", "loop1.example.net", "A"]),
    ("dig-cname-out", ["dig", "out.example.net", "A"]),
    ("dig-cname-to-geo", ["dig", "+subnet=1.1.1.0/24", "togeo.example.net", "A"]),
    ("dig-srv", ["dig", "_http._tcp.example.net", "SRV"]),
    ("dig-mx", ["dig", "example.net", "MX"]),
    ("dig-caa", ["dig", "example.net", "CAA"]),
    ("dig-nxdomain", ["dig", "nothing.example.net", "A"]),
    ("dig-refused", ["dig", "example.org", "A"]),
    ("dig-strict", ["dig", "strict.example.com", "A"]),
    ("dig-fallback-aaaa", ["dig", "fallback.example.com", "AAAA"]),
    ("dig-wildgeo", ["dig", "+subnet=2001:db8::/32", "a.wildgeo.example.com", "AAAA"]),
    ("dig-cd-ad-opcode-notify", ["dig", "+cd", "+adflag", "+opcode=notify", "example.net", "SOA"]),
    ("dig-ednsopt-unknown", ["dig", "+ednsopt=65001:abcd", "+ednsflags=0x10", "www.example.net"]),
    ("kdig-ecs", ["kdig", "+subnet=193.51.24.0/24", "artifacts.example.com"]),
    ("kdig-cookie-padding", ["kdig", "+cookie", "+padding=64", "www.example.net"]),
    ("kdig-tcp-nsid", ["kdig", "+tcp", "+nsid", "example.net", "SOA"]),
    ("kdig-ptr", ["kdig", "ptr.example.net", "PTR"]),
]


def header(qd=1, an=0, ns=0, ar=0, flags=0x0100, qid=0xABCD):
    return struct.pack(">HHHHHH", qid, flags, qd, an, ns, ar)


def name(text):
    out = b""
    for label in text.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def opt(payload=1232, options=b"", version=0, do=False, owner=b"\0"):
    return owner + struct.pack(">HHBBHH", 41, payload, 0, version, 0x8000 if do else 0, len(options)) + options


def option(code, data):
    return struct.pack(">HH", code, len(data)) + data


def ecs(family, source, address, scope=0):
    return option(8, struct.pack(">HBB", family, source, scope) + address)


Q = name("www.example.net") + struct.pack(">HH", 1, 1)

CRAFTED = {
    "empty": b"",
    "short-header": header()[:11],
    "header-only": header(qd=0),
    "response-qr": header(flags=0x8000) + Q,
    "qdcount-2": header(qd=2) + Q + Q,
    "truncated-question": header() + Q[:-2],
    "compressed-question": header() + b"\3www\xc0\x0c" + struct.pack(">HH", 1, 1),
    "extended-label": header() + b"\x41abc\0" + struct.pack(">HH", 1, 1),
    "name-256": header() + (b"\x3f" + b"a" * 63) * 4 + b"\0" + struct.pack(">HH", 1, 1),
    "two-opt": header(ar=2) + Q + opt() + opt(),
    "opt-in-answer": header(an=1) + Q + opt(),
    "opt-non-root-owner": header(ar=1) + Q + opt(owner=name("x")),
    "opt-compressed-owner": header(ar=1) + Q + opt(owner=b"\xc0\x0c"),
    "opt-rdlen-overrun": header(ar=1) + Q + opt()[:-2] + b"\x00\x40",
    "opt-option-overrun": header(ar=1) + Q + opt(options=b"\x00\x0a\x00\x09abc"),
    "ecs-two": header(ar=1) + Q + opt(options=ecs(1, 24, b"\xc1\x33\x18") * 2),
    "ecs-bits-beyond-prefix": header(ar=1) + Q + opt(options=ecs(1, 23, b"\xc1\x33\x19")),
    "ecs-scope-set": header(ar=1) + Q + opt(options=ecs(1, 24, b"\xc1\x33\x18", scope=24)),
    "ecs-family-3": header(ar=1) + Q + opt(options=ecs(3, 0, b"")),
    "ecs-v6-129": header(ar=1) + Q + opt(options=ecs(2, 129, b"\x20" * 17)),
    "ecs-v6-128": header(ar=1) + Q + opt(options=ecs(2, 128, bytes(range(32, 48)))),
    "ecs-v4-32-pinned": header(ar=1) + name("pinned.example.com") + struct.pack(">HH", 1, 1)
    + opt(options=ecs(1, 32, bytes([193, 51, 24, 9]))),
    "answer-and-authority-records": header(an=1, ns=1, ar=1) + Q
    + b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + b"\x7f\0\0\1"
    + b"\0" + struct.pack(">HHIH", 2, 1, 60, 2) + b"\xc0\x0c" + opt(do=True),
    "edns-payload-65535": header(ar=1) + name("big.example.net") + struct.pack(">HH", 16, 1) + opt(payload=65535),
    "class-none": header() + name("www.example.net") + struct.pack(">HH", 1, 254),
    "type-tsig": header() + name("www.example.net") + struct.pack(">HH", 250, 1),
    "type-maila": header() + name("www.example.net") + struct.pack(">HH", 254, 1),
    "opcode-update-edns": header(flags=0x2800, ar=1) + Q + opt(),
}

EDNS_CRAFTED = {
    "empty": b"",
    "ecs-v4-24": ecs(1, 24, b"\xc1\x33\x18"),
    "ecs-v4-0": ecs(1, 0, b""),
    "ecs-v4-32": ecs(1, 32, b"\x01\x01\x01\x01"),
    "ecs-v4-17-partial": ecs(1, 17, b"\x01\x02\x80"),
    "ecs-v6-48": ecs(2, 48, b"\x20\x01\x48\x60\x48\x60"),
    "ecs-v6-128": ecs(2, 128, b"\x20\x01" + b"\0" * 14),
    "ecs-two": ecs(1, 24, b"\xc1\x33\x18") + ecs(2, 0, b""),
    "ecs-scope-set": ecs(1, 24, b"\xc1\x33\x18", scope=8),
    "ecs-bits-beyond": ecs(1, 9, b"\x01\x7f"),
    "ecs-too-long": ecs(1, 8, b"\x01\x02"),
    "ecs-short": option(8, b"\x00\x01\x18"),
    "ecs-family-0": ecs(0, 0, b""),
    "ecs-v4-33": ecs(1, 33, b"\xff" * 5),
    "overrun": b"\x00\x08\x00\x10\x00\x01",
    "partial-header": b"\x00\x08\x00",
    "cookie-then-ecs": option(10, b"\x01" * 8) + ecs(1, 24, b"\x08\x08\x08"),
    "keepalive-padding-ecs": option(11, b"") + option(12, b"\0" * 30) + ecs(2, 56, b"\x24\x00\xcb\x00\x20\x49\x01"),
}


class Catcher:
    """Records queries on UDP and TCP 127.0.0.1:PORT and echoes them as replies."""

    def __init__(self):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(4)
        self.got = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_udp, daemon=True).start()
        threading.Thread(target=self.serve_tcp, daemon=True).start()

    @staticmethod
    def reply(q):
        return q[:2] + bytes([q[2] | 0x80]) + q[3:] if len(q) >= 12 else q

    def serve_udp(self):
        while True:
            q, peer = self.udp.recvfrom(65535)
            with self.lock:
                self.got.append(q)
            self.udp.sendto(self.reply(q), peer)

    def serve_tcp(self):
        while True:
            conn, _ = self.tcp.accept()
            with conn:
                data = b""
                while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
                    chunk = conn.recv(65535)
                    if not chunk:
                        break
                    data += chunk
                if len(data) < 2:
                    continue
                q = data[2:2 + struct.unpack(">H", data[:2])[0]]
                with self.lock:
                    self.got.append(q)
                r = self.reply(q)
                conn.sendall(struct.pack(">H", len(r)) + r)

    def ask(self, args):
        with self.lock:
            before = len(self.got)
        retry = "+tries=1" if args[0] == "dig" else "+retry=0"
        subprocess.run([args[0], "@127.0.0.1", "-p", str(self.port), retry, "+timeout=2"] + args[1:],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
        with self.lock:
            return self.got[before] if len(self.got) > before else None


def opt_rdata(packet):
    """The RDATA of a query's OPT record when it is the packet's last record."""
    for at in range(len(packet) - 11, 11, -1):  # root owner, type 41
        if packet[at:at + 3] == b"\0\0\x29":
            rdlen = struct.unpack(">H", packet[at + 9:at + 11])[0]
            if at + 11 + rdlen == len(packet):
                return packet[at + 11:]
    return None


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    catcher = Catcher()
    for name_, args in QUERIES:
        q = catcher.ask(args)
        if q is None:
            print("no query caught from", " ".join(args))
            continue
        write(PACKET, name_, q)
        rdata = opt_rdata(q)
        if rdata:
            write(EDNS, name_, rdata)
    for name_, data in CRAFTED.items():
        write(PACKET, "crafted-" + name_, data)
    for name_, data in EDNS_CRAFTED.items():
        write(EDNS, "crafted-" + name_, data)


if __name__ == "__main__":
    main()
