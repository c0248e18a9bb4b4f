"""Stand-ins for the coordinator and for peers, shared by the host tests.

:class:`FakeCoordinator` is a TCP server speaking the management protocol;
:class:`CoreDriver` feeds what it received to the protocol core's coordinator;
:class:`Peer` is a raw UDP socket that sends with a chosen wire code (TOS byte) and
reads the wire code of what it receives; :class:`Process` runs ``python -m`` a module of the
project (directly or through a Mininet host's ``popen``) and reads its
stdout without blocking. :func:`wait_until` polls a condition,
driving the given pump, and says what it waited for when it gives up.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from beaver.protocols import protocol
from beaver.records import Command, NotifyNode
from hosts import delivery, wire
from topologies import management

REPO = Path(__file__).resolve().parent.parent


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


def free_udp_port(*ips: str) -> int:
    """A UDP port nothing is bound to on any of ``ips`` right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
            first.bind((ips[0], 0))
            port = first.getsockname()[1]
            try:
                for ip in ips[1:]:
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                        other.bind((ip, port))
            except OSError:
                continue
            return port


class FakeCoordinator:
    """Accepts agent connections and records every message they send, by node."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.server = socket.create_server((host, 0))
        self.address = self.server.getsockname()
        self.received: list[tuple[str, dict[str, Any]]] = []
        """(node, message) in arrival order; the node is the one that said hello."""
        self.closed: set[str] = set()
        """Nodes whose agent closed its connection (everything it sent has been read)."""
        self._connections: dict[str, socket.socket] = {}
        self._open: dict[socket.socket, tuple[str, bytes]] = {}
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.server, selectors.EVENT_READ)

    def poll(self, timeout: float = 0.0) -> None:
        """Accept waiting agents and read what arrived, waiting up to ``timeout``."""
        for key, _events in self._selector.select(timeout):
            if key.fileobj is self.server:
                connection, _ = self.server.accept()
                self._open[connection] = ("", b"")
                self._selector.register(connection, selectors.EVENT_READ)
                continue
            connection = key.fileobj
            data = connection.recv(1 << 16)
            node, buffer = self._open[connection]
            if not data:
                self._selector.unregister(connection)
                self.closed.add(node)
                continue
            *lines, buffer = (buffer + data).split(b"\n")
            for line in lines:
                message = management.decode(line)
                if message["type"] == "hello":
                    node = message["node"]
                    self._connections[node] = connection
                self.received.append((node, message))
            self._open[connection] = (node, buffer)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [message for _node, message in self.received]

    def of_type(self, kind: str, node: str | None = None) -> list[dict[str, Any]]:
        return [m for n, m in self.received if m["type"] == kind and node in (None, n)]

    def nodes(self) -> list[str]:
        return sorted(self._connections)

    def send(self, kind: str, node: str | None = None, **fields: Any) -> None:
        """Send to ``node`` (default: the only agent connected)."""
        if node is None:
            (node,) = self._connections
        self._connections[node].sendall(management.encode(kind, **fields))

    def hang_up(self) -> None:
        for connection in self._open:
            if self._selector.get_map().get(connection) is not None:
                self._selector.unregister(connection)
            connection.close()
        self._open.clear()
        self._connections.clear()

    def close(self) -> None:
        self.hang_up()
        self._selector.close()
        self.server.close()


class CoreDriver:
    """The protocol core's coordinator, fed with the reports the fake coordinator received."""

    def __init__(self, fake: FakeCoordinator, protocol_name: str, nodes: list[str],
                 gateways: tuple[str, ...] = ()):
        self.fake = fake
        self.core = protocol(protocol_name).coordinator(nodes, gateways=gateways)
        self._handled = 0

    def pump(self) -> None:
        self.fake.poll(0.01)
        for node, message in self.fake.received[self._handled:]:
            if message["type"] == "local":
                self.core.add_local(management.local_snapshot(node, message), time.monotonic())
            elif message["type"] == "in_flight":
                self.core.add_in_flight(management.in_flight(node, message), time.monotonic())
        self._handled = len(self.fake.received)

    def start(self, notify: bool = True) -> tuple[int, list[Command]]:
        """Start a snapshot; tell the nodes the core names now, unless ``notify`` is False."""
        snapshot_id, commands = self.core.start(time.monotonic())
        if notify:
            for command in commands:
                if isinstance(command, NotifyNode):
                    self.fake.send("notify", command.node, snapshot_id=command.snapshot_id)
        return snapshot_id, commands

    def wait_complete(self, snapshot_id: int) -> None:
        status = self.core.status(snapshot_id)
        wait_until(lambda: status.complete, f"snapshot {snapshot_id} to complete", self.pump)


class Peer:
    """A UDP endpoint playing an in-group peer or an out-group host.

    An in-group peer speaks the reliable channel (:mod:`hosts.delivery`) as a
    runtime does: what it sends (joins and acks aside) takes the next ``seq``,
    and it acknowledges every sequenced datagram it receives, without
    returning acks from :meth:`receive`.
    """

    def __init__(self, ip: str, ingroup: bool = False):
        self.sock = wire.open_udp((ip, 0))
        self.address = self.sock.getsockname()
        self.ingroup = ingroup
        self.channel: delivery.Channel[dict[str, Any]] = delivery.Channel()

    def send(self, message: dict[str, Any] | bytes, to: tuple[str, int], code: int = 0) -> None:
        if isinstance(message, dict) and self.ingroup and message["kind"] not in (
                wire.JOIN, delivery.ACK):
            message = {**message, delivery.SEQ: self.channel.next_seq()}
        payload = message if isinstance(message, bytes) else json.dumps(message).encode()
        wire.send(self.sock, payload, to, code)

    def receive(self, pump: Callable[[], None], what: str) -> tuple[dict[str, Any], int]:
        """The next datagram (decoded) and its wire code."""
        while True:
            payload, code, source = wait_until(lambda: wire.receive(self.sock), what, pump)
            message = json.loads(payload)
            if message["kind"] == delivery.ACK:
                continue
            seq = delivery.seq_of(message)
            if seq is not None:
                if self.channel.receive(seq, message) is None:
                    continue
                self.send(self.channel.ack(), source)
            return message, code

    def close(self) -> None:
        self.sock.close()


class Process:
    """A child process whose stdout lines are read without blocking."""

    def __init__(self, *args: str, launch: Callable[..., Any] = subprocess.Popen):
        self.popen = launch([sys.executable, "-m", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.set_blocking(self.popen.stdout.fileno(), False)
        self.lines: list[str] = []
        self._partial = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.popen.stdout, selectors.EVENT_READ)

    def read(self, timeout: float = 0.0) -> None:
        if self._selector.select(timeout):
            data = self.popen.stdout.read() or b""
            *lines, self._partial = (self._partial + data).split(b"\n")
            self.lines += [line.decode() for line in lines]

    def line(self, prefix: str, pump=None) -> str:
        def pump_and_read() -> None:
            if pump is not None:
                pump()
            self.read(0.01)

        def found() -> str | None:
            printed = [x for x in self.lines if x.startswith(prefix)]
            if self.popen.poll() is not None and not printed:
                self.read(0.1)
                raise AssertionError(
                    f"process exited ({self.popen.returncode}) before printing {prefix!r}: "
                    f"{self.popen.stderr.read().decode()}"
                )
            return next((x for x in self.lines if x.startswith(prefix)), None)

        return wait_until(found, f"a line starting {prefix!r}", pump_and_read, timeout=10)

    def wait(self, timeout: float = 10.0) -> int:
        code = self.popen.wait(timeout)
        self.read(0.1)
        return code

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._selector.close()
        self.popen.stdout.close()
        self.popen.stderr.close()
