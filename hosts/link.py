"""The agent's end of the management connection (format: :mod:`topologies.management`).

:func:`connect` dials the coordinator, retrying until a deadline (the
coordinator may still be starting), and says ``hello`` with a fresh nonce.
The link numbers every later report with ``seq``, tags it with the session
(that nonce), seals every message with the run's secret, and splits what the
coordinator sends into checked messages; a malformed line is logged and
skipped, never fatal.

Reports are held until :meth:`ManagementLink.flush`, which writes all of them
in one ``sendall``: the runtime flushes once per turn of its loop, so the
local snapshots and in-flight records one datagram or one notification
produced (several snapshots close together) leave in one TCP segment, and
the coordinator reads them in one wake-up. Each stays its own sealed line.
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from typing import Any

from beaver.records import InFlight, LocalSnapshot
from topologies import management
from topologies.secret import RunSecret

log = logging.getLogger(__name__)


class ManagementLink:
    """A connected, greeted management connection."""

    def __init__(self, sock: socket.socket, secret: RunSecret, session: str):
        self.sock = sock
        self.secret = secret
        self.session = session
        """The hello's nonce: every report names it."""
        self.seq = 0
        self.broken = False
        """Whether a write failed: the coordinator is gone."""
        self._buffer = b""
        self._unsent: list[bytes] = []
        """Sealed lines not written yet (:meth:`flush`)."""

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def send(self, kind: str, **fields: Any) -> None:
        self._write(management.encode(kind, self.secret, seq=self._next_seq(),
                                      session=self.session, **fields))

    def send_local(self, local: LocalSnapshot) -> None:
        self._write(management.encode_local(local, self._next_seq(), self.secret,
                                            session=self.session))

    def send_in_flight(self, record: InFlight) -> None:
        self._write(management.encode_in_flight(record, self._next_seq(), self.secret,
                                                session=self.session))

    def _write(self, line: bytes) -> None:
        if not self.broken:
            self._unsent.append(line)

    def flush(self) -> None:
        """Write every line held so far, in one ``sendall``."""
        if not self._unsent or self.broken:
            return
        lines, self._unsent = b"".join(self._unsent), []
        try:
            self.sock.sendall(lines)
        except OSError as error:
            self.broken = True
            log.warning("lost the management connection: %s", error)

    def receive(self) -> list[dict[str, Any]] | None:
        """The complete messages that arrived (call when readable); None once closed."""
        try:
            data = self.sock.recv(1 << 16)
        except ConnectionError:
            return None
        if not data:
            return None
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > management.MAX_LINE:
            log.error("coordinator sent a line longer than %d bytes", management.MAX_LINE)
            return None
        messages = []
        for line in lines:
            try:
                messages.append(management.decode(line))
            except management.MalformedMessage as error:
                log.warning("ignored malformed management message: %s", error)
        return messages

    def close(self) -> None:
        """Write what is held, then close."""
        self.flush()
        self.sock.close()


def connect(
    coordinator: tuple[str, int], node: str, protocol: str, secret: RunSecret, *,
    timeout: float
) -> ManagementLink:
    """Connect and say hello, retrying refused connections for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        try:
            sock = socket.create_connection(coordinator, timeout=max(0.1, timeout))
            break
        except OSError as error:
            if time.monotonic() + pause > deadline:
                raise ConnectionError(
                    f"no coordinator at {coordinator[0]}:{coordinator[1]} "
                    f"after {timeout:g} s: {error}"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    nonce = secrets.token_hex(16)
    sock.sendall(management.encode("hello", secret, node=node, protocol=protocol, nonce=nonce))
    return ManagementLink(sock, secret, nonce)
