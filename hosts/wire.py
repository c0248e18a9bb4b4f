"""Data-channel datagrams: JSON objects over UDP, snapshot ids in the TOS byte.

Every datagram the hosts exchange (bank credits, key-value requests and
replies, relayed transfers, Chandy-Lamport markers, joins) is one UTF-8 JSON
object with a string ``kind``. The runtime adds ``sent_at`` (``time.monotonic()`` of
the sender; one clock for every namespace of a host) to what it sends; a relay
copies it into ``chain_started`` on the datagram it makes, so the in-group
receiver learns how long the external causal chain took.

The snapshot id travels in the IP header: its wire code is the whole TOS
byte, DSCP and ECN bits (:func:`beaver.ids.code_to_tos`). A receiver reads
TOS per datagram with ``IP_RECVTOS`` and ``recvmsg``; a sender sets it per
datagram with an ``IP_TOS`` control message on ``sendmsg`` (for UDP, Linux
sends the ECN bits as given: nothing on the way negotiates or rewrites them).
"""

from __future__ import annotations

import json
import logging
import socket
import struct
from typing import Any

from beaver import untrusted
from beaver.ids import code_to_tos, tos_to_code

MAX_DATAGRAM = 65507
"""Largest UDP payload over IPv4."""

MARKER = "marker"
"""The kind of Chandy-Lamport marker datagrams (the runtime's, never a service's)."""
JOIN = "join"
"""The kind of the datagram a runtime sends its peers when it starts (the runtime's too)."""

_TOS_CMSG_SPACE = socket.CMSG_SPACE(struct.calcsize("i"))


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
    """A non-blocking UDP socket bound to ``address`` that reports each datagram's TOS."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def send(sock: socket.socket, payload: bytes, address: tuple[str, int], code: int,
         ttl: int | None = None) -> None:
    """Send one datagram with wire code ``code`` in its header (and ``ttl``, if given)."""
    control = [(socket.IPPROTO_IP, socket.IP_TOS, struct.pack("i", code_to_tos(code)))]
    if ttl is not None:
        control.append((socket.IPPROTO_IP, socket.IP_TTL, struct.pack("i", ttl)))
    sock.sendmsg([payload], control, 0, address)


def receive(sock: socket.socket) -> tuple[bytes, int, tuple[str, int]] | None:
    """One datagram as (payload, wire code, source address); None when none is waiting."""
    try:
        payload, ancillary, _flags, source = sock.recvmsg(MAX_DATAGRAM, _TOS_CMSG_SPACE)
    except BlockingIOError:
        return None
    tos = 0
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == socket.IP_TOS and data:
            tos = data[0]
    return payload, tos_to_code(tos), source


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as a socket address; ValueError says what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)
