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

At most ``window`` snapshots are in flight, so every id alive in the system
stays within the wire id window (:mod:`beaver.ids`). A snapshot is
finished when it is complete and its gateway phase is over (acknowledged,
failed or timed out). A gateway whose updates fail may still forward traffic
stamped with the last id it acknowledged, so that id counts as alive too:
the coordinator waits rather than let its stamps alias to newer ids.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NoReturn

from beaver.ids import IdSpace
from beaver.records import Command, InFlight, LocalSnapshot, NotifyNode, UpdateGateway


class InvalidReport(ValueError):
    """A report the coordinator refuses: unknown node, duplicate, out of order or forged."""


class ForgedReport(InvalidReport):
    """A report no honest node can send: from a node outside the in-group, or for
    snapshot ids that were never started."""


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
    ):
        self.nodes = tuple(sorted(set(nodes)))
        if not self.nodes:
            raise ValueError("a snapshot needs at least one in-group node")
        self.gateways = tuple(sorted(set(gateways)))
        self.tau_min = tau_min
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

    # -- starting and the gateway phase -------------------------------------------------

    @property
    def window(self) -> int:
        return self.space.window

    @property
    def oldest_unfinished(self) -> int:
        """The oldest started snapshot that is not finished (``newest + 1`` if none)."""
        return min(self._unfinished, default=self.newest + 1)

    def can_start(self) -> bool:
        """Whether one more snapshot keeps every live id within the wire window."""
        oldest_live = min([self.oldest_unfinished - 1, *self._gateway_ids.values()])
        return self.newest + 1 - oldest_live <= self.window

    def start(self, now: float) -> tuple[int, list[Command]]:
        """Start the next snapshot at ``now`` (t0); returns its id and what to send."""
        if not self.can_start():
            lagging = [g for g, k in self._gateway_ids.items() if self.newest + 1 - k > self.window]
            holdup = (f"gateway {', '.join(lagging)} to acknowledge a newer id" if lagging
                      else f"snapshot {self.oldest_unfinished} to finish")
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
        status = self._status.get(snapshot_id)
        if status is not None and gateway in self._gateway_ids:
            self._gateway_ids[gateway] = max(self._gateway_ids[gateway], snapshot_id)
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
        status = self._status.get(snapshot_id)
        if status is None or gateway not in status.pending_gateways:
            return []
        status.pending_gateways.discard(gateway)
        status.failed_gateways.add(gateway)
        return self._gateway_progress(status, now)

    def expire(self, now: float) -> list[Command]:
        """Fail every gateway update older than ``update_timeout``."""
        commands: list[Command] = []
        for k in sorted(self._unfinished):
            status = self._status[k]
            if status.pending_gateways and now - status.t0 >= self.update_timeout:
                for gateway in sorted(status.pending_gateways):
                    commands += self.gateway_failed(gateway, k, now)
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
        """Take a node's local snapshot; returns the snapshots it completed."""
        self._check_local(local)
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
        if record.receiver not in self._last_reported or record.sender not in self._last_reported:
            self._refuse(ForgedReport(f"in-flight record between unknown nodes "
                                      f"{record.sender!r} -> {record.receiver!r}"))
        self._check_started("in-flight record", record.first_id, record.last_id)
        if any(self._status[k].complete for k in range(record.first_id, record.last_id + 1)):
            self._refuse(InvalidReport(
                f"in-flight record {record.sender} -> {record.receiver} for a snapshot "
                f"in {record.first_id}..{record.last_id} that is already complete"))
        done = []
        for k in range(record.first_id, record.last_id + 1):
            self._in_flight[k].append(record)
            if k in self._missing:
                self._missing[k] -= 1
                if self._missing[k] == 0:
                    done.append(self._complete(k, now))
        return done

    def _check_local(self, local: LocalSnapshot) -> None:
        last = self._last_reported.get(local.node)
        if last is None:
            self._refuse(ForgedReport(f"local snapshot from unknown node {local.node!r}"))
        self._check_started(f"local snapshot from {local.node}", local.first_id, local.last_id)
        if local.first_id != last + 1:
            self._refuse(InvalidReport(
                f"local snapshot {local.first_id}..{local.last_id} from {local.node}: "
                f"expected one starting at {last + 1} (duplicate or out of order)"))
        if any(n < 0 for n in (*local.sent.values(), *local.received.values())):
            self._refuse(InvalidReport(
                f"local snapshot from {local.node} has negative message counts"))

    def _check_started(self, what: str, first_id: int, last_id: int) -> None:
        """A report may only name snapshots that were started (ids 1..newest)."""
        if not 1 <= first_id <= last_id <= self.newest:
            self._refuse(ForgedReport(f"{what} for snapshots {first_id}..{last_id}, "
                                      f"but only 1..{self.newest} were started"))

    def _refuse(self, error: InvalidReport) -> NoReturn:
        self.rejected_reports += 1
        raise error

    def _complete(self, k: int, now: float) -> int:
        del self._missing[k]
        status = self._status[k]
        status.complete, status.completed_at = True, now
        self._check_finished(k)
        return k

    def _check_finished(self, k: int) -> None:
        if self._status[k].finished:
            self._unfinished.discard(k)

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
