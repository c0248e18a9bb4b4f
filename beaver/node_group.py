"""The in-group node rule of the id-piggybacking protocols (Beaver, Lai-Yang), for a group.

Every message an in-group node sends carries the node's current snapshot id.
On receiving a message with a newer id, the node first records its local
state (the application's ``capture`` callback), adopts the id, and only then
lets the message be delivered. A message from another in-group node with an
older id that arrives after the snapshot was in flight: it belongs to the
channel state of every snapshot between its id and the receiver's id. When
the coordinator says a snapshot exists (``notify``), a node that has not
taken it takes it then, so idle nodes snapshot too.

Counting makes channel state decidable: each local snapshot carries how many
in-group messages the node sent and received since its previous local
snapshot. The coordinator adds these up (see :mod:`beaver.coordinator`).

A :class:`NodeGroup` keeps that state for many nodes at once, in flat arrays
indexed by member number (current id, messages sent and received since the
last local snapshot), and applies the rule to one member (``send``,
``receive``, ``notify``) or to many at once (``notify_many``: numpy over the
arrays). This is the rule's only implementation: a node on its own,
:class:`beaver.node.PiggybackNode`, is a group of one seen through
:class:`GroupMember`, the view of one member with the interface every
protocol's node offers. A group whose members are the in-group reports total
counts (:class:`~beaver.records.MemberSnapshot`, its peers are the group's
members); a node on its own counts per peer (a
:class:`~beaver.records.LocalSnapshot`), since its peers are whoever it names.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from beaver.ids import IdSpace, InvalidId, OutOfWindow, require_id
from beaver.records import (
    NOTHING,
    InFlight,
    LocalSnapshot,
    MemberSnapshot,
    MemberSnapshots,
    Receipt,
)

REJECTED = Receipt(deliver=False, rejected=True)
_record = tuple.__new__
"""Makes a record (a named tuple) from all its fields at once: the hot paths below call it
rather than the records' constructors, which check nothing more and cost a Python call."""


class NodeGroup:
    """The snapshot state machines of in-group nodes ``names``, member ``i`` being
    ``names[i]``; the runtime passes time in.

    ``capture(i, first, last)`` records member ``i``'s state for its local snapshot of ids
    ``first..last``; ``capture_many(members, firsts, lasts)``, if given, the states of
    several at once (a list, in the order of ``members``), as calling ``capture`` for each
    would. ``per_peer``: count messages per peer name and report
    :class:`~beaver.records.LocalSnapshot` records (for a node whose peers are not all
    members), rather than totals in :class:`~beaver.records.MemberSnapshot` records.
    """

    def __init__(
        self,
        names: Sequence[str],
        capture: Callable[[int, int, int], Any],
        space: IdSpace | None = None,
        *,
        capture_many: Callable[[np.ndarray, np.ndarray, np.ndarray], list[Any]] | None = None,
        per_peer: bool = False,
    ):
        self.names = tuple(names)
        if not all(isinstance(name, str) for name in self.names):
            raise ValueError("node names are strings")
        count = len(self.names)
        self.space = space or IdSpace()
        self.current = array("q", [0]) * count
        """Per member, its current snapshot id (read it; the group writes it)."""
        self.rejected = array("q", [0]) * count
        """Per member, the messages it refused: out-of-window ids, or unmarked messages
        from in-group peers."""
        self._sent = array("q", [0]) * count
        self._received = array("q", [0]) * count
        """Per member, in-group messages sent and received since its last local snapshot."""
        self._capture = capture
        self._capture_many = capture_many
        self._sent_to: list[dict[str, int]] | None = None
        self._received_from: list[dict[str, int]] | None = None
        if per_peer:
            self._sent_to = [{} for _ in self.names]
            self._received_from = [{} for _ in self.names]

    def members(self) -> list[GroupMember]:
        """A view of each member, in member order."""
        return [GroupMember(self, i) for i in range(len(self.names))]

    def send(self, i: int, peer: str | None, now: float) -> int:
        """Member ``i`` sends a message to ``peer`` (None: out-group); returns its stamp."""
        if peer is not None:
            self._sent[i] += 1
            if self._sent_to is not None:
                counts = self._sent_to[i]
                counts[peer] = counts.get(peer, 0) + 1
        return self.space.to_wire(self.current[i])

    def receive(self, i: int, wire: int, sender: str | None, now: float,
                message: Any = None) -> Receipt:
        """Member ``i`` decides about a message from ``sender`` (None: out-group, via a
        gateway)."""
        current = self.current[i]
        try:
            seen = self.space.from_wire(wire, current)
        except OutOfWindow:
            self.rejected[i] += 1
            return REJECTED
        if seen is None:
            if sender is not None:
                self.rejected[i] += 1
                return REJECTED
            return NOTHING
        snapshots = (self.notify(i, seen, now),) if seen > current else ()
        in_flight: tuple[InFlight, ...] = ()
        if sender is not None:
            self._received[i] += 1
            if self._received_from is not None:
                counts = self._received_from[i]
                counts[sender] = counts.get(sender, 0) + 1
            if seen < current:
                in_flight = (_record(InFlight, (self.names[i], sender, seen + 1, current,
                                                message, now)),)
        if not snapshots and not in_flight:
            return NOTHING
        return _record(Receipt, (True, False, snapshots, in_flight, ()))

    def notify(self, i: int, snapshot_id: int,
               now: float) -> MemberSnapshot | LocalSnapshot | None:
        """The coordinator told member ``i`` that snapshot ``snapshot_id`` exists: the local
        snapshot it takes, or None if it has taken that one already (a message with a newer
        id is such a notification first)."""
        if type(snapshot_id) is not int or snapshot_id < 0:
            require_id(snapshot_id)
        # a hot path: the record made from its fields in one go, the counts reset
        current = self.current
        first = current[i] + 1
        if snapshot_id < first:
            return None
        state = self._capture(i, first, snapshot_id)
        current[i] = snapshot_id
        sent, received = self._sent, self._received
        sent_since, received_since = sent[i], received[i]
        sent[i] = received[i] = 0
        if self._sent_to is None:
            return _record(MemberSnapshot, (self.names[i], first, snapshot_id, now, state,
                                            sent_since, received_since, self.names))
        sent_to, received_from = self._sent_to[i], self._received_from[i]  # type: ignore[index]
        self._sent_to[i], self._received_from[i] = {}, {}  # type: ignore[index]
        return _record(LocalSnapshot, (self.names[i], first, snapshot_id, now, state,
                                       sent_to, received_from))

    def notify_many(self, members: np.ndarray, snapshot_ids: np.ndarray,
                    now: np.ndarray) -> MemberSnapshots | None:
        """``notify`` of each of ``members`` (distinct, in increasing order) with its
        ``snapshot_ids`` entry at its ``now`` entry, at once: the local snapshots taken (in
        the order of ``members``), or None if none was. Only for a group that reports
        totals; the arrays are int64 (``now`` float64)."""
        if self._sent_to is not None:
            raise ValueError("a group counting per peer takes its snapshots one by one")
        if not (type(members) is type(snapshot_ids) is type(now) is np.ndarray
                and members.dtype == snapshot_ids.dtype == np.int64 and now.dtype == np.float64
                and members.ndim == 1 and members.shape == snapshot_ids.shape == now.shape):
            raise InvalidId("members and snapshot ids are equally long int64 arrays, with a "
                            "float64 array of times")
        count = members.size
        if not count:
            return None
        if (members[0] < 0 or members[-1] >= len(self.names)
                or count > 1 and not (members[1:] > members[:-1]).all()):
            raise ValueError(f"members are distinct, in increasing order, in "
                             f"0..{len(self.names) - 1}")
        if snapshot_ids.min() < 0:
            raise InvalidId("snapshot ids must be non-negative")
        current = np.frombuffer(self.current, dtype=np.int64)
        was = current[members]
        ahead = snapshot_ids > was
        if not ahead.all():
            if not ahead.any():
                return None
            members, snapshot_ids, now, was = (members[ahead], snapshot_ids[ahead], now[ahead],
                                               was[ahead])
        first_ids = was + 1
        if self._capture_many is not None:
            states = self._capture_many(members, first_ids, snapshot_ids)
        else:
            capture = self._capture
            states = [capture(i, first, last) for i, first, last in zip(
                members.tolist(), first_ids.tolist(), snapshot_ids.tolist(), strict=True)]
        sent = np.frombuffer(self._sent, dtype=np.int64)
        received = np.frombuffer(self._received, dtype=np.int64)
        taken = MemberSnapshots(self.names, members, first_ids, snapshot_ids, now, states,
                                sent[members], received[members])
        sent[members] = 0
        received[members] = 0
        current[members] = snapshot_ids
        return taken


class GroupMember:
    """Member ``index`` of ``group``, with the interface of every protocol's node
    (:class:`~beaver.protocols.SnapshotNode`)."""

    __slots__ = ("group", "index", "name")

    def __init__(self, group: NodeGroup, index: int):
        self.group = group
        self.index = index
        self.name = group.names[index]

    @property
    def current(self) -> int:
        return self.group.current[self.index]

    @property
    def space(self) -> IdSpace:
        return self.group.space

    @property
    def rejected(self) -> int:
        """Messages refused: out-of-window ids, or unmarked messages from in-group peers."""
        return self.group.rejected[self.index]

    def send(self, peer: str | None, now: float) -> int:
        """Account for a message to ``peer`` (None: out-group) and return its wire stamp."""
        return self.group.send(self.index, peer, now)

    def receive(self, wire: int, sender: str | None, now: float, message: Any = None) -> Receipt:
        """Decide about a message from ``sender`` (None: out-group, via a gateway)."""
        return self.group.receive(self.index, wire, sender, now, message)

    def notify(self, snapshot_id: int, now: float) -> Receipt:
        """The coordinator says snapshot ``snapshot_id`` exists (so idle nodes snapshot too)."""
        local = self.group.notify(self.index, snapshot_id, now)
        if local is None:
            return NOTHING
        return _record(Receipt, (True, False, (local,), (), ()))
