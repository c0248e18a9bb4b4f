"""The management-network protocol between in-group agents and the coordinator.

One TCP connection per agent, carrying JSON objects one per line (UTF-8,
``\\n``-terminated). The agent speaks first with ``hello``; after that every
agent message carries ``seq``, counting up from 1 on the connection, so a
duplicated, dropped or replayed report is noticed. Messages:

agent -> coordinator
    ``hello``      {node, protocol, nonce}
    ``local``      {seq, first_id, last_id, taken_at, state, sent, received}
    ``in_flight``  {seq, sender, first_id, last_id, message, received_at}
    ``counters``   {seq, rejected, delivered}  (running totals, for the summary)
    ``restored``   {seq, snapshot_id}  (the state of ``restore`` is in place)

coordinator -> agent
    ``notify``     {snapshot_id}
    ``restore``    {snapshot_id, state}
    ``stop``       {}

Optional fields (absent from older peers; readers use ``.get``):
``counters`` may add ``malformed`` (datagrams ignored), ``sent``,
``markers_sent``, ``chain_min`` (the shortest external causal chain seen,
seconds, or null) and ``chain_count``; ``restore`` may add ``in_flight``, a
list of ``{sender, message}`` the node delivers after restoring its state
(the snapshot's channel state towards it).

The node a report is about is the one that said ``hello`` on the
connection: a report cannot speak for another node.

Every agent message is authenticated with the run's secret
(:mod:`topologies.secret`, handed to the agent as ``--secret-file``): it
carries ``mac``, its last field, the HMAC of the line's bytes before that
field (:func:`encode`, checked by :meth:`RunSecret.authentic_line` on the bytes
as they arrive, before the JSON is parsed). ``hello`` carries a fresh
random ``nonce`` and every later message ``session``, that nonce: a report
cannot be moved to another connection, and a recorded hello cannot be
replayed (the coordinator refuses a nonce it has seen). Coordinator messages
carry no HMAC: only the root namespace can send on the connection. Times are
``time.monotonic()`` seconds (one clock for every namespace of a host).
:func:`decode` turns a line into a checked dict or raises
:class:`MalformedMessage`; :func:`local_snapshot` and :func:`in_flight`
turn checked reports into the protocol core's records.
"""

from __future__ import annotations

import json
from typing import Any

from beaver import untrusted
from beaver.records import InFlight, LocalSnapshot
from topologies.secret import RunSecret

MAX_LINE = 4 * 1024 * 1024
"""Longest line accepted (bytes): a local state must fit in it."""


class MalformedMessage(ValueError):
    """A management message that is not valid JSON of a known type with the right fields."""


_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "hello": {"node": str, "protocol": str, "nonce": str},
    "local": {
        "seq": int, "first_id": int, "last_id": int, "taken_at": (int, float),
        "state": object, "sent": dict, "received": dict,
    },
    "in_flight": {
        "seq": int, "sender": str, "first_id": int, "last_id": int,
        "message": object, "received_at": (int, float),
    },
    "counters": {"seq": int, "rejected": int, "delivered": int},
    "restored": {"seq": int, "snapshot_id": int},
    "notify": {"snapshot_id": int},
    "restore": {"snapshot_id": int, "state": object},
    "stop": {},
}


def encode(kind: str, secret: RunSecret | None = None, **fields: Any) -> bytes:
    """One message as a line of JSON; given the run's secret, sealed with it: a last field
    ``mac`` holds the HMAC of the line's bytes before it (with the object closed), so
    neither end serialises the message a second time to make or check it."""
    if kind not in _FIELDS:
        raise ValueError(f"unknown management message type {kind!r}")
    line = json.dumps({"type": kind, **fields}, separators=(",", ":")).encode()
    if secret is not None:
        line = secret.seal_line(line)
    return line + b"\n"


def decode(line: bytes | str, *, sealed: bool = False) -> dict[str, Any]:
    """A checked message from one line; :class:`MalformedMessage` says what is wrong.

    ``sealed``: the line is authentic (:meth:`RunSecret.authentic_line`), made by a
    component that holds the run's secret, so its nesting is not counted before it is
    parsed (the parser's own recursion limit still holds)."""
    try:
        message = untrusted.loads_object(line, MAX_LINE, count_depth=not sealed)
    except untrusted.Rejected as error:
        raise MalformedMessage(str(error)) from None
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise MalformedMessage(f"unknown message type {kind!r}")
    for name, expected in _FIELDS[kind].items():
        if name not in message:
            raise MalformedMessage(f"{kind} message without {name!r}")
        value = message[name]
        if expected is not object and (
            not isinstance(value, expected) or isinstance(value, bool)
        ):
            raise MalformedMessage(f"{kind} message: {name!r} has the wrong type")
    for counts in ("sent", "received"):
        if kind == "local" and not all(
            isinstance(peer, str) and type(n) is int and n >= 0
            for peer, n in message[counts].items()
        ):
            raise MalformedMessage(f"local message: {counts!r} must map peers to counts >= 0")
    return message


def encode_local(local: LocalSnapshot, seq: int, secret: RunSecret | None = None,
                 **session: Any) -> bytes:
    return encode(
        "local", secret, **session, seq=seq, first_id=local.first_id, last_id=local.last_id,
        taken_at=local.taken_at, state=local.state, sent=local.sent, received=local.received,
    )


def encode_in_flight(record: InFlight, seq: int, secret: RunSecret | None = None,
                     **session: Any) -> bytes:
    return encode(
        "in_flight", secret, **session, seq=seq, sender=record.sender, first_id=record.first_id,
        last_id=record.last_id, message=record.message, received_at=record.received_at,
    )


def local_snapshot(node: str, message: dict[str, Any]) -> LocalSnapshot:
    """The core record of a checked ``local`` message from ``node``."""
    return LocalSnapshot(
        node=node, first_id=message["first_id"], last_id=message["last_id"],
        taken_at=float(message["taken_at"]), state=message["state"],
        sent=dict(message["sent"]), received=dict(message["received"]),
    )


def in_flight(node: str, message: dict[str, Any]) -> InFlight:
    """The core record of a checked ``in_flight`` message received by ``node``."""
    return InFlight(
        receiver=node, sender=message["sender"], first_id=message["first_id"],
        last_id=message["last_id"], message=message["message"],
        received_at=float(message["received_at"]),
    )
