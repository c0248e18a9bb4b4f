"""Ground-truth event logs: what a host process really sent, received and captured.

With ``--truth-log PATH`` an in-group agent's runtime and a relay write one
JSON line per data-channel event to PATH, line by line as they happen (line
buffered), so a log is whole up to its last event even if its process is
killed. The first line names the process and its role (``ingroup`` or
``relay``); every other line is one event in the process's program order,
numbered ``n`` from 1 by the process itself, and carries ``t``, the host's
``time.monotonic()`` when it was logged (for reading; the oracle orders
events by ``n`` within a process and by send-before-receive across
processes, never by ``t``: a process that reads the clock once for several
events would otherwise seem to receive a message before it was sent):

    {"process": "r7h1", "role": "ingroup"}
    {"n": 1, "t": 812.520113, "send": "r7h1:1"}
    {"n": 2, "t": 812.531870, "receive": "10.0.2.1:9100:4"}
    {"n": 3, "t": 812.600402, "capture": [3, 4]}

- ``send``/``receive``: a data datagram with a globally unique message id,
  ``<process>:<n>`` (n counts from 1 per process). The sender puts the id in
  the datagram's :data:`MESSAGE_ID` field, so the receiver logs the same id.
  A send is written before the datagram leaves, so no receive is ever logged
  before its send.
- A relay logs the receive of each original and the send of the datagram it
  derives from it (a new id of its own): causality through the out-group is
  in the logs.
- ``capture [first, last]``: the node recorded its state (the core ran the
  service's capture hook) for snapshots ``first``..``last`` after the events
  above that line and before those below it.

Only the service's datagrams are events. Joins and Chandy-Lamport markers
are the runtime's control traffic and change no service state; a datagram
the protocol refused is never delivered, so it is not received either.
Out-group clients (:mod:`hosts.client`) keep no log: their requests carry
no message id and the in-group does not log their receipt, so a causal
chain through a client is invisible to the oracle. The bank's external
partners are relays, which do log; ``beaver run --service kv`` starts
open-loop clients, whose requests never depend on a reply, so they carry
no causality between in-group events.
:mod:`testbed.truth` reads the logs and asks the oracle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

MESSAGE_ID = "message_id"
"""The datagram field that carries the message id (only when the sender keeps a log)."""
INGROUP = "ingroup"
RELAY = "relay"
ROLES = (INGROUP, RELAY)


class TruthLog:
    """One process's event log, open for appending until :meth:`close`."""

    def __init__(self, path: Path, process: str, role: str):
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        self.process = process
        self._file: TextIO = open(path, "w", buffering=1, encoding="utf-8")
        self._sent = 0
        self._events = 0
        self._write({"process": process, "role": role})

    def new_message_id(self) -> str:
        self._sent += 1
        return f"{self.process}:{self._sent}"

    def send(self, message_id: str, now: float) -> None:
        self._event(now, "send", message_id)

    def receive(self, message_id: str, now: float) -> None:
        self._event(now, "receive", message_id)

    def capture(self, first: int, last: int, now: float) -> None:
        self._event(now, "capture", [first, last])

    def _event(self, now: float, kind: str, what: Any) -> None:
        self._events += 1
        self._write({"n": self._events, "t": now, kind: what})

    def close(self) -> None:
        self._file.close()

    def _write(self, line: dict[str, Any]) -> None:
        self._file.write(json.dumps(line, separators=(",", ":")) + "\n")


def message_id_of(message: dict[str, Any]) -> str | None:
    """The id a datagram carries, or None (a sender without a log, or a client)."""
    found = message.get(MESSAGE_ID)
    return found if isinstance(found, str) else None

