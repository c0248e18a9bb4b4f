"""Hostile input for the fuzz test: ``python -m tests.fuzzing MODE TARGET --count N``.

Run inside an emulated host (or the root namespace) it throws ``N`` inputs
at ``TARGET`` (``IP:PORT``) and prints one line, ``sent {json}``: how many of
each kind it sent. Modes:

* ``udp``: datagrams from one socket (one flow, so a gateway installs one
  rule): :func:`payloads`;
* ``packets``: IP packets crafted with scapy at layer 3: bad IP and UDP
  checksums, truncated and lying headers, fragments (first, later,
  overlapping, alone), every DSCP and ECN value, spoofed sources (an
  in-group DIP, a VIP, another external host), TCP and ICMP at the UDP port.

:func:`payloads` is shared with the test's TCP senders (the coordinator,
the control interface, the OpenFlow port): malformed, truncated, huge,
deeply nested, replayed and random inputs, in a fixed mix from a seed.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

KINDS = ("malformed", "truncated", "huge", "nested", "replayed", "random")

PLAUSIBLE = (
    {"kind": "credit", "transfer": "r1h1.0>10.200.0.2:9100:1", "amount": 5},
    {"kind": "ack", "through": 10**9, "held": [1, 2, 3]},
    {"kind": "marker", "snapshot_id": 10**6},
    {"kind": "join"},
    {"kind": "put", "rid": 1, "key": "k1", "value": 1},
    {"type": "hello", "node": "r1h1", "protocol": "beaver"},
    {"type": "local", "seq": 1, "first_id": 1, "last_id": 1, "taken_at": 0.0,
     "state": {}, "sent": {}, "received": {}},
    {"op": "set_id", "id": 99},
    {"op": "status"},
)


def _random_json(rng: random.Random, depth: int = 0) -> object:
    choice = rng.randrange(7 if depth < 4 else 4)
    if choice == 0:
        return rng.randint(-(2**70), 2**70)
    if choice == 1:
        return rng.random() * 10 ** rng.randint(-5, 300)
    if choice == 2:
        return "".join(rng.choice("ab:/.>\\\"[{é\u2028") for _ in range(rng.randrange(20)))
    if choice == 3:
        return rng.choice([None, True, False])
    if choice in (4, 5):
        return {rng.choice(["kind", "type", "op", "seq", "through", "transfer", "amount",
                            "held", "id", "x"]): _random_json(rng, depth + 1)
                for _ in range(rng.randrange(5))}
    return [_random_json(rng, depth + 1) for _ in range(rng.randrange(5))]


def payloads(count: int, seed: int, huge: int = 60_000,
             replay: bytes | None = None) -> Iterator[tuple[str, bytes]]:
    """``count`` (kind, bytes) inputs; ``huge`` is the size of the huge ones."""
    rng = random.Random(seed)
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        if kind == "malformed":
            data = rng.randbytes(rng.randrange(1, 300))
        elif kind == "truncated":
            whole = json.dumps(rng.choice(PLAUSIBLE)).encode()
            data = whole[:rng.randrange(1, len(whole))]
        elif kind == "huge":
            data = b'{"kind":"' + b"x" * huge + b'"}'
        elif kind == "nested":
            depth = rng.randrange(33, 5000)
            data = b'{"kind":"credit","amount":' + b"[" * depth + b"]" * depth + b"}"
        elif kind == "replayed":
            data = replay if replay is not None else json.dumps(rng.choice(PLAUSIBLE)).encode()
        else:
            value = _random_json(rng)
            if isinstance(value, dict) and rng.random() < 0.5:
                value |= rng.choice(PLAUSIBLE)
            data = json.dumps(value).encode()
        yield kind, data


HUGE_DATAGRAM = 16_000
"""Bytes of a huge datagram: eleven fragments. (Bursts of 60 KB datagrams, 41 fragments
each, overflow the userspace switches' ports and nearly nothing arrives; the 65,507-byte
limit itself is the unit tests'.)"""


def send_datagrams(target: tuple[str, int], count: int, seed: int, rate: float,
                   byte_rate: float) -> Counter[str]:
    """``count`` datagrams, at most ``rate`` per second and ``byte_rate`` bytes per second
    (a userspace switch drops a faster burst at its ports: the inputs would never arrive)."""
    sent: Counter[str] = Counter()
    due = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for kind, data in payloads(count, seed, huge=HUGE_DATAGRAM):
            ahead = due - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            due += max(1 / rate, len(data) / byte_rate)
            try:
                sock.sendto(data, target)
                sent[kind] += 1
            except OSError:  # too large for UDP, or nobody listening (ICMP)
                sent[f"{kind} (refused by the kernel)"] += 1
    return sent


def crafted_packets(target: tuple[str, int], spoofed: list[str]) -> Iterator[tuple[str, object]]:
    """(kind, scapy packet) pairs: every hostile shape of IP/UDP aimed at ``target``."""
    from scapy.all import ICMP, IP, TCP, UDP, Raw, fragment

    ip, port = target
    body = Raw(json.dumps({"kind": "credit", "transfer": "x.0>y:1", "amount": 1}).encode())
    good = IP(dst=ip) / UDP(sport=40123, dport=port) / body
    yield "bad udp checksum", IP(dst=ip) / UDP(sport=40123, dport=port, chksum=0x1234) / body
    yield "bad ip checksum", IP(dst=ip, chksum=0x1234) / UDP(sport=40123, dport=port) / body
    yield "ip length too long", IP(dst=ip, len=1400) / UDP(sport=40123, dport=port) / body
    yield "ip length too short", IP(dst=ip, len=24) / UDP(sport=40123, dport=port) / body
    yield "udp length lies", IP(dst=ip) / UDP(sport=40123, dport=port, len=900) / body
    yield "header length lies", IP(dst=ip, ihl=15) / UDP(sport=40123, dport=port) / body
    yield "truncated udp header", IP(dst=ip, proto=17) / Raw(b"\x9c\xbb\x23")
    yield "options", IP(dst=ip, options=b"\x01" * 8) / UDP(sport=40123, dport=port) / body
    big = IP(dst=ip) / UDP(sport=40124, dport=port) / Raw(b'{"kind":"x","p":"' + b"y" * 3000
                                                          + b'"}')
    pieces = fragment(big, fragsize=512)
    for piece in pieces:
        yield "fragments in order", piece
    for piece in reversed(pieces):
        yield "fragments reversed", piece
    yield "first fragment alone", fragment(big, fragsize=512)[0]
    yield "later fragment alone", fragment(big, fragsize=512)[-1]
    overlapping = IP(dst=ip, flags="MF", frag=0, id=777) / UDP(sport=40125, dport=port) / Raw(
        b"z" * 64)
    yield "overlapping fragments", overlapping
    yield "overlapping fragments", IP(dst=ip, frag=4, id=777, proto=17) / Raw(b"w" * 64)
    for tos in range(256):
        yield "every dscp and ecn", IP(dst=ip, tos=tos) / UDP(sport=40126, dport=port) / body
    for source in spoofed:
        for tos in (0, 4 << 2, 63 << 2):
            yield "spoofed source", IP(src=source, dst=ip, tos=tos) / UDP(
                sport=9000, dport=port) / body
    yield "tcp at the udp port", IP(dst=ip) / TCP(sport=40127, dport=port, flags="S")
    yield "icmp", IP(dst=ip) / ICMP()
    yield "well formed", good


def next_hop(destination: str) -> tuple[str, str]:
    """(interface, MAC) the kernel would send to ``destination`` through (static ARP)."""
    route = subprocess.run(["ip", "route", "get", destination], capture_output=True,
                           text=True, check=True).stdout.split()
    interface = route[route.index("dev") + 1]
    gateway = route[route.index("via") + 1] if "via" in route else destination
    neighbour = subprocess.run(["ip", "neigh", "show", gateway, "dev", interface],
                               capture_output=True, text=True, check=True).stdout.split()
    return interface, neighbour[neighbour.index("lladdr") + 1]


def send_packets(target: tuple[str, int], spoofed: list[str]) -> Counter[str]:
    """Send at layer 2 to the next hop the kernel knows (scapy would ARP for it itself,
    and layer-3 raw sockets let the kernel mend checksums and lengths)."""
    from scapy.all import Ether, conf

    interface, mac = next_hop(target[0])
    sent: Counter[str] = Counter()
    with conf.L2socket(iface=interface) as sock:
        for kind, packet in crafted_packets(target, spoofed):
            sock.send(Ether(dst=mac) / packet)
            sent[kind] += 1
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzzing")
    parser.add_argument("mode", choices=("udp", "packets"))
    parser.add_argument("target", help="IP:PORT")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=1000.0, help="datagrams per second")
    parser.add_argument("--byte-rate", type=float, default=4e6, help="bytes per second")
    parser.add_argument("--spoof", default="", help="comma-separated source addresses")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    target = (host, int(port))
    if args.mode == "udp":
        sent = send_datagrams(target, args.count, args.seed, args.rate, args.byte_rate)
    else:
        sent = send_packets(target, [s for s in args.spoof.split(",") if s])
    print("sent", json.dumps(dict(sent)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
