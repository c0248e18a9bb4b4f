"""Data-channel datagrams: JSON objects over UDP, snapshot ids in the TOS byte and TTL.

Every datagram the hosts exchange (bank credits, key-value requests and
replies, relayed transfers, Chandy-Lamport markers, joins) is one UTF-8 JSON
object with a string ``kind``. The runtime adds ``sent_at`` (``time.monotonic()`` of
the sender; one clock for every namespace of a host) to what it sends; a relay
copies it into ``chain_started`` on the datagram it makes, so the in-group
receiver learns how long the external causal chain took.

The snapshot id travels in the IP header: its 10-bit wire code is the whole
TOS byte, DSCP and ECN bits, and the TTL's two lowest bits; the TTL also
carries the datagram's loss entropy (:func:`beaver.ids.ipv4_marks`). A
receiver reads both per datagram with ``IP_RECVTOS``, ``IP_RECVTTL`` and
``recvmsg``; a sender sets both per datagram with ``IP_TOS`` and ``IP_TTL``
control messages on ``sendmsg`` (for UDP, Linux sends the ECN bits as given:
nothing on the way negotiates or rewrites them; no switch of the fabric
decrements the TTL).
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import sys
from typing import Any

from beaver import untrusted
from beaver.ids import ipv4_code, ipv4_marks

MAX_DATAGRAM = 65507
"""Largest UDP payload over IPv4."""

MARKER = "marker"
"""The kind of Chandy-Lamport marker datagrams (the runtime's, never a service's)."""
JOIN = "join"
"""The kind of the datagram a runtime sends its peers when it starts (the runtime's too)."""

IP_RECVTTL = 12
"""Linux's socket option for the TTL of each received datagram (not in :mod:`socket`)."""
_MARKS_CMSG_SPACE = 2 * socket.CMSG_SPACE(struct.calcsize("i"))
"""Room for the TOS and the TTL control messages of one datagram."""


NO_KIND = "no_kind"
REASONS = (*untrusted.REASONS, NO_KIND)
"""Why a datagram was ignored (the keys of the components' ``malformed_by`` counters)."""


class MalformedDatagram(ValueError):
    """A datagram that is not a JSON object with a string ``kind``; ``reason`` is one of
    :data:`REASONS`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def note_malformed(
    counts: dict[str, int], error: MalformedDatagram, source: tuple[str, int],
    logger: logging.Logger,
) -> None:
    """Count ``error`` by its reason in ``counts`` and log one line about it."""
    counts[error.reason] = counts.get(error.reason, 0) + 1
    logger.warning("ignored malformed datagram from %s:%d (%s): %s", *source, error.reason,
                   error)


def encode(message: dict[str, Any]) -> bytes:
    payload = json.dumps(message, separators=(",", ":")).encode()
    if len(payload) > MAX_DATAGRAM:
        raise ValueError(f"datagram of {len(payload)} bytes does not fit in UDP")
    return payload


def decode(payload: bytes) -> dict[str, Any]:
    """The checked datagram (size and nesting limited before parsing: :mod:`beaver.untrusted`)."""
    try:
        message = untrusted.loads_object(payload, MAX_DATAGRAM)
    except untrusted.Rejected as error:
        raise MalformedDatagram(error.reason, str(error)) from None
    if not isinstance(message.get("kind"), str):
        raise MalformedDatagram(NO_KIND, "no string 'kind'")
    return message


def open_udp(address: tuple[str, int]) -> socket.socket:
    """A non-blocking UDP socket bound to ``address`` that reports each datagram's TOS and
    TTL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        report_marks(sock)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def report_marks(sock: socket.socket) -> None:
    """Ask ``sock`` (UDP) to report each datagram's TOS and TTL (:func:`marked_code`)."""
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)


def marked_code(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The wire code of a datagram received with these control messages (a socket set up by
    :func:`report_marks`); None if they lack its TOS or TTL."""
    tos = ttl = None
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == socket.IP_TOS and data:
            tos = data[0]
        elif level == socket.IPPROTO_IP and kind == socket.IP_TTL and data:
            ttl = int.from_bytes(data[:4], sys.byteorder)  # an int; the TTL fits its low byte
    return None if tos is None or ttl is None else ipv4_code(tos, ttl)


def send(sock: socket.socket, payload: bytes, address: tuple[str, int], code: int,
         entropy: int = 0) -> None:
    """Send one datagram with wire code ``code`` and TTL entropy ``entropy`` in its header."""
    tos, ttl = ipv4_marks(code, entropy)
    control = [(socket.IPPROTO_IP, socket.IP_TOS, struct.pack("i", tos)),
               (socket.IPPROTO_IP, socket.IP_TTL, struct.pack("i", ttl))]
    sock.sendmsg([payload], control, 0, address)


def receive(sock: socket.socket) -> tuple[bytes, int, tuple[str, int]] | None:
    """One datagram as (payload, wire code, source address); None when none is waiting.
    A datagram whose header was not reported counts as unmarked (code 0)."""
    try:
        payload, ancillary, _flags, source = sock.recvmsg(MAX_DATAGRAM, _MARKS_CMSG_SPACE)
    except BlockingIOError:
        return None
    return payload, marked_code(ancillary) or 0, source


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as a socket address; ValueError says what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)
