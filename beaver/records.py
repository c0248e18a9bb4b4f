"""What in-group nodes report and what coordinators ask the runtime to do.

Nodes produce two kinds of records: a :class:`LocalSnapshot` when they
record their state, and an :class:`InFlight` for each in-group message that
belongs to the channel state of one or more snapshots. Coordinators answer
events with :class:`Command` values (update a gateway, tell a node); the
simulator, the os-ken app and the host runtime carry them out. Nothing here
does I/O.

A node of a :class:`~beaver.node_group.NodeGroup` (every in-group node kept in flat
arrays) reports a :class:`MemberSnapshot`, the same report with total counts, and a group
taking many local snapshots at once reports them as one :class:`MemberSnapshots`.

The records a node makes at every local snapshot and message (:class:`LocalSnapshot`,
:class:`MemberSnapshot`, :class:`InFlight`, :class:`Receipt`) are named tuples: as
immutable as frozen dataclasses, and several times cheaper to make, which a simulated run
making hundreds of thousands of them feels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np


class _LocalSnapshotFields(NamedTuple):
    node: str
    first_id: int
    last_id: int
    taken_at: float
    state: Any
    sent: dict[str, int]
    received: dict[str, int]


class LocalSnapshot(_LocalSnapshotFields):
    """A node's state recorded once for snapshots ``first_id``..``last_id``.

    A node that jumps several ids at once records one state for all of them:
    nothing happened at the node between those snapshots. ``sent`` and
    ``received`` count the in-group messages per peer since the node's
    previous local snapshot (all of them carry ids below ``first_id``), which
    is what lets a coordinator decide when channel state is complete (each
    defaults to a new empty dict).
    """

    __slots__ = ()

    def __new__(cls, node: str, first_id: int, last_id: int, taken_at: float, state: Any,
                sent: dict[str, int] | None = None,
                received: dict[str, int] | None = None) -> LocalSnapshot:
        return tuple.__new__(cls, (node, first_id, last_id, taken_at, state,
                                   {} if sent is None else sent,
                                   {} if received is None else received))

    def covers(self, snapshot_id: int) -> bool:
        return self.first_id <= snapshot_id <= self.last_id


class MemberSnapshot(NamedTuple):
    """A local snapshot of member ``node`` of a :class:`~beaver.node_group.NodeGroup`.

    The same report as a :class:`LocalSnapshot` (the first seven fields mean the same),
    with its counts as totals: ``sent`` and ``received`` count the in-group messages the
    node sent to and received from members of ``group`` (the names of the group's members)
    since its previous local snapshot. A coordinator checks ``group`` once, not the peers
    of every report.
    """

    node: str
    first_id: int
    last_id: int
    taken_at: float
    state: Any
    sent: int
    received: int
    group: tuple[str, ...]


class MemberSnapshots(NamedTuple):
    """Local snapshots of distinct members of one group, taken at once: element ``j`` is
    the :class:`MemberSnapshot` of member ``members[j]`` (an index into ``group``), with
    ``first_ids[j]``, ``last_ids[j]``, ``taken_at[j]``, ``states[j]``, ``sent[j]`` and
    ``received[j]``. The numbers are numpy arrays (int64; ``taken_at`` float64)."""

    group: tuple[str, ...]
    members: np.ndarray
    first_ids: np.ndarray
    last_ids: np.ndarray
    taken_at: np.ndarray
    states: list[Any]
    sent: np.ndarray
    received: np.ndarray

    def member(self, j: int) -> MemberSnapshot:
        """Element ``j`` as the report it stands for."""
        return MemberSnapshot(self.group[int(self.members[j])], int(self.first_ids[j]),
                              int(self.last_ids[j]), float(self.taken_at[j]), self.states[j],
                              int(self.sent[j]), int(self.received[j]), self.group)


class InFlight(NamedTuple):
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


class Receipt(NamedTuple):
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
