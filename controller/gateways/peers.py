"""Who is at the other end of an OpenFlow connection: only root's processes are switches.

The controller listens for switches on 127.0.0.1, where every local user
can connect. A process that says it is a gateway (OpenFlow features reply
with that datapath id) would get the gateway's rules and could acknowledge
id updates the real gateway never applied. Open vSwitch runs as root, so
the controller serves a connection only if the kernel's TCP socket table of
its namespace (``/proc/net/tcp``) shows root owning the peer's end of it
(:func:`tcp_peer_uid`). A second connection claiming a datapath id that is
still connected is refused too (:mod:`controller.gateways.app`).
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

TCP_TABLE = Path("/proc/net/tcp")


def _endpoint(hex_address: str) -> tuple[str, int]:
    """``0100007F:8A62`` (the kernel's little-endian IPv4 and port) -> ("127.0.0.1", 35426)."""
    address, port = hex_address.split(":")
    return socket.inet_ntoa(struct.pack("<I", int(address, 16))), int(port, 16)


def tcp_peer_uid(peer: tuple[str, int], server: tuple[str, int], table: str | None = None
                 ) -> int | None:
    """The uid owning the socket ``peer`` connected to ``server``; None if not listed."""
    text = TCP_TABLE.read_text() if table is None else table
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        if (_endpoint(fields[1]), _endpoint(fields[2])) == (tuple(peer), tuple(server)):
            return int(fields[7])
    return None
