"""The controller's control interface: JSON lines over TCP on 127.0.0.1.

Each request is one JSON object on one line with an ``op``; each answer is
one line ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.

=========  ===============================  ======================================
op         arguments                        answer
=========  ===============================  ======================================
status     -                                ready, switches, connected,
                                            ready_switches, gateways, peers
                                            (switch -> [address, port] it
                                            connected from), coalesced_updates
                                            (gateway -> updates acked by a newer
                                            one's flow-mod, see pipelining)
ids        -                                ids: gateway -> current snapshot id
set_id     id (int), timeout (s, optional)  update: snapshot_id, started_at,
                                            complete, failed, gateways: name ->
                                            {sent_at, acked_at, failure}
                                            (answered once every gateway acked
                                            or failed; see pipelining below)
steer      gateway (name or null)           - (all inbound flows via one gateway;
                                            null spreads them again)
roundtrip  gateway (name)                   sent_at, acked_at of one flow-mod (a
                                            probe rule no packet matches, added or
                                            deleted) and its barrier
=========  ===============================  ======================================

Given the run's secret (:mod:`topologies.secret`), every request must be a
sealed line (``RunSecret.seal_line``: its last field ``mac`` is the HMAC of
the line's bytes before it), checked before the line is parsed; one without
a valid HMAC is answered ``ok: false`` ("refused: ...")
and logged, so a local user who can connect to 127.0.0.1 but cannot read the
secret can ask nothing.

A request is read only up to :data:`MAX_REQUEST` bytes and nesting limited
before it is parsed (:mod:`beaver.untrusted`); a longer line is answered
once and the connection closed (the rest of it is never read). Every
refused request is logged and counted by reason (:data:`REASONS`); ``status``
answers with those counts (``rejected``).

Times are ``time.monotonic()`` seconds of the controller process, comparable
with any other process on the same host.

Requests on one connection are pipelined: a client may send the next
request before the previous answer came. The server reads and starts each
request as it arrives (a ``set_id``'s flow-mods and barriers go out at
once, behind those of every earlier ``set_id``, so each gateway applies the
updates in the order they were asked for) and answers them in that same
order, each as soon as it and every earlier one is settled. A gateway
with two flow-mods still being applied (their barriers or datapath syncs
outstanding) gets no flow-mod for the updates asked for meanwhile: when the
older is acknowledged, one flow-mod for the newest of them goes out, and
its ack acknowledges every one of them (they are *coalesced*: a gateway
stamping the newest id stamps nothing older than any of them;
:mod:`controller.gateways.stamping`). Since every
gateway applies updates in order, update k settles no later than k+1
(unless k times out), so answering in order delays nobody.
:class:`controller.gateways.client.GatewayClient` speaks this protocol.
"""

from __future__ import annotations

import json
import logging
import queue
import socketserver
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from beaver import untrusted
from topologies.secret import MAC_FIELD, SEALED_MAC, RunSecret, Unauthenticated

log = logging.getLogger("beaver.controller.gateways.control")

MAX_REQUEST = 64 * 1024
"""Longest request line read (bytes)."""
UNAUTHENTICATED = "unauthenticated"
REASONS = (*untrusted.REASONS, UNAUTHENTICATED)
"""Why a request was refused: a limit or not a JSON object, or no valid HMAC."""


Settle = Callable[[], dict[str, Any]]
"""Waits until a started id update is settled and returns it as a dict."""
Reply = dict[str, Any] | Settle
"""An answer, or (for ``set_id``) what waits for it."""
REFUSED = (ValueError, KeyError, RuntimeError)
"""What a target raises for a request it refuses: an ``ok: false`` answer."""


class ControlTarget(Protocol):
    def status(self) -> dict[str, Any]: ...
    def ids(self) -> dict[str, int]: ...
    def begin_set_id(self, snapshot_id: int, timeout: float | None = None) -> Settle:
        """Send the update now; the returned call waits for its acks (or failures)."""
        ...
    def steer(self, gateway: str | None) -> None: ...
    def roundtrip(self, gateway: str) -> dict[str, float]: ...


def answer(target: ControlTarget, request: dict[str, Any]) -> Reply:
    """The answer to one request (errors become ``ok: false`` answers).

    A ``set_id`` is started here; what comes back waits for it to settle.
    """
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
            settle = target.begin_set_id(snapshot_id, request.get("timeout"))
            return lambda: {"ok": True, "update": settle()}
        if op == "roundtrip":
            return {"ok": True, **target.roundtrip(str(request.get("gateway")))}
        if op == "steer":
            target.steer(request.get("gateway"))
            return {"ok": True}
        raise ValueError(f"unknown op {op!r}")
    except REFUSED as error:
        return {"ok": False, "error": str(error)}


def settled(reply: Reply) -> dict[str, Any]:
    """The answer itself: waits for a started ``set_id``."""
    if not callable(reply):
        return reply
    try:
        return reply()
    except REFUSED as error:
        return {"ok": False, "error": str(error)}


def reply_to(target: ControlTarget, line: bytes, secret: RunSecret | None,
             client: tuple[str, int], rejected: Counter[str]) -> Reply:
    """The reply to one request line; a refusal is logged and counted in ``rejected``."""
    try:
        if secret is not None and len(line) <= MAX_REQUEST and not secret.authentic_line(line):
            raise Unauthenticated("wrong HMAC" if SEALED_MAC in line else "no HMAC")
        # a sealed line comes from a holder of the secret: its nesting need not be counted
        request = untrusted.loads_object(line, MAX_REQUEST, count_depth=secret is None)
        request.pop(MAC_FIELD, None)
    except (Unauthenticated, untrusted.Rejected) as error:
        reason = error.reason if isinstance(error, untrusted.Rejected) else UNAUTHENTICATED
        rejected[reason] += 1
        log.warning("refused a control request (%s) from %s:%d: %s", reason, *client, error)
        return {"ok": False, "error": f"refused: {error}" if reason == UNAUTHENTICATED
                else f"bad request: {error}"}
    reply = answer(target, request)
    if request.get("op") == "status" and isinstance(reply, dict) and reply["ok"]:
        reply["rejected"] = dict(rejected)
    return reply


class ControlServer:
    """A threaded TCP server answering JSON-line requests for ``target``.

    Per connection one thread reads and starts requests, another writes
    the answers in order (see the module's note on pipelining).
    """

    def __init__(self, target: ControlTarget, host: str, port: int,
                 secret: RunSecret | None = None) -> None:
        self.rejected: Counter[str] = Counter()
        """Requests refused so far, by reason (:data:`REASONS`)."""
        rejected = self.rejected

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                replies: queue.SimpleQueue[Reply | None] = queue.SimpleQueue()
                writer = threading.Thread(target=self.write, args=(replies,), daemon=True,
                                          name="control-replies")
                writer.start()
                try:
                    while line := self.rfile.readline(MAX_REQUEST + 1):
                        replies.put(reply_to(target, line, secret, self.client_address[:2],
                                             rejected))
                        if len(line) > MAX_REQUEST:
                            break  # the rest of an over-long line is never read
                finally:
                    replies.put(None)
                    writer.join()

            def write(self, replies: queue.SimpleQueue[Reply | None]) -> None:
                """Answer in order; after the client left, still settle every update."""
                connected = True
                while (reply := replies.get()) is not None:
                    answered = settled(reply)
                    if not connected:
                        continue
                    try:
                        self.wfile.write(json.dumps(answered).encode() + b"\n")
                        self.wfile.flush()
                    except OSError:
                        connected = False

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
