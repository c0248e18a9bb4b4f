"""Lab 2, solved: the in-group node rule of Beaver.

An in-group node stamps every message it sends with its current snapshot
id. When a message with a *newer* id arrives, the node first records its
local state for that id, adopts the id, and only then lets the message be
delivered. A message from an in-group peer with an *older* id that arrives
after the node's snapshot was in flight across the cut: it belongs to the
channel state. The node counts, per peer, the in-group messages it sent and
received since its previous local snapshot, so the coordinator can tell when
every in-flight message has been recorded.

``StudentNode`` has the interface of ``beaver.node.PiggybackNode``; the
simulator runs it with::

    .venv/bin/beaver simulate --node-class labs/02-node-rule/solution/node.py:StudentNode

The four TODOs of the starter are filled in; the rest is the starter's code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from beaver.ids import IdSpace, OutOfWindow
from beaver.records import NOTHING, InFlight, LocalSnapshot, Receipt

REJECTED = Receipt(deliver=False, rejected=True)


class StudentNode:
    """The snapshot state machine of one in-group node; the simulator passes time in."""

    def __init__(self, name: str, capture: Callable[[], Any], space: IdSpace | None = None):
        self.name = name
        self.space = space or IdSpace()
        self.current = 0
        """The node's snapshot id: the newest snapshot it has recorded its state for."""
        self.rejected = 0
        self._capture = capture
        self._sent: dict[str, int] = {}
        """Per in-group peer, messages sent since the previous local snapshot."""
        self._received: dict[str, int] = {}
        """Per in-group peer, messages received since the previous local snapshot."""

    def send(self, peer: str | None, now: float) -> int:
        """Account for a message to ``peer`` (None: out-group) and return its wire stamp."""
        if peer is not None:  # TODO 1
            self._sent[peer] = self._sent.get(peer, 0) + 1
        return self.space.to_wire(self.current)

    def receive(self, wire: int, sender: str | None, now: float, message: Any = None) -> Receipt:
        """Decide about a message from ``sender`` (None: out-group, via a gateway)."""
        try:
            seen = self.space.from_wire(wire, self.current)
        except OutOfWindow:
            self.rejected += 1
            return REJECTED
        if seen is None:
            if sender is not None:
                self.rejected += 1
                return REJECTED
            return NOTHING
        snapshots: tuple[LocalSnapshot, ...] = ()
        in_flight: tuple[InFlight, ...] = ()
        if seen > self.current:  # TODO 2: record the state before the message is delivered
            snapshots = (self._take(seen, now),)
        if sender is not None:
            self._received[sender] = self._received.get(sender, 0) + 1  # TODO 3
            if seen < self.current:  # TODO 4: sent before seen + 1, received after current
                in_flight = (InFlight(self.name, sender, seen + 1, self.current, message, now),)
        return Receipt(snapshots=snapshots, in_flight=in_flight)

    def notify(self, snapshot_id: int, now: float) -> Receipt:
        """The coordinator says snapshot ``snapshot_id`` exists (so idle nodes snapshot too)."""
        if snapshot_id <= self.current:
            return NOTHING
        return Receipt(snapshots=(self._take(snapshot_id, now),))

    def _take(self, snapshot_id: int, now: float) -> LocalSnapshot:
        """Record the local state for snapshots current + 1 .. ``snapshot_id`` and adopt it.

        The counts since the previous local snapshot go with it; counting starts afresh.
        """
        local = LocalSnapshot(
            node=self.name,
            first_id=self.current + 1,
            last_id=snapshot_id,
            taken_at=now,
            state=self._capture(),
            sent=self._sent,
            received=self._received,
        )
        self._sent = {}
        self._received = {}
        self.current = snapshot_id
        return local
