"""Stand-ins for the coordinator and for peers, shared by the host tests.

:class:`FakeCoordinator` is a TCP server on loopback speaking the management
protocol; :class:`Peer` is a raw UDP socket that sends with a chosen DSCP and
reads the DSCP of what it receives. :func:`wait_until` polls a condition,
driving the given pump, and says what it waited for when it gives up.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from collections.abc import Callable
from typing import Any

from hosts import management, wire


def wait_until(
    condition: Callable[[], Any], what: str, pump: Callable[[], None], timeout: float = 5.0
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        pump()
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class FakeCoordinator:
    """Accepts agent connections and records every message they send."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = self.server.getsockname()
        self.connection: socket.socket | None = None
        self.messages: list[dict[str, Any]] = []
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.server, selectors.EVENT_READ)

    def poll(self, timeout: float = 0.0) -> None:
        """Accept a waiting agent and read what arrived, waiting up to ``timeout``."""
        for key, _events in self._selector.select(timeout):
            if key.fileobj is self.server:
                self.connection, _ = self.server.accept()
                self._selector.register(self.connection, selectors.EVENT_READ)
                continue
            data = self.connection.recv(1 << 16)
            if not data:
                self._selector.unregister(self.connection)
                continue
            self._buffer += data
            *lines, self._buffer = self._buffer.split(b"\n")
            self.messages += [management.decode(line) for line in lines]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def send(self, kind: str, **fields: Any) -> None:
        assert self.connection is not None, "no agent connected"
        self.connection.sendall(management.encode(kind, **fields))

    def hang_up(self) -> None:
        if self.connection is not None:
            self._selector.unregister(self.connection)
            self.connection.close()
            self.connection = None

    def close(self) -> None:
        self.hang_up()
        self._selector.close()
        self.server.close()


class Peer:
    """A UDP endpoint playing an in-group peer or an out-group host."""

    def __init__(self, ip: str):
        self.sock = wire.open_udp((ip, 0))
        self.address = self.sock.getsockname()

    def send(self, message: dict[str, Any] | bytes, to: tuple[str, int], dscp: int = 0) -> None:
        payload = message if isinstance(message, bytes) else json.dumps(message).encode()
        wire.send(self.sock, payload, to, dscp)

    def receive(self, pump: Callable[[], None], what: str) -> tuple[dict[str, Any], int]:
        """The next datagram (decoded) and its DSCP."""
        payload, dscp, _source = wait_until(lambda: wire.receive(self.sock), what, pump)
        return json.loads(payload), dscp

    def close(self) -> None:
        self.sock.close()
