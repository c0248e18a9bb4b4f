"""The controller's control interface: JSON lines over TCP on 127.0.0.1.

Each request is one JSON object on one line with an ``op``; each answer is
one line ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.

=========  ===============================  ======================================
op         arguments                        answer
=========  ===============================  ======================================
status     -                                ready, switches, connected,
                                            ready_switches, gateways, peers
                                            (switch -> [address, port] it
                                            connected from)
ids        -                                ids: gateway -> current snapshot id
set_id     id (int), timeout (s, optional)  update: snapshot_id, started_at,
                                            complete, failed, gateways: name ->
                                            {sent_at, acked_at, failure}
steer      gateway (name or null)           - (all inbound flows via one gateway;
                                            null spreads them again)
roundtrip  gateway (name)                   sent_at, acked_at of one flow-mod (a
                                            probe rule no packet matches, added or
                                            deleted) and its barrier
=========  ===============================  ======================================

Given the run's secret (:mod:`topologies.secret`), every request must carry
its HMAC (``mac``); one without is answered ``ok: false`` ("refused: ...")
and logged, so a local user who can connect to 127.0.0.1 but cannot read the
secret can ask nothing.

Times are ``time.monotonic()`` seconds of the controller process, comparable
with any other process on the same host. :class:`controller.gateways.client.GatewayClient`
speaks this protocol.
"""

from __future__ import annotations

import json
import logging
import socketserver
import threading
from typing import Any, Protocol

from topologies.secret import RunSecret, Unauthenticated

log = logging.getLogger("beaver.controller.gateways.control")


class ControlTarget(Protocol):
    def status(self) -> dict[str, Any]: ...
    def ids(self) -> dict[str, int]: ...
    def set_id(self, snapshot_id: int, timeout: float | None = None) -> dict[str, Any]: ...
    def steer(self, gateway: str | None) -> None: ...
    def roundtrip(self, gateway: str) -> dict[str, float]: ...


def answer(target: ControlTarget, request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one request (errors become ``ok: false`` answers)."""
    op = request.get("op")
    try:
        if op == "status":
            return {"ok": True, **target.status()}
        if op == "ids":
            return {"ok": True, "ids": target.ids()}
        if op == "set_id":
            snapshot_id = request.get("id")
            if not isinstance(snapshot_id, int) or isinstance(snapshot_id, bool) or snapshot_id < 0:
                raise ValueError(f"set_id needs a non-negative integer id, got {snapshot_id!r}")
            return {"ok": True, "update": target.set_id(snapshot_id, request.get("timeout"))}
        if op == "roundtrip":
            return {"ok": True, **target.roundtrip(str(request.get("gateway")))}
        if op == "steer":
            target.steer(request.get("gateway"))
            return {"ok": True}
        raise ValueError(f"unknown op {op!r}")
    except (ValueError, KeyError, RuntimeError) as error:
        return {"ok": False, "error": str(error)}


class ControlServer:
    """A threaded TCP server answering JSON-line requests for ``target``."""

    def __init__(self, target: ControlTarget, host: str, port: int,
                 secret: RunSecret | None = None) -> None:
        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    try:
                        request = json.loads(line)
                        if not isinstance(request, dict):
                            raise ValueError("a request is a JSON object")
                        if secret is not None:
                            request = secret.open(request)
                    except Unauthenticated as error:
                        log.warning("refused a control request from %s:%d: %s",
                                    *self.client_address[:2], error)
                        reply = {"ok": False, "error": f"refused: {error}"}
                    except ValueError as error:
                        reply = {"ok": False, "error": f"bad request: {error}"}
                    else:
                        reply = answer(target, request)
                    self.wfile.write(json.dumps(reply).encode() + b"\n")
                    self.wfile.flush()

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name="control")

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address[:2]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
