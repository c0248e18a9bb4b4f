"""The snapshot coordinator: start, gateway phase, validity, completeness, assembly.

To start snapshot k the coordinator records t0 and asks every gateway to
stamp k (:class:`UpdateGateway`); t1 is when the last gateway acknowledged.
Beaver's validity rule: if ``t1 - t0 < tau_min``, where tau_min is the
shortest time any external causal chain (in-group -> out-group -> gateway)
takes, no message caused by a post-snapshot event can cross a gateway that
still stamps an older id, so the snapshot is causally consistent; otherwise
it is reported invalid. After t1 (or at start, for protocols without
gateways) the coordinator tells in-group nodes directly, so idle nodes
snapshot too.

Completeness, for counting protocols (Beaver, Lai-Yang): every node has
reported a local snapshot covering k, and the in-flight messages recorded
for k equal the in-group messages sent with ids below k minus those
received before the receivers' snapshot k (the per-peer counts in the
local snapshots). For marker protocols a node reports only when its
channels are closed, and polling records no channel state: there, every
node having reported is completeness.

Every id alive in the system stays within the wire id window
(:mod:`beaver.ids`), so that wire codes decode to the ids they were stamped
with. An id is alive while a process may still stamp it, and for a
*maximum packet lifetime* (``packet_lifetime``) after that, while a packet
stamped with it may still be in flight. The coordinator knows when a
process stopped stamping an id only from what it hears: every node has
reported a snapshot above it once every snapshot up to it is finished (a
snapshot is finished when it is complete and its gateway phase is over:
acknowledged, failed or timed out), and a gateway stopped stamping older
ids when it acknowledged a newer one. A gateway whose updates fail may
still forward traffic stamped with the last id it acknowledged, so that id
counts as alive too. The *live floor* is the oldest id a process may still
stamp; the coordinator remembers when the floor rose, and an id below it
stays alive for ``packet_lifetime`` after that. Snapshot k starts only when
k is at most ``window`` ahead of every alive id. This is the assumption
that makes wire ids unambiguous, as TCP's maximum segment lifetime makes
sequence numbers reusable: a packet stamped with an id is delivered (or
lost) within ``packet_lifetime`` of being stamped. A runtime that breaks
it can alias old stamps to newer ids: the simulator checks every stamped
packet against it and says which broke it.

Times passed in are the coordinator's clock; it keeps the latest one it
was told (time never goes back for it), so a late event stays on the
safe side. Every argument is checked before any state changes: a report
that is malformed, forged, from or about an unknown node, duplicate or out
of order is refused with :class:`InvalidReport` (and counted), any other
bad argument with :class:`InvalidInput`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NoReturn

from beaver.ids import IdSpace, InvalidId, require_id
from beaver.records import Command, InFlight, LocalSnapshot, NotifyNode, UpdateGateway

DEFAULT_PACKET_LIFETIME = 1e-3
"""Seconds a stamped packet may stay in a data center network (delivered or lost by then)."""


class InvalidInput(ValueError):
    """An argument the coordinator refuses (wrong type, not finite, out of range): no change."""


class InvalidReport(InvalidInput):
    """A report the coordinator refuses: unknown node, duplicate, out of order or forged."""


class ForgedReport(InvalidReport):
    """A report no honest node can send: from a node outside the in-group, or for
    snapshot ids that were never started."""


def _require_time(value: object, what: str = "time") -> float:
    """A finite real number (``bool`` is not one); else :class:`InvalidInput`."""
    if type(value) not in (int, float) or not math.isfinite(value):  # type: ignore[arg-type]
        raise InvalidInput(f"{what} must be a finite number of seconds, got {value!r}")
    return value  # type: ignore[return-value]


def _require_count(value: object) -> bool:
    return type(value) is int and value >= 0


class Notify(Enum):
    """When the coordinator tells in-group nodes about a new snapshot."""

    ALL = "all"
    """Every node, once the gateway phase is over (at start without gateways)."""
    INITIATOR = "initiator"
    """Only the first node (Chandy-Lamport: markers carry the snapshot on)."""


@dataclass
class SnapshotStatus:
    """What the coordinator knows about one snapshot (times on the coordinator's clock)."""

    snapshot_id: int
    t0: float
    t1: float | None = None
    valid: bool | None = None
    """None while the gateway phase runs; then whether t1 - t0 < tau_min."""
    complete: bool = False
    completed_at: float | None = None
    pending_gateways: set[str] = field(default_factory=set)
    gateway_acks: dict[str, float] = field(default_factory=dict)
    failed_gateways: set[str] = field(default_factory=set)

    @property
    def update_time(self) -> float | None:
        return None if self.t1 is None else self.t1 - self.t0

    @property
    def finished(self) -> bool:
        return self.complete and self.valid is not None


@dataclass(frozen=True)
class GlobalSnapshot:
    """An assembled snapshot: every node's state and the in-flight messages."""

    snapshot_id: int
    status: SnapshotStatus
    states: dict[str, Any]
    in_flight: tuple[InFlight, ...]


class Coordinator:
    """Protocol-independent snapshot bookkeeping, parameterised by the protocol's rules."""

    def __init__(
        self,
        nodes: Iterable[str],
        *,
        gateways: Iterable[str] = (),
        tau_min: float = math.inf,
        space: IdSpace | None = None,
        notify: Notify = Notify.ALL,
        counts_channels: bool = True,
        update_timeout: float = math.inf,
        packet_lifetime: float = DEFAULT_PACKET_LIFETIME,
    ):
        self.nodes = tuple(sorted(set(nodes)))
        if not self.nodes:
            raise InvalidInput("a snapshot needs at least one in-group node")
        self.gateways = tuple(sorted(set(gateways)))
        for name in (*self.nodes, *self.gateways):
            if not isinstance(name, str):
                raise InvalidInput(f"node and gateway names are strings, got {name!r}")
        if type(tau_min) not in (int, float) or not tau_min >= 0:
            raise InvalidInput(f"tau_min must be a number of seconds >= 0, got {tau_min!r}")
        if type(update_timeout) not in (int, float) or not update_timeout > 0:
            raise InvalidInput(f"update_timeout must be a number of seconds > 0, "
                               f"got {update_timeout!r}")
        _require_time(packet_lifetime, "packet_lifetime")
        if packet_lifetime < 0:
            raise InvalidInput(f"packet_lifetime must be >= 0 seconds, got {packet_lifetime}")
        self.tau_min = tau_min
        self.packet_lifetime = packet_lifetime
        """The assumed maximum time a stamped packet stays in flight (see the module doc)."""
        self.space = space or IdSpace()
        self.notify = notify
        self.counts_channels = counts_channels
        self.update_timeout = update_timeout
        self.newest = 0
        self.rejected_reports = 0
        self._status: dict[int, SnapshotStatus] = {}
        self._unfinished: set[int] = set()
        self._gateway_ids = dict.fromkeys(self.gateways, 0)
        """The newest id each gateway acknowledged (it stamps at least that one)."""
        self._known = frozenset(self.nodes)
        self._last_reported = dict.fromkeys(self.nodes, 0)
        self._locals: dict[str, list[LocalSnapshot]] = {node: [] for node in self.nodes}
        self._in_flight: dict[int, list[InFlight]] = {}
        self._reported: dict[int, int] = {}
        """How many nodes reported each snapshot that not every node has reported yet."""
        self._everyone_through = 0
        self._balance_from: dict[int, int] = {}
        """Sent minus received in-group messages, by the first id of the reporting snapshot."""
        self._balance_through = 0
        """The same, summed over every id every node has reported."""
        self._missing: dict[int, int] = {}
        """Per snapshot every node reported: in-flight messages not recorded yet."""
        self._clock = -math.inf
        """The latest time the coordinator was told."""
        self._live_floor = 0
        """The oldest id a node or gateway may still stamp."""
        self._floors: deque[tuple[float, int]] = deque([(-math.inf, 0)])
        """When the live floor rose, and to what: ids below a floor that rose at t may be
        on the wire until t + packet_lifetime (older entries are dropped once unneeded)."""

    # -- starting and the gateway phase -------------------------------------------------

    @property
    def window(self) -> int:
        return self.space.window

    @property
    def oldest_unfinished(self) -> int:
        """The oldest started snapshot that is not finished (``newest + 1`` if none)."""
        return min(self._unfinished, default=self.newest + 1)

    def oldest_on_wire(self, now: float) -> int:
        """The oldest id a packet in flight at ``now`` may carry (see the module docstring)."""
        now = max(_require_time(now), self._clock)
        oldest = self._floors[0][1]
        for rose_at, floor in self._floors:
            if rose_at + self.packet_lifetime > now:
                break
            oldest = floor
        return oldest

    def can_start(self, now: float) -> bool:
        """Whether one more snapshot at ``now`` keeps every alive id within the wire window."""
        return self.newest + 1 - self.oldest_on_wire(now) <= self.window

    def next_start_at(self) -> float | None:
        """When the packet lifetime alone next lets a snapshot start (maybe already past);
        None while a snapshot must finish or a gateway acknowledge first."""
        if self.newest + 1 - self._live_floor > self.window:
            return None
        for rose_at, floor in self._floors:
            if self.newest + 1 - floor <= self.window:
                return rose_at + self.packet_lifetime
        return None  # not reached: the live floor is the last entry

    def start(self, now: float) -> tuple[int, list[Command]]:
        """Start the next snapshot at ``now`` (t0); returns its id and what to send."""
        _require_time(now)
        if not self.can_start(now):
            lagging = [g for g, k in self._gateway_ids.items() if self.newest + 1 - k > self.window]
            if lagging:
                holdup = f"gateway {', '.join(lagging)} to acknowledge a newer id"
            elif self.newest + 1 - self._live_floor > self.window:
                holdup = f"snapshot {self.oldest_unfinished} to finish"
            else:
                holdup = (f"packets stamped {self.oldest_on_wire(now)} to leave the network "
                          f"(packet lifetime {self.packet_lifetime:g} s)")
            raise RuntimeError(f"{self.window} snapshots in flight; wait for {holdup}")
        self.newest += 1
        k = self.newest
        status = SnapshotStatus(k, t0=now, pending_gateways=set(self.gateways))
        self._status[k] = status
        self._unfinished.add(k)
        self._in_flight[k] = []
        if self.gateways:
            return k, [UpdateGateway(gateway, k) for gateway in self.gateways]
        status.t1, status.valid = now, True
        return k, self._notify_nodes(k)

    def gateway_acked(self, gateway: str, snapshot_id: int, now: float) -> list[Command]:
        """Gateway ``gateway`` acknowledged stamping ``snapshot_id`` at ``now``.

        A late acknowledgement (after the update was failed) does not change
        the snapshot, but shows the gateway no longer stamps older ids.
        """
        self._check_gateway_event(gateway, snapshot_id, now)
        status = self._status.get(snapshot_id)
        if status is not None and self._gateway_ids.get(gateway, snapshot_id) < snapshot_id:
            self._gateway_ids[gateway] = snapshot_id
            self._raise_floor()
        if status is None or gateway not in status.pending_gateways:
            return []
        status.pending_gateways.discard(gateway)
        status.gateway_acks[gateway] = now
        return self._gateway_progress(status, now)

    def lower_tau_min(self, tau_min: float) -> list[int]:
        """An external causal chain shorter than the bound was seen: lower the bound.

        Validity is decided again with the lower bound for every snapshot the
        coordinator remembers; a snapshot can only lose validity, never gain
        it. Returns the ids that did. A higher value changes nothing: a bound
        that turned out too low stays on the safe side.
        """
        if type(tau_min) not in (int, float) or tau_min != tau_min:
            raise InvalidInput(f"tau_min must be a number of seconds, got {tau_min!r}")
        if not 0 < tau_min < self.tau_min:
            return []
        self.tau_min = tau_min
        revoked = []
        for status in self._status.values():
            if status.valid and status.t1 is not None and status.t1 - status.t0 >= tau_min:
                status.valid = False
                revoked.append(status.snapshot_id)
        return revoked

    def gateway_failed(self, gateway: str, snapshot_id: int, now: float) -> list[Command]:
        """The update of ``gateway`` to ``snapshot_id`` failed: the snapshot is invalid."""
        self._check_gateway_event(gateway, snapshot_id, now)
        status = self._status.get(snapshot_id)
        if status is None or gateway not in status.pending_gateways:
            return []
        status.pending_gateways.discard(gateway)
        status.failed_gateways.add(gateway)
        return self._gateway_progress(status, now)

    def expire(self, now: float) -> list[Command]:
        """Fail every gateway update older than ``update_timeout``."""
        self._tick(_require_time(now))
        commands: list[Command] = []
        for k in sorted(self._unfinished):
            status = self._status[k]
            if status.pending_gateways and now - status.t0 >= self.update_timeout:
                for gateway in sorted(status.pending_gateways):
                    commands += self.gateway_failed(gateway, k, now)
        return commands

    def _check_gateway_event(self, gateway: object, snapshot_id: object, now: object) -> None:
        if not isinstance(gateway, str):
            raise InvalidInput(f"gateway names are strings, got {gateway!r}")
        try:
            require_id(snapshot_id)
        except InvalidId as error:
            raise InvalidInput(str(error)) from None
        self._tick(_require_time(now))

    def _tick(self, now: float) -> float:
        """Advance the coordinator's clock to ``now`` (never back) and drop the floors no
        packet can carry any more; returns the clock."""
        if now > self._clock:
            self._clock = now
            floors, lifetime = self._floors, self.packet_lifetime
            while len(floors) > 1 and floors[1][0] + lifetime <= now:
                floors.popleft()
        return self._clock

    def _raise_floor(self) -> None:
        """Note when the oldest id a process may still stamp rose (after a finish or an ack)."""
        stamped = min(self._gateway_ids.values(), default=self.newest)
        floor = min(self.oldest_unfinished - 1, stamped)
        if floor > self._live_floor:
            self._live_floor = floor
            self._floors.append((self._clock, floor))

    def gateway_restarted(
        self, gateway: str, stamping: int | None, now: float
    ) -> tuple[list[Command], list[int]]:
        """Gateway ``gateway`` came back after a crash, stamping ``stamping``.

        ``None`` is the safe restart: the gateway has no id and forwards no
        out-group traffic until it is set. A gateway that stamps an id older
        than one it acknowledged breaks the protocol's assumption for every
        snapshot after that id: those lose their validity (the ones decided
        already are returned) and the gateway's id counts as alive again (the
        live floor goes back to it).
        Returns the update that brings the gateway to the newest id, and the
        revoked snapshot ids.
        """
        self._check_gateway_event(gateway, 0 if stamping is None else stamping, now)
        if gateway not in self._gateway_ids:
            raise InvalidInput(f"unknown gateway {gateway!r}")
        revoked = []
        if stamping is not None and stamping < self._gateway_ids[gateway]:
            self._gateway_ids[gateway] = stamping
            if stamping < self._live_floor:
                self._live_floor = stamping
                self._floors = deque([(-math.inf, stamping)])
            for k in range(stamping + 1, self.newest + 1):
                status = self._status[k]
                if status.valid is None:
                    status.failed_gateways.add(gateway)
                elif status.valid:
                    status.valid = False
                    revoked.append(k)
        commands: list[Command] = [UpdateGateway(gateway, self.newest)] if self.newest else []
        return commands, revoked

    def retransmit(self, now: float) -> list[Command]:
        """What to send again when answers are ``update_timeout`` overdue.

        Every gateway that has not acknowledged the newest snapshot started
        at least ``update_timeout`` ago is sent the newest id (its update or
        ack was lost, or it restarted); every node that has not reported the
        newest such snapshot whose gateway phase is over, while it is
        unfinished, is told about it again (its notification was lost).
        Duplicates are harmless: ids only grow.
        """
        self._tick(_require_time(now))
        overdue = self.newest
        while overdue > 0 and now - self._status[overdue].t0 < self.update_timeout:
            overdue -= 1
        if overdue == 0:
            return []
        commands: list[Command] = [
            UpdateGateway(gateway, self.newest)
            for gateway, acked in self._gateway_ids.items() if acked < overdue
        ]
        told = overdue
        while told > 0 and self._status[told].valid is None:
            told -= 1
        if told >= self.oldest_unfinished:
            targets = self.nodes[:1] if self.notify is Notify.INITIATOR else self.nodes
            commands += [NotifyNode(node, told) for node in targets
                         if self._last_reported[node] < told]
        return commands

    def _gateway_progress(self, status: SnapshotStatus, now: float) -> list[Command]:
        """After the last gateway answered: t1, validity, then tell the nodes.

        A gateway that failed leaves t1 unknown, so the snapshot is invalid;
        the nodes still move on to it, so later snapshots are not held up.
        """
        if status.pending_gateways:
            return []
        if status.failed_gateways:
            status.valid = False
        else:
            status.t1 = max(status.gateway_acks.values())
            status.valid = status.t1 - status.t0 < self.tau_min
        self._check_finished(status.snapshot_id)
        return self._notify_nodes(status.snapshot_id)

    def _notify_nodes(self, k: int) -> list[Command]:
        if self.notify is Notify.INITIATOR:
            return [NotifyNode(self.nodes[0], k)]
        return [NotifyNode(node, k) for node in self.nodes]

    # -- reports from the nodes ---------------------------------------------------------

    def add_local(self, local: LocalSnapshot, now: float) -> list[int]:
        """Take a node's local snapshot; returns the snapshots it completed.

        The report is checked whole first: a refused one changes nothing."""
        _require_time(now)
        self._check_local(local)
        self._tick(now)
        self._last_reported[local.node] = local.last_id
        self._locals[local.node].append(local)
        for k in range(local.first_id, local.last_id + 1):
            self._reported[k] = self._reported.get(k, 0) + 1
        if self.counts_channels:
            balance = sum(local.sent.values()) - sum(local.received.values())
            self._balance_from[local.first_id] = (
                self._balance_from.get(local.first_id, 0) + balance
            )
        done = []
        while self._reported.get(self._everyone_through + 1, 0) == len(self.nodes):
            k = self._everyone_through = self._everyone_through + 1
            del self._reported[k]
            self._balance_through += self._balance_from.pop(k, 0)
            if self.counts_channels:
                self._missing[k] = self._balance_through - len(self._in_flight[k])
            else:
                self._missing[k] = 0
            if self._missing[k] == 0:
                done.append(self._complete(k, now))
        return done

    def add_in_flight(self, record: InFlight, now: float) -> list[int]:
        """Take an in-flight message; returns the snapshots it completed."""
        _require_time(now)
        if not isinstance(record, InFlight):
            self._refuse(InvalidReport(
                f"an in-flight record must be an InFlight, got {type(record).__name__}"))
        if not all(isinstance(name, str) for name in (record.receiver, record.sender)):
            self._refuse(InvalidReport(f"in-flight record between non-string node names "
                                       f"{record.sender!r} -> {record.receiver!r}"))
        if not all(type(k) is int for k in (record.first_id, record.last_id)):
            self._refuse(InvalidReport(f"in-flight record ids must be ints, got "
                                       f"{record.first_id!r}..{record.last_id!r}"))
        if record.receiver not in self._last_reported or record.sender not in self._last_reported:
            self._refuse(ForgedReport(f"in-flight record between unknown nodes "
                                      f"{record.sender!r} -> {record.receiver!r}"))
        self._check_started("in-flight record", record.first_id, record.last_id)
        if any(self._status[k].complete for k in range(record.first_id, record.last_id + 1)):
            self._refuse(InvalidReport(
                f"in-flight record {record.sender} -> {record.receiver} for a snapshot "
                f"in {record.first_id}..{record.last_id} that is already complete"))
        self._tick(now)
        done = []
        for k in range(record.first_id, record.last_id + 1):
            self._in_flight[k].append(record)
            if k in self._missing:
                self._missing[k] -= 1
                if self._missing[k] == 0:
                    done.append(self._complete(k, now))
        return done

    def _check_local(self, local: LocalSnapshot) -> None:
        problem = self._malformed(local)
        if problem:
            self._refuse(InvalidReport(problem))
        last = self._last_reported.get(local.node)
        if last is None:
            self._refuse(ForgedReport(f"local snapshot from unknown node {local.node!r}"))
        self._check_started(f"local snapshot from {local.node}", local.first_id, local.last_id)
        if local.first_id != last + 1:
            self._refuse(InvalidReport(
                f"local snapshot {local.first_id}..{local.last_id} from {local.node}: "
                f"expected one starting at {last + 1} (duplicate or out of order)"))
        if not all(map(_require_count, (*local.sent.values(), *local.received.values()))):
            self._refuse(InvalidReport(f"local snapshot from {local.node} has message counts "
                                       f"that are not ints >= 0 (negative or not whole)"))
        strangers = sorted(map(repr, {*local.sent, *local.received} - self._known))
        if strangers:
            self._refuse(InvalidReport(f"local snapshot from {local.node} counts messages with "
                                       f"{', '.join(strangers)}, not in-group nodes"))

    def _check_started(self, what: str, first_id: int, last_id: int) -> None:
        """A report may only name snapshots that were started (ids 1..newest)."""
        if not 1 <= first_id <= last_id <= self.newest:
            self._refuse(ForgedReport(f"{what} for snapshots {first_id}..{last_id}, "
                                      f"but only 1..{self.newest} were started"))

    def _refuse(self, error: InvalidReport) -> NoReturn:
        self.rejected_reports += 1
        raise error

    @staticmethod
    def _malformed(local: object) -> str | None:
        """What makes ``local`` no well-formed local snapshot at all (None: nothing)."""
        if not isinstance(local, LocalSnapshot):
            return f"a local snapshot must be a LocalSnapshot, got {type(local).__name__}"
        if not isinstance(local.node, str):
            return f"local snapshot from a node whose name is not a string: {local.node!r}"
        if not (type(local.first_id) is int and type(local.last_id) is int):
            return (f"local snapshot ids must be ints, got "
                    f"{local.first_id!r}..{local.last_id!r}")
        if type(local.taken_at) not in (int, float) or not math.isfinite(local.taken_at):
            return f"local snapshot from {local.node} taken at {local.taken_at!r}, not a time"
        if not (isinstance(local.sent, Mapping) and isinstance(local.received, Mapping)):
            return f"local snapshot from {local.node}: message counts must be mappings"
        return None

    def _complete(self, k: int, now: float) -> int:
        del self._missing[k]
        status = self._status[k]
        status.complete, status.completed_at = True, now
        self._check_finished(k)
        return k

    def _check_finished(self, k: int) -> None:
        if self._status[k].finished and k in self._unfinished:
            self._unfinished.discard(k)
            self._raise_floor()

    # -- reading --------------------------------------------------------------------------

    def status(self, k: int) -> SnapshotStatus:
        try:
            return self._status[k]
        except KeyError:
            raise KeyError(f"no snapshot {k}") from None

    def statuses(self) -> list[SnapshotStatus]:
        return [self._status[k] for k in sorted(self._status)]

    def assemble(self, k: int) -> GlobalSnapshot:
        """The global snapshot k from what the nodes reported (complete or not)."""
        status = self.status(k)
        states = {}
        for node, locals_ in self._locals.items():
            for local in reversed(locals_):
                if local.covers(k):
                    states[node] = local.state
                    break
        return GlobalSnapshot(k, status, states, tuple(self._in_flight.get(k, ())))

    def forget(self, k: int) -> None:
        """Drop the stored states and messages of finished snapshots up to ``k``."""
        for node, locals_ in self._locals.items():
            self._locals[node] = [
                local for local in locals_
                if local.last_id > k
                or any(s in self._unfinished for s in range(local.first_id, local.last_id + 1))
            ]
        for old in [s for s in self._in_flight if s <= k and s not in self._unfinished]:
            del self._in_flight[old]
