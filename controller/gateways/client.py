"""A client of the controller's control interface (see :mod:`controller.gateways.control`)."""

from __future__ import annotations

import json
import socket
import time
from collections import deque
from typing import Any

from controller.gateways.updates import IdUpdate
from topologies.secret import RunSecret


class ControllerError(RuntimeError):
    """The controller refused a request or could not be reached."""


class GatewayClient:
    """Talks to one controller over one TCP connection (opened on first use); given the
    run's secret, every request carries its HMAC."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0,
                 secret: RunSecret | None = None) -> None:
        self.address = (host, port)
        self.timeout = timeout
        self.secret = secret
        self._socket: socket.socket | None = None
        self._reader: Any = None
        self._awaited: deque[int] = deque()
        """Ids of updates sent with :meth:`send_set_id` whose answers were not read yet."""

    def close(self) -> None:
        """Close the connection; answers not read yet are lost (their updates still settle)."""
        self._awaited.clear()
        if self._socket is not None:
            self._reader.close()
            self._socket.close()
            self._socket, self._reader = None, None

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, op: str, **arguments: Any) -> dict[str, Any]:
        """Send one request and read its answer (none may be outstanding)."""
        if self._awaited:
            raise RuntimeError(f"{len(self._awaited)} id updates are outstanding: read them "
                               "with next_update() first")
        self._send(op, **arguments)
        return self._receive()

    def _send(self, op: str, **arguments: Any) -> None:
        if self._socket is None:
            try:
                self._socket = socket.create_connection(self.address, timeout=self.timeout)
            except OSError as error:
                raise ControllerError(
                    f"cannot reach controller at {self.address}: {error}"
                ) from None
            self._reader = self._socket.makefile("rb")
        try:
            line = json.dumps({"op": op, **arguments}).encode()
            if self.secret is not None:
                line = self.secret.seal_line(line)
            self._socket.sendall(line + b"\n")
        except OSError as error:
            self.close()
            raise ControllerError(f"controller at {self.address} failed: {error}") from None

    def _receive(self) -> dict[str, Any]:
        if self._socket is None:
            raise ControllerError(f"controller at {self.address} closed the connection")
        try:
            line = self._reader.readline()
        except OSError as error:
            self.close()
            raise ControllerError(f"controller at {self.address} failed: {error}") from None
        if not line:
            self.close()
            raise ControllerError(f"controller at {self.address} closed the connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise ControllerError(reply.get("error", "unknown error"))
        return reply

    def status(self) -> dict[str, Any]:
        return self.request("status")

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until every switch is connected and its proactive rules are installed."""
        deadline = time.monotonic() + timeout
        last: Any = "no answer"
        while time.monotonic() < deadline:
            try:
                status = self.status()
            except ControllerError as error:
                last = str(error)
                self.close()
            else:
                if status["ready"]:
                    return
                missing = sorted(set(status["switches"]) - set(status["ready_switches"]))
                last = f"switches not ready: {', '.join(missing)}"
            time.sleep(0.05)
        raise TimeoutError(f"controller not ready after {timeout}s ({last})")

    def gateways(self) -> list[str]:
        return list(self.status()["gateways"])

    def ids(self) -> dict[str, int]:
        return dict(self.request("ids")["ids"])

    def set_id(self, snapshot_id: int, timeout: float | None = None) -> IdUpdate:
        """Raise every gateway to ``snapshot_id``: one flow-mod and a barrier per gateway."""
        self.send_set_id(snapshot_id, timeout)
        return self.next_update()

    def send_set_id(self, snapshot_id: int, timeout: float | None = None) -> None:
        """Start raising every gateway to ``snapshot_id`` without waiting for the answer.

        Updates sent this way are pipelined: each gateway applies them in the
        order sent, and :meth:`next_update` reads their answers in that order.
        Sending and reading may happen on two threads (one of each).
        """
        arguments: dict[str, Any] = {"id": snapshot_id}
        if timeout is not None:
            arguments["timeout"] = timeout
        self._awaited.append(snapshot_id)
        try:
            self._send("set_id", **arguments)
        except ControllerError:
            self._awaited.clear()
            raise

    def next_update(self) -> IdUpdate:
        """The answer to the oldest update sent with :meth:`send_set_id` not read yet."""
        if not self._awaited:
            raise RuntimeError("no id update is outstanding")
        try:
            update = IdUpdate.from_dict(self._receive()["update"])
        except ControllerError:
            self._awaited.clear()
            raise
        expected = self._awaited.popleft()
        if update.snapshot_id != expected:
            self.close()
            raise ControllerError(f"controller answered id {update.snapshot_id} where "
                                  f"{expected} was next")
        return update

    @property
    def outstanding(self) -> int:
        """Id updates sent whose answers were not read yet."""
        return len(self._awaited)

    def roundtrip(self, gateway: str) -> float:
        """Seconds for one flow-mod + barrier to ``gateway`` (the controller's own clock)."""
        reply = self.request("roundtrip", gateway=gateway)
        return reply["acked_at"] - reply["sent_at"]

    def steer(self, gateway: str | None) -> None:
        """Send every inbound flow through ``gateway`` (``None``: spread over all again)."""
        self.request("steer", gateway=gateway)
