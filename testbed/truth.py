"""The oracle on an emulated run: ground truth from the hosts' event logs.

The in-group agents and the relays of a run each write an event log
(:mod:`hosts.truth`): sends and receives of data datagrams by message id,
and the in-group nodes' capture points. This module reads those logs into
the oracle's :class:`oracle.EventLog` (in-group: the processes whose
log says ``ingroup``; out-group: the relays), takes the channel state the
protocol recorded for each snapshot from the :class:`~controller.coordinator.store.Store`
(each stored in-flight datagram carries its message id) and calls
:func:`oracle.judge`. Nothing here looks at the protocol's own
bookkeeping of cuts: only its recorded channel state is judged.

A process's events keep their program order: each carries the process's
own number ``n`` (1, 2, ...), checked to follow on line after line, so a
lost, repeated or reordered line makes the log one that cannot be judged,
and the error says which file, line and numbers. The logs need no global
merge and no clock: the oracle replays them in an order that puts every
send before its receive. The ``t`` fields are never compared.

A run stops while traffic is still in flight. A message sent but never
received (held by a relay, on the wire, or arriving after its receiver
stopped) is *dropped*: it is in no channel state and carries no causality,
for the oracle as for the protocol, which records a message only when it
is received (a snapshot still counting such a message stays incomplete, so
it is not among the complete snapshots whose channel state is judged).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from controller.coordinator.store import Store
from hosts.truth import INGROUP, MESSAGE_ID, ROLES
from oracle import EventLog, LogError, Verdict, judge


class TruthLogError(ValueError):
    """Event logs that cannot be judged (unreadable, malformed, or impossible)."""


@dataclass(frozen=True)
class Event:
    """One line of a log: ``send``/``receive`` of ``message_id``, or ``capture`` of
    ``snapshots`` (first, last)."""

    t: float
    kind: str
    message_id: str = ""
    snapshots: tuple[int, int] = (0, 0)


@dataclass
class ProcessLog:
    """One process's log: its role and its events in order."""

    process: str
    role: str
    events: list[Event] = field(default_factory=list)


def read_log(path: Path) -> ProcessLog:
    """Parse one event log; :class:`TruthLogError` names the file and line at fault."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise TruthLogError(f"cannot read event log {path}: {error.strerror}") from None
    try:
        header = json.loads(lines[0]) if lines else None
        if not (isinstance(header, dict) and isinstance(header.get("process"), str)
                and header.get("role") in ROLES):
            raise ValueError("the first line does not name a process and its role")
        log = ProcessLog(header["process"], header["role"])
        for number, line in enumerate(lines[1:], start=2):
            event = json.loads(line)
            log.events.append(_event(event, number))
            n = event.get("n")
            if n != len(log.events):
                raise ValueError(
                    f"line {number} is event {n!r} of {log.process}, expected "
                    f"{len(log.events)}: a line is missing, repeated or out of program order")
    except ValueError as error:
        raise TruthLogError(f"{path}: {error}") from None
    return log


def _event(line: object, number: int) -> Event:
    if not isinstance(line, dict) or not isinstance(line.get("t"), int | float):
        raise ValueError(f"line {number} is not an event with a time")
    t = float(line["t"])
    for kind in ("send", "receive"):
        if isinstance(line.get(kind), str):
            return Event(t, kind, message_id=line[kind])
    ids = line.get("capture")
    if (isinstance(ids, list) and len(ids) == 2 and all(type(k) is int for k in ids)
            and 1 <= ids[0] <= ids[1]):
        return Event(t, "capture", snapshots=(ids[0], ids[1]))
    raise ValueError(f"line {number} is no send, receive or capture")


class MessageIds:
    """Dense integer ids for the oracle, one per message id string, assigned on first sight."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}

    def __getitem__(self, message_id: str) -> int:
        return self._numbers.setdefault(message_id, len(self._numbers))

    def names(self) -> list[str]:
        """The message id strings, indexed by their oracle id."""
        return list(self._numbers)


def event_log(logs: Iterable[ProcessLog], ids: MessageIds) -> EventLog:
    """The oracle's log of the processes' events (captures checked to follow each other)."""
    logs = list(logs)
    names = [log.process for log in logs]
    if len(set(names)) != len(names):
        raise TruthLogError(f"two event logs name the same process: {sorted(names)}")
    result = EventLog(log.process for log in logs if log.role == INGROUP)
    for log in logs:
        for event in log.events:
            if event.kind == "send":
                result.send(log.process, ids[event.message_id])
            elif event.kind == "receive":
                result.receive(log.process, ids[event.message_id])
            else:
                _capture(result, log, event.snapshots)
    return result


def _capture(result: EventLog, log: ProcessLog, snapshots: tuple[int, int]) -> None:
    if log.role != INGROUP:
        raise TruthLogError(f"{log.process} is a {log.role} and takes no snapshots")
    first, last = snapshots
    if first != result.level(log.process) + 1:
        raise TruthLogError(f"{log.process} captured snapshots {first}..{last} "
                            f"after snapshot {result.level(log.process)}")
    result.capture(log.process, last)


def recorded_channel_state(store: Store, run: int, ids: MessageIds) -> dict[int, set[int]]:
    """Per snapshot of ``run``, the oracle ids of the in-flight messages the store holds."""
    recorded: dict[int, set[int]] = {}
    for snapshot_id, message in store.in_flight_messages(run):
        message_id = message.get(MESSAGE_ID) if isinstance(message, dict) else None
        if not isinstance(message_id, str):
            raise TruthLogError(f"snapshot {snapshot_id} of run {run} recorded an in-flight "
                                f"message without a {MESSAGE_ID}: {message}")
        recorded.setdefault(snapshot_id, set()).add(ids[message_id])
    return recorded


def event_rows(logs: Iterable[ProcessLog]) -> list[dict[str, object]]:
    """The logs as rows for :meth:`~controller.coordinator.store.Store.set_events`."""
    rows: list[dict[str, object]] = []
    for log in logs:
        for event in log.events:
            row: dict[str, object] = {"process": log.process, "role": log.role, "t": event.t,
                                      "kind": event.kind}
            if event.kind == "capture":
                row["first_id"], row["last_id"] = event.snapshots
            else:
                row["message"] = event.message_id
            rows.append(row)
    return rows


def stored_logs(rows: Iterable[dict[str, object]]) -> list[ProcessLog]:
    """The process logs back from :meth:`~controller.coordinator.store.Store.events` rows."""
    logs: dict[str, ProcessLog] = {}
    for row in rows:
        log = logs.setdefault(str(row["process"]), ProcessLog(str(row["process"]),
                                                               str(row["role"])))
        if row["kind"] == "capture":
            event = Event(float(row["t"]), "capture",
                          snapshots=(int(row["first_id"]), int(row["last_id"])))
        else:
            event = Event(float(row["t"]), str(row["kind"]), message_id=str(row["message"]))
        log.events.append(event)
    return list(logs.values())


def judge_run(paths: Iterable[Path], store: Store, run: int) -> list[Verdict]:
    """The oracle's verdict on every stored snapshot of ``run``, from the hosts' logs
    (which it stores too, for diagrams)."""
    stored = [row["snapshot_id"] for row in store.snapshot_rows(run)]
    ids = MessageIds()
    logs = [read_log(path) for path in paths]
    store.set_events(run, event_rows(logs))
    try:
        log = event_log(logs, ids)
        verdicts = judge(log, recorded_channel_state(store, run, ids), max(stored, default=0))
    except LogError as error:
        raise TruthLogError(f"the event logs are impossible: {error}") from None
    kept = set(stored)
    return [verdict for verdict in verdicts if verdict.snapshot_id in kept]
