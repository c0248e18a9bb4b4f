"""What in-group nodes report and what coordinators ask the runtime to do.

Nodes produce two kinds of records: a :class:`LocalSnapshot` when they
record their state, and an :class:`InFlight` for each in-group message that
belongs to the channel state of one or more snapshots. Coordinators answer
events with :class:`Command` values (update a gateway, tell a node); the
simulator, the os-ken app and the host runtime carry them out. Nothing here
does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class LocalSnapshot:
    """A node's state recorded once for snapshots ``first_id``..``last_id``.

    A node that jumps several ids at once records one state for all of them:
    nothing happened at the node between those snapshots. ``sent`` and
    ``received`` count the in-group messages per peer since the node's
    previous local snapshot (all of them carry ids below ``first_id``), which
    is what lets a coordinator decide when channel state is complete.
    """

    node: str
    first_id: int
    last_id: int
    taken_at: float
    state: Any
    sent: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)

    def covers(self, snapshot_id: int) -> bool:
        return self.first_id <= snapshot_id <= self.last_id


@dataclass(frozen=True, slots=True)
class InFlight:
    """An in-group message that was in flight across the cuts of ``first_id``..``last_id``.

    It was sent before the sender's snapshot ``first_id`` and received after
    the receiver's snapshot ``last_id``.
    """

    receiver: str
    sender: str
    first_id: int
    last_id: int
    message: Any
    received_at: float

    def covers(self, snapshot_id: int) -> bool:
        return self.first_id <= snapshot_id <= self.last_id


@dataclass(frozen=True, slots=True)
class Marker:
    """A control message on a data channel (Chandy-Lamport): counts as extra traffic."""

    snapshot_id: int


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a node decided about one received message.

    The runtime reports ``snapshots`` and ``in_flight`` to the coordinator,
    sends ``outgoing`` (peer, marker) pairs on data channels, and delivers the
    message to the application only if ``deliver`` is true, after the local
    snapshots were taken.
    """

    deliver: bool = True
    rejected: bool = False
    snapshots: tuple[LocalSnapshot, ...] = ()
    in_flight: tuple[InFlight, ...] = ()
    outgoing: tuple[tuple[str, Marker], ...] = ()


NOTHING = Receipt()


@dataclass(frozen=True, slots=True)
class UpdateGateway:
    """Set gateway ``gateway`` to ``snapshot_id``; acknowledge with ``gateway_acked``."""

    gateway: str
    snapshot_id: int


@dataclass(frozen=True, slots=True)
class NotifyNode:
    """Tell in-group node ``node`` that snapshot ``snapshot_id`` exists."""

    node: str
    snapshot_id: int


@dataclass(frozen=True, slots=True)
class NotifyNodes:
    """Tell each in-group node in ``nodes`` that snapshot ``snapshot_id`` exists: one command
    for what would be a :class:`NotifyNode` per node (a coordinator made with
    ``broadcast=True`` sends it when it tells every node)."""

    nodes: tuple[str, ...]
    snapshot_id: int


Command = UpdateGateway | NotifyNode | NotifyNodes


@dataclass
class GatewayTiming:
    """One gateway's part of an id update, from the gateway app to the snapshot store.

    Times are seconds on the controller's ``time.monotonic()`` clock, None
    while unknown. ``failure`` says why the gateway did not acknowledge (no
    barrier reply, disconnected, ...); the store keeps only *that* it failed.
    """

    gateway: str
    sent_at: float | None = None
    acked_at: float | None = None
    failure: str | None = None

    @property
    def failed(self) -> bool:
        return self.failure is not None
